//! Guest log budgets (DESIGN, Limits): an actor's log lines, through `__console_log` and the
//! logging capability alike, count against its bytes per call and per second; past either
//! they are dropped, the call goes on, and the host says how much it dropped.

use crate::{cmd, guest};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;
use wascap::contracts;
use weft_host::actor::LoadPolicy;
use weft_host::limits::Limits;
use weft_host::{Host, HostConfig};

/// The host's log, kept in memory for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    /// Lines of the guest's: its console lines, and its "hi" through the logging capability.
    fn guest_lines(&self) -> (usize, usize) {
        let text = self.text();
        let console = text.matches("console-line").count();
        let capability = text.matches(" hi actor=").count();
        (console, capability)
    }
}

/// A host whose log goes to `log` for as long as the returned guard lives. The test runs on
/// one thread, so the guests' lines (written on it) all reach it.
fn host(limits: Limits, log: &Captured) -> (Host, tracing::subscriber::DefaultGuard) {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let host = Host::new(HostConfig {
        policy: LoadPolicy {
            limits,
            ..LoadPolicy::default()
        },
        ..HostConfig::default()
    })
    .unwrap();
    (host, guard)
}

#[tokio::test(flavor = "current_thread")]
async fn log_bytes_per_call_obeyed_and_enforced_for_console_and_capability_together() {
    let log = Captured::default();
    let (host, _guard) = host(
        Limits {
            max_log_bytes_per_call: 4096,
            ..Limits::default()
        },
        &log,
    );
    let actor = host
        .start_actor(&guest(&[contracts::LOGGING]))
        .await
        .unwrap()
        .id;
    // Obeyed: three 1 KiB console lines and "hi" fit in 4 KiB.
    assert_eq!(
        host.invoke(&actor, "run", &cmd(b'C', 3)).await.unwrap(),
        b"boom"
    );
    assert_eq!(log.guest_lines(), (3, 1), "{}", log.text());
    // Four console lines fill the call's budget: its "hi" through the capability is dropped,
    // and the call still succeeds.
    assert_eq!(
        host.invoke(&actor, "run", &cmd(b'C', 4)).await.unwrap(),
        b"boom"
    );
    assert_eq!(log.guest_lines(), (7, 1), "{}", log.text());
    // A call that writes 10 MiB gets 4 KiB of it into the host's log.
    assert_eq!(
        host.invoke(&actor, "run", &cmd(b'C', 10 << 10))
            .await
            .unwrap(),
        b"boom"
    );
    assert_eq!(log.guest_lines(), (11, 1), "{}", log.text());
    let text = log.text();
    assert!(
        text.contains("went over its log budget of 4096 bytes in one call"),
        "{text}"
    );
    assert_eq!(
        text.matches("went over its log budget of").count(),
        1,
        "one line of the host's a second, however many lines it drops: {text}"
    );
    // The next call has its own budget again.
    assert_eq!(
        host.invoke(&actor, "run", &cmd(b'C', 1)).await.unwrap(),
        b"boom"
    );
    assert_eq!(log.guest_lines(), (12, 2), "{}", log.text());
}

#[tokio::test(flavor = "current_thread")]
async fn log_bytes_per_second_obeyed_and_enforced_over_all_calls() {
    let log = Captured::default();
    let per_second = 8 << 10;
    let (host, _guard) = host(
        Limits {
            max_log_bytes_per_second: per_second,
            ..Limits::default()
        },
        &log,
    );
    let started = Instant::now();
    let actor = host
        .start_actor(&guest(&[contracts::LOGGING]))
        .await
        .unwrap()
        .id;
    // 20 calls of 8 KiB each, as fast as they go: each within the 64 KiB per call, together
    // far over 8 KiB a second.
    for _ in 0..20 {
        assert_eq!(
            host.invoke(&actor, "run", &cmd(b'C', 8)).await.unwrap(),
            b"boom"
        );
    }
    let seconds = started.elapsed().as_secs() as usize;
    let (console, _) = log.guest_lines();
    // The window restarts at most once a second, so in `seconds` at most `seconds + 1` of
    // them have begun.
    assert!(console >= 8, "the first 8 KiB is obeyed: {console}");
    assert!(
        console * 1024 <= per_second * (seconds + 1),
        "{console} KiB logged in {seconds} s, over the {per_second} bytes a second"
    );
    assert!(
        log.text()
            .contains("went over its log budget of 8192 bytes a second")
    );
    // A second later the actor may log again, and the host says how much it dropped.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        host.invoke(&actor, "run", &cmd(b'C', 1)).await.unwrap(),
        b"boom"
    );
    assert_eq!(log.guest_lines().0, console + 1, "{}", log.text());
    let text = log.text();
    assert!(
        text.contains("went over its log budget:") && text.contains("of its log were dropped"),
        "{text}"
    );
}
