//! `weft ctl update actor NAME FILE --canary 10%`: the new version on trial on every host
//! running the actor, each host judging it on its own calls; the command follows the hosts'
//! events until every one has promoted it or rolled it back, and fails if any rolled it back.
//! `weft ctl canary promote|rollback NAME` ends a canary by an operator's decision.

use super::{Lattice, each, opened, short};
use crate::output::Out;
use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};
use weft_host::canary::{CanaryPlan, PPM};
use weft_host::control::{ControlRequest, Done, EventKind, revision};

/// How long past its window a canary's verdict may take to arrive before the command stops
/// waiting (the hosts still decide; `weft ctl audit` shows what they did).
const VERDICT_SLACK: Duration = Duration::from_secs(30);
/// How often a canary being watched is said to be on a terminal.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

#[derive(Args)]
pub struct CanaryArgs {
    /// Try the new version on this share of the calls first (e.g. `10%`), then promote it
    /// or roll it back by itself, comparing its error rate and p99 with the running version's
    #[arg(long, value_name = "SHARE", value_parser = share_ppm)]
    canary: Option<u32>,
    /// How long the canary is watched before it is promoted (e.g. `60s`, `5m`)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration, requires = "canary")]
    watch_for: Duration,
    /// How far the canary's error rate may exceed the running version's (e.g. `1%`); past
    /// it, it is rolled back at once
    #[arg(long, value_name = "RATE", default_value = "1%", value_parser = fraction, requires = "canary")]
    max_error_rate: f64,
    /// How many times the running version's p99 latency the canary's may be, judged at the
    /// end of the window
    #[arg(long, value_name = "RATIO", default_value_t = 1.5, requires = "canary")]
    max_p99_ratio: f64,
}

impl CanaryArgs {
    /// The plan asked for, if a canary was; refused here when out of bounds, before anything
    /// is sent.
    pub fn plan(&self) -> Result<Option<CanaryPlan>> {
        let Some(share_ppm) = self.canary else {
            return Ok(None);
        };
        let plan = CanaryPlan {
            max_error_rate: self.max_error_rate,
            max_p99_ratio: self.max_p99_ratio,
            ..CanaryPlan::new(share_ppm, self.watch_for)
        };
        match plan.problem() {
            Some(problem) => bail!("{problem}"),
            None => Ok(Some(plan)),
        }
    }
}

#[derive(Subcommand)]
pub enum DecideCommand {
    /// Promote the canary's new version now: it serves every call
    Promote {
        /// The actor's name or module key
        actor: String,
    },
    /// Roll the canary back now: the running version serves every call again
    Rollback {
        /// The actor's name or module key
        actor: String,
    },
}

impl DecideCommand {
    /// The actor named, and whether to promote.
    pub fn decision(&self) -> (&str, bool) {
        match self {
            DecideCommand::Promote { actor } => (actor, true),
            DecideCommand::Rollback { actor } => (actor, false),
        }
    }
}

/// `10%`, `0.1` or `2.5%` as parts per million.
pub(super) fn share_ppm(text: &str) -> Result<u32, String> {
    let share = fraction(text)?;
    if !(share > 0.0 && share < 1.0) {
        return Err("a canary takes more than 0% and less than 100% of the calls".into());
    }
    // In range by the check above: the cast cannot truncate.
    Ok((share * f64::from(PPM)).round() as u32)
}

/// `1%` or `0.01` as a fraction.
fn fraction(text: &str) -> Result<f64, String> {
    let (number, scale) = match text.trim().strip_suffix('%') {
        Some(percent) => (percent, 100.0),
        None => (text.trim(), 1.0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a share: write it as 10% or 0.1"))?;
    let value = value / scale;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("{text:?} is not between 0% and 100%"));
    }
    Ok(value)
}

