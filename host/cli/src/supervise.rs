//! Providers that `weft host` runs as child processes (`process = true` in the manifest):
//! each is `weft provider run …` on the host's lattice, restarted with backoff when it exits
//! or stops answering health checks, and stopped (SIGTERM, then SIGKILL) with the host. A
//! child whose host dies without stopping it (SIGKILL, a crash) notices and stops itself.

use crate::lattice_args::LatticeArgs;
use crate::manifest::ProviderEntry;
use crate::output::Out;
use anyhow::{Context, Result};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};
use weft_host::control::{EventKind, ProcessStatus, ProviderProcess};
use weft_lattice as lattice;

/// First restart delay; doubled after each quick failure, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A child that ran this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
/// How often a child's health is asked, and how long it has to answer.
const HEALTH_EVERY: Duration = Duration::from_secs(5);
const HEALTH_WITHIN: Duration = Duration::from_secs(2);
/// Missed health checks in a row after which the child is killed and restarted.
const UNHEALTHY_AFTER: u32 = 3;
/// How long a child gets to stop after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// A supervised provider; dropping it leaves the child running, [`Supervised::stop`] ends it.
pub struct Supervised {
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    status: Arc<std::sync::Mutex<ProcessStatus>>,
    /// The lattice member its child is, once that child said it serves.
    instance: Arc<std::sync::Mutex<Option<String>>>,
}

