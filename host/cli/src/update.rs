//! `weft update ACTOR FILE`: hot-swaps an actor of a running `weft up` to a new version,
//! at once or, with `--canary`, first as a canary on a share of the calls that the host
//! promotes or rolls back by itself; the command then waits for that verdict (read from the
//! host's audit trail, where every verdict is written) and fails if the canary was rolled
//! back, as `weft ctl update actor --canary` does across a lattice.

use crate::control::{self, names};
use crate::link::ControlArgs;
use crate::output::Out;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::time::{Duration, Instant};
use weft_host::canary::{CanaryPlan, PPM};
use weft_host::clock::unix_ms;
use weft_host::control::{ControlRequest, Done, EventKind, revision};

/// How long past its window a canary's verdict may take before the command stops waiting
/// (the host still decides).
const VERDICT_SLACK: Duration = Duration::from_secs(30);
/// How often the host's audit trail is read for the verdict.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// What `weft update` lets a new version do beyond the defaults.
pub struct UpdateFlags {
    pub allow_new_capabilities: bool,
    pub allow_new_issuer: bool,
}

/// `weft update ACTOR FILE [--canary SHARE ...]`.
pub async fn update(
    actor: String,
    file: std::path::PathBuf,
    flags: UpdateFlags,
    canary: Option<CanaryPlan>,
    args: ControlArgs,
) -> Result<()> {
    let endpoint = control::endpoint(args.control.as_deref())?;
    let module = weft_host::read_module(&file, weft_host::limits::DEFAULT_MAX_MODULE_BYTES)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let inventory = control::inventory(&endpoint).await?;
    let actor_id = control::resolve_actor(names(&inventory.actors), &actor)?;
    let request = ControlRequest::UpdateActor {
        actor_id: actor_id.clone(),
        module,
        allow_new_capabilities: flags.allow_new_capabilities,
        allow_new_issuer: flags.allow_new_issuer,
        canary,
    };
    // Verdicts written before this request are another update's.
    let asked_at_ms = unix_ms();
    let Done::Actor(info) = control::request(&endpoint, &request).await? else {
        bail!("the host answered an update without the actor");
    };
    let mut out = Out::stdout();
    let Some(plan) = canary else {
        writeln!(
            out,
            "updated {} ({}) to revision {}",
            info.name,
            info.id,
            revision(info.revision)
        )?;
        return Ok(());
    };
    writeln!(
        out,
        "canary of {} revision {} beside revision {}: {:.1}% of the calls for {} s",
        info.name,
        info.canary
            .map_or_else(|| "?".to_string(), |c| revision(c.revision)),
        revision(info.revision),
        f64::from(plan.share_ppm) * 100.0 / f64::from(PPM),
        plan.watch_for().as_secs_f64()
    )?;
    out.flush()?;
    let give_up = Instant::now() + plan.watch_for() + VERDICT_SLACK;
    loop {
        let Done::Audit(entries) = control::request(&endpoint, &ControlRequest::Audit).await?
        else {
            bail!("the host answered an audit request with something else");
        };
        // The host writes each verdict to its audit trail under its event's name.
        let (promoted, rolled_back) = (
            EventKind::CanaryPromoted.as_str(),
            EventKind::CanaryRolledBack.as_str(),
        );
        let verdict = entries.iter().rev().find(|entry| {
            entry.target == actor_id
                && entry.at_unix_ms >= asked_at_ms
                && (entry.action == promoted || entry.action == rolled_back)
        });
        if let Some(verdict) = verdict {
            if verdict.action == promoted {
                writeln!(out, "PROMOTED: {}", verdict.result)?;
                return Ok(());
            }
            writeln!(out, "ROLLED BACK: {}", verdict.result)?;
            out.flush()?;
            bail!("the canary was rolled back; the running version serves every call");
        }
        if Instant::now() > give_up {
            bail!(
                "no verdict within {} s; `weft actors` shows whether the canary still runs",
                (plan.watch_for() + VERDICT_SLACK).as_secs()
            );
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// `weft canary promote|rollback ACTOR`: ends a canary of a running `weft up` now.
pub async fn decide(command: crate::ctl::DecideCommand, args: ControlArgs) -> Result<()> {
    let endpoint = control::endpoint(args.control.as_deref())?;
    let inventory = control::inventory(&endpoint).await?;
    let (actor, promote) = command.decision();
    let actor_id = control::resolve_actor(names(&inventory.actors), actor)?;
    let request = ControlRequest::DecideCanary { actor_id, promote };
    let Done::Canary(verdict) = control::request(&endpoint, &request).await? else {
        bail!("the host answered a canary decision with something else");
    };
    let mut out = Out::stdout();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&verdict)?)?;
    } else {
        writeln!(out, "{verdict}")?;
    }
    Ok(())
}