/// Starts the canary `request` asks for on each host of `on` running the actor, then waits
/// for every host that started it to promote it or roll it back, printing each verdict.
pub async fn update(
    lattice: &Lattice,
    out: &mut Out,
    json: bool,
    (actor_id, on): (&str, Vec<String>),
    request: ControlRequest,
    plan: CanaryPlan,
) -> Result<()> {
    // Subscribed before the canary starts, so that no verdict can come before we listen.
    let mut events = lattice.events().await?;

    let mut waiting = BTreeMap::new();
    let mut failed = 0;
    for (host, result) in each(lattice, on, request).await {
        match result {
            Ok(Done::Actor(actor)) => {
                if !json {
                    let canary = actor.canary.map(|c| revision(c.revision));
                    writeln!(
                        out,
                        "{host}  canary of {} revision {} beside revision {}: {:.1}% of the \
                         calls for {} s",
                        actor.name,
                        canary.unwrap_or_else(|| "?".into()),
                        revision(actor.revision),
                        f64::from(plan.share_ppm) * 100.0 / f64::from(PPM),
                        plan.watch_for().as_secs_f64()
                    )?;
                }
                waiting.insert(host, None);
            }
            Ok(other) => bail!("host {host} answered a canary with {other:?}"),
            Err(error) => {
                failed += 1;
                writeln!(out, "{host}  FAILED: {error:#}")?;
            }
        }
    }
    out.flush()?;

    let started = Instant::now();
    let give_up = started + plan.watch_for() + VERDICT_SLACK;
    let mut progress =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    while waiting.values().any(Option::is_none) {
        let message = tokio::select! {
            message = events.next() => message,
            _ = progress.tick() => {
                if terminal {
                    let left = waiting.values().filter(|v| v.is_none()).count();
                    // Progress only, on a terminal: a closed stderr is no reason to stop.
                    let _ = writeln!(
                        std::io::stderr(),
                        "  … {} s of {} s, {left} host(s) still judging",
                        started.elapsed().as_secs(),
                        plan.watch_for().as_secs()
                    );
                }
                continue;
            }
            () = tokio::time::sleep_until(give_up.into()) => break,
        };
        let Some(message) = message else {
            bail!(
                "the NATS connection ended while the canary ran; `weft ctl audit` shows how it ended"
            );
        };
        let Some(event) = opened(lattice, &message).await else {
            continue;
        };
        let promoted = match event.kind {
            EventKind::CanaryPromoted => true,
            EventKind::CanaryRolledBack => false,
            _ => continue,
        };
        if event.subject != actor_id {
            continue;
        }
        // Only a host asked has a verdict to give, and the event is its own (sealed by it).
        let Some(verdict) = waiting.get_mut(&event.host_id) else {
            continue;
        };
        if !json {
            let said = if promoted { "PROMOTED" } else { "ROLLED BACK" };
            writeln!(out, "{}  {said}: {}", event.host_id, event.detail)?;
            out.flush()?;
        }
        *verdict = Some((promoted, event));
    }

    let rolled_back = waiting
        .values()
        .filter(|v| matches!(v, Some((false, _))))
        .count();
    let silent: Vec<String> = waiting
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(host, _)| short(host))
        .collect();
    if json {
        let rows: Vec<serde_json::Value> = waiting
            .iter()
            .map(|(host, verdict)| match verdict {
                Some((promoted, event)) => serde_json::json!({
                    "host": host, "promoted": promoted, "detail": event.detail
                }),
                None => serde_json::json!({"host": host, "verdict": null}),
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    }
    let asked = waiting.len() + failed;
    if failed > 0 {
        bail!("the canary did not start on {failed} of {asked} host(s)");
    }
    if rolled_back > 0 {
        bail!(
            "the canary was rolled back on {rolled_back} of {asked} host(s); the running \
             version serves every call there"
        );
    }
    if !silent.is_empty() {
        return Err(anyhow!(
            "no verdict from host(s) {} within {} s; `weft ctl audit` shows how the canary ended",
            silent.join(", "),
            (plan.watch_for() + VERDICT_SLACK).as_secs()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_read_as_percent_or_fraction() {
        assert_eq!(share_ppm("10%"), Ok(100_000));
        assert_eq!(share_ppm("0.1"), Ok(100_000));
        assert_eq!(share_ppm(" 2.5 % "), Ok(25_000));
        for bad in ["0%", "100%", "150%", "ten", "-5%", "NaN"] {
            assert!(share_ppm(bad).is_err(), "{bad}");
        }
        assert_eq!(fraction("1%"), Ok(0.01));
        assert!(fraction("101%").is_err());
    }
}