impl Supervised {
    /// Stops the child and its supervision (a second call does nothing).
    pub async fn stop(&self) {
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

#[weft_provider_sdk::async_trait]
impl ProviderProcess for Supervised {
    fn status(&self) -> ProcessStatus {
        *self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn stop(&self) {
        Supervised::stop(self).await;
    }

    fn instance(&self) -> Option<String> {
        self.instance
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Updates a supervised child's status.
fn set_status(status: &std::sync::Mutex<ProcessStatus>, change: impl FnOnce(&mut ProcessStatus)) {
    change(
        &mut status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
}

fn command(
    entry: &ProviderEntry,
    lattice: &LatticeArgs,
    credentials: &weft_lattice::Credentials,
    name: &str,
) -> Result<Command> {
    let exe = std::env::current_exe().context("cannot find the weft binary to run providers")?;
    let mut command = Command::new(exe);
    command
        .args(["provider", "run", &entry.kind, "--id", &entry.id])
        .args(["--lattice", name, "--nats", &lattice.nats])
        .env(
            crate::provider::SUPERVISOR_PID_ENV,
            std::process::id().to_string(),
        )
        .env(
            crate::lattice_args::LATTICE_ISSUER_ENV,
            credentials.issuer_seed()?,
        )
        .kill_on_drop(true);
    for issuer in credentials.trusted() {
        if issuer != credentials.issuer() {
            command.arg("--lattice-trust").arg(issuer);
        }
    }
    // Config by the environment, never argv (which every user of the machine can read):
    // it may hold a password.
    if !entry.config.is_empty() {
        command.env(
            crate::provider::CONFIG_ENV,
            serde_json::to_string(&entry.config).context("the provider's config")?,
        );
    }
    if let Some(creds) = &lattice.nats_creds {
        command.arg("--nats-creds").arg(creds);
    }
    if let Some(seed) = &lattice.nats_nkey {
        command.env("WEFT_NATS_NKEY", seed);
    }
    if let (Some(user), Some(password)) = (&lattice.nats_user, &lattice.nats_password) {
        command.arg("--nats-user").arg(user);
        command.env("WEFT_NATS_PASSWORD", password);
    }
    if let Some(ca) = &lattice.nats_tls_ca {
        command.arg("--nats-tls-ca").arg(ca);
    }
    if lattice.nats_require_tls {
        command.arg("--nats-require-tls");
    }
    Ok(command)
}

/// How long a provider process may take to serve.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// Starts `entry` as a child process and supervises it; returns once that child serves on
/// the lattice (it says so on a subject of its own: another instance of the same id
/// answering health checks does not count).
pub async fn start(
    entry: &ProviderEntry,
    lattice: &LatticeArgs,
    member: Arc<weft_lattice::Member>,
    credentials: &weft_lattice::Credentials,
    control: Arc<weft_host::control::Control>,
) -> Result<Arc<Supervised>> {
    let stateful = crate::provider::keeps_state_in_memory(&entry.kind, &entry.config);
    let kind = entry.kind.clone();
    let name = member.lattice().to_string();
    let client = member.client().clone();
    let mut command = command(entry, lattice, credentials, &name)?;
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let status = Arc::new(std::sync::Mutex::new(ProcessStatus::default()));
    let watched = status.clone();
    let instance = Arc::new(std::sync::Mutex::new(None));
    let announced = instance.clone();
    let (first_ready, first_served) = tokio::sync::oneshot::channel();
    let id = entry.id.clone();
    let task = tokio::spawn(async move {
        let mut first_ready = Some(first_ready);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = std::time::Instant::now();
            let ready_subject = client.new_inbox();
            // This child's own: health checks answered by another instance of the id would
            // keep a hung child alive.
            let child_health = client.new_inbox();
            let spawned = match client.subscribe(ready_subject.clone()).await {
                Ok(ready) => {
                    command.env(crate::provider::READY_SUBJECT_ENV, &ready_subject);
                    command.env(crate::provider::HEALTH_SUBJECT_ENV, &child_health);
                    command
                        .spawn()
                        .map(|child| (child, ready))
                        .map_err(|e| e.to_string())
                }
                Err(error) => Err(format!("NATS refused a subscription: {error}")),
            };
            let (mut child, mut ready) = match spawned {
                Ok(spawned) => spawned,
                Err(error) => {
                    say(&format!("provider  {id} could not start: {error}"));
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = &mut stopped => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            say(&format!(
                "provider  {id} running as process {}",
                child.id().unwrap_or_default()
            ));
            set_status(&watched, |s| {
                s.pid = child.id();
                s.running_since = Some(std::time::Instant::now());
            });
            let ended = tokio::select! {
                ended = watch(&mut child, &member, &child_health, &mut ready, &mut first_ready, &announced) => ended,
                _ = &mut stopped => {
                    terminate(&mut child).await;
                    return;
                }
            };
            say(&format!("provider  {id} {ended}; restarting it"));
            set_status(&watched, |s| {
                s.pid = None;
                s.running_since = None;
                s.restarts += 1;
            });
            *announced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            if stateful {
                // Never silence: what the process held in memory is gone.
                let detail = format!(
                    "{kind} process {ended}; the data it kept in memory is lost and it restarts empty"
                );
                say(&format!("provider  {id}: {detail}"));
                tracing::warn!(provider = %id, "{detail}");
                let by = control.host_id().to_string();
                control
                    .publish(EventKind::ProviderStateLost, &id, detail, &by)
                    .await;
            }
            if started.elapsed() >= HEALTHY_RUN {
                backoff = FIRST_BACKOFF;
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = &mut stopped => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
    let supervised = Arc::new(Supervised {
        stop: std::sync::Mutex::new(Some(stop)),
        task: tokio::sync::Mutex::new(Some(task)),
        status,
        instance,
    });
    match tokio::time::timeout(READY_WITHIN, first_served).await {
        Ok(Ok(())) => Ok(supervised),
        _ => {
            supervised.stop().await;
            anyhow::bail!(
                "provider {} did not come up on lattice {name} within {READY_WITHIN:?}",
                entry.id
            )
        }
    }
}

/// Waits until the child exits or misses [`UNHEALTHY_AFTER`] health checks in a row (then
/// kills it); says which. Meanwhile, when the child says it serves, records which member it
/// is in `instance` and tells `first_ready` (once).
///
/// Health is asked of the child itself: on `health`, a subject only it serves, and an answer
/// counts only if it is sealed by the member that announced it was ready (a child not ready
/// yet misses its checks).
async fn watch(
    child: &mut Child,
    member: &weft_lattice::Member,
    health: &str,
    ready: &mut async_nats::Subscriber,
    first_ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
    instance: &std::sync::Mutex<Option<String>>,
) -> String {
    use futures_util::StreamExt;
    let mut missed = 0;
    let mut child_member: Option<String> = None;
    let mut every = tokio::time::interval(HEALTH_EVERY);
    every.tick().await;
    loop {
        tokio::select! {
            status = child.wait() => {
                return match status {
                    Ok(status) => format!("exited ({status})"),
                    Err(error) => format!("could not be waited on ({error})"),
                };
            }
            Some(said) = ready.next(), if child_member.is_none() => {
                if member.open(&said.subject, said.headers.as_ref(), &said.payload).await.is_ok() {
                    child_member = sender(&said);
                    instance
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone_from(&child_member);
                    if let Some(first) = first_ready.take() {
                        let _ = first.send(());
                    }
                }
            }
            _ = every.tick() => {
                let answered = match &child_member {
                    Some(child_member) => answers_health(member, health, child_member).await,
                    None => false,
                };
                missed = if answered { 0 } else { missed + 1 };
                if missed >= UNHEALTHY_AFTER {
                    let _ = child.kill().await;
                    return format!("missed {missed} health checks");
                }
            }
        }
    }
}

/// The member that sealed `message` (its seal was checked when it was opened).
fn sender(message: &async_nats::Message) -> Option<String> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(weft_lattice::member::FROM_HEADER))
        .map(|from| from.as_str().to_string())
}

/// Whether the child, member `child_member`, answers on `health` at all: one that answers
/// "unhealthy" is alive, its backend (a Redis server, say) is what is down, and a restart
/// would not bring that back; readiness reports it instead (`weft_host::health`).
async fn answers_health(member: &weft_lattice::Member, health: &str, child_member: &str) -> bool {
    let mut headers = async_nats::HeaderMap::new();
    member.seal(health, &[], &mut headers);
    let Ok(answer) = member
        .ask(health, headers, Default::default(), HEALTH_WITHIN)
        .await
    else {
        return false;
    };
    // Answers reach `ask` only once opened (from whom is in the seal), except chunked ones,
    // opened by their receiver: a health answer is never one.
    let chunked = answer
        .headers
        .as_ref()
        .is_some_and(|h| h.get(lattice::chunks::CHUNKED_HEADER).is_some());
    if chunked || sender(&answer).as_deref() != Some(child_member) {
        return false;
    }
    lattice::decode::<lattice::Answer>(health, &answer.payload)
        .ok()
        .and_then(|answer| Result::<Vec<u8>, _>::from(answer).ok())
        .and_then(|bytes| lattice::decode::<weft_provider_sdk::Health>(health, &bytes).ok())
        .is_some()
}

/// SIGTERM, then SIGKILL after [`STOP_WITHIN`].
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(STOP_WITHIN, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

fn say(line: &str) {
    let _ = writeln!(Out::stdout(), "{line}");
}
