//! The host's rounds of health checks (what they check: `crate::health`), and readiness read
//! from the last one.

use super::{Host, Routes};
use crate::clock::unix_ms;
use crate::health::{self, Book, HealthChange, HealthConfig, HealthStatus, Part, Readiness};
use crate::invoke::{Deadline, builtins};
use futures_util::future::join_all;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::PoisonError;
use tokio::sync::broadcast;
use weft_contracts::actor::{HEALTH_REQUEST, HealthCheckResponse};

/// How many changes a slow subscriber may fall behind before it misses some.
pub(super) const CHANGES_KEPT: usize = 256;

impl Host {
    /// Readiness as the last round of checks found it (not ready before the first round).
    pub fn readiness(&self) -> Readiness {
        self.book().readiness()
    }

    /// Each part's health as the last round found it: actors by module key, providers by id.
    pub fn health_of(&self, part: Part, id: &str) -> Option<HealthStatus> {
        let book = self.book();
        match part {
            Part::Actor => book.actors.get(id).map(|(_, status)| status.clone()),
            Part::Provider => book.providers.get(id).cloned(),
            Part::Lattice => book.lattice.clone(),
        }
    }

    /// The parts that turn healthy or unhealthy from now on (a part first seen unhealthy
    /// too). A subscriber more than a few hundred changes behind misses the oldest.
    pub fn health_changes(&self) -> broadcast::Receiver<HealthChange> {
        self.state.health_changes.subscribe()
    }

    /// Checks every `config.interval` (jittered) until the host is dropped; the first round
    /// runs at once.
    pub fn watch_health(&self, config: HealthConfig) -> tokio::task::JoinHandle<()> {
        let host = std::sync::Arc::downgrade(&self.state);
        tokio::spawn(async move {
            loop {
                let Some(state) = host.upgrade() else { return };
                Host { state }.check_health(config).await;
                tokio::time::sleep(health::jittered(config.interval)).await;
            }
        })
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.state
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One round of checks (see `crate::health`): records what it found, tells subscribers
    /// what changed, and returns the readiness it found.
    pub async fn check_health(&self, config: HealthConfig) -> Readiness {
        let pools: Vec<_> = self
            .state
            .actors
            .read()
            .values()
            .map(|served| served.stable.clone())
            .collect();
        // Each actor's links, read once for the round (by position, as `pools`).
        let links: Vec<_> = pools
            .iter()
            .map(|pool| {
                self.state
                    .provider_routes
                    .links()
                    .of_actor(&pool.identity().id)
            })
            .collect();

        // Providers: those running here, and any a local actor's link names.
        let mut provider_ids: BTreeSet<String> = self
            .state
            .provider_routes
            .provider_ids()
            .into_iter()
            .collect();
        provider_ids.extend(links.iter().flatten().map(|l| l.provider_id.clone()));
        let provider_problems: BTreeMap<String, Vec<String>> =
            join_all(provider_ids.into_iter().map(|id| async move {
                let problems = self.provider_problems(&id, config).await;
                (id, problems)
            }))
            .await
            .into_iter()
            .collect();

        let lattice_problems = self.state.lattice.membership().map(|membership| {
            match membership.client.connection_state() {
                async_nats::connection::State::Connected => Vec::new(),
                state => vec![format!(
                    "the host's NATS connection to lattice {} is {state}: it neither serves nor \
                     reaches the lattice's other members until it reconnects (check the NATS \
                     server)",
                    membership.name
                )],
            }
        });

        // Actors: all at once; each check goes only to an idle instance.
        let answers = join_all(pools.iter().map(|pool| async move {
            let answer = own_answer(pool, config).await;
            (pool.identity().id.clone(), answer)
        }))
        .await;

        let now = unix_ms();
        let mut changes = Vec::new();
        let readiness = {
            let mut book = self.book();
            // Providers first: a change's cause is told before its effects on actors.
            let mut providers = BTreeMap::new();
            for (id, problems) in &provider_problems {
                let (status, changed) =
                    health::next_status(book.providers.get(id), problems.clone(), now);
                if changed {
                    changes.push(HealthChange {
                        part: Part::Provider,
                        id: id.clone(),
                        status: status.clone(),
                    });
                }
                providers.insert(id.clone(), status);
            }
            book.providers = providers;

            let mut actors = BTreeMap::new();
            for ((pool, links), (id, answer)) in pools.iter().zip(&links).zip(answers) {
                let identity = pool.identity();
                let own = match answer {
                    Some(answer) => {
                        book.own_answers.insert(id.clone(), answer.clone());
                        Some(answer)
                    }
                    None => book.own_answers.get(&id).cloned(),
                };
                let mut problems = Self::capability_problems(identity, links, &provider_problems);
                if let Some(Err(own)) = own {
                    problems.push(own);
                }
                let (status, changed) =
                    health::next_status(book.actors.get(&id).map(|(_, s)| s), problems, now);
                if changed {
                    changes.push(HealthChange {
                        part: Part::Actor,
                        id: id.clone(),
                        status: status.clone(),
                    });
                }
                actors.insert(id, (identity.name.clone(), status));
            }
            book.own_answers.retain(|id, _| actors.contains_key(id));
            book.actors = actors;

            book.lattice = match (lattice_problems, self.state.lattice.membership()) {
                (Some(problems), Some(membership)) => {
                    let (status, changed) =
                        health::next_status(book.lattice.as_ref(), problems, now);
                    if changed {
                        changes.push(HealthChange {
                            part: Part::Lattice,
                            id: membership.name.clone(),
                            status: status.clone(),
                        });
                    }
                    Some(status)
                }
                _ => None,
            };
            book.checked_unix_ms = now;
            book.readiness()
        };
        for change in changes {
            if change.status.healthy {
                tracing::info!(part = ?change.part, id = %change.id, "healthy again");
            } else {
                tracing::warn!(part = ?change.part, id = %change.id, problems = ?change.status.problems, "unhealthy");
            }
            // Nobody subscribed is not an error.
            let _ = self.state.health_changes.send(change);
        }
        readiness
    }

    /// What is wrong with provider `id`: not running anywhere this host can reach, or its
    /// own word that it is unhealthy, or no word within the timeout.
    async fn provider_problems(&self, id: &str, config: HealthConfig) -> Vec<String> {
        let Some(provider) = Routes::provider(&*self.state, id) else {
            return vec![format!(
                "provider {id} is named by a link and runs neither on this host nor on the \
                 lattice; start it (`weft ctl start provider`), or link the actors to one that runs"
            )];
        };
        match tokio::time::timeout(config.timeout, provider.health()).await {
            Ok(health) if health.healthy => Vec::new(),
            Ok(health) => vec![format!(
                "provider {id} reports itself unhealthy: {}",
                health.message.unwrap_or_else(|| "it gave no reason".into())
            )],
            Err(_) => vec![format!(
                "provider {id} did not answer its health check within {} ms",
                config.timeout.as_millis()
            )],
        }
    }

    /// What an actor lacks to serve: a link for each capability its claims sign it for
    /// (other than the host's built-ins), and a healthy provider behind each link.
    fn capability_problems(
        identity: &crate::ActorIdentity,
        links: &[std::sync::Arc<weft_provider_sdk::LinkDefinition>],
        providers: &BTreeMap<String, Vec<String>>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        for contract in &identity.capabilities {
            if builtins::serves(contract) || links.iter().any(|l| l.contract_id == *contract) {
                continue;
            }
            problems.push(format!(
                "actor {} is signed for {contract} and has no link for it; put one: `weft link \
                 put {} {contract} PROVIDER_ID`",
                identity.name, identity.name
            ));
        }
        for link in links {
            if let Some(theirs) = providers.get(&link.provider_id).filter(|p| !p.is_empty()) {
                problems.push(format!(
                    "its link for {} ({}) names provider {}, which is unhealthy: {}",
                    link.contract_id,
                    link.link_name,
                    link.provider_id,
                    theirs.join("; ")
                ));
            }
        }
        problems
    }
}

/// The actor's answer to `Actor.HealthRequest`, if an instance was idle to ask: `Err` says
/// what is wrong.
async fn own_answer(pool: &crate::ActorPool, config: HealthConfig) -> Option<Result<(), String>> {
    let name = &pool.identity().name;
    // An empty MessagePack map: the request carries nothing.
    let answer = pool
        .invoke_if_idle(HEALTH_REQUEST, &[0x80], Deadline::after(config.timeout))
        .await?;
    Some(match answer {
        Ok(bytes) => match weft_contracts::decode::<HealthCheckResponse>(&bytes) {
            Ok(health) if health.healthy => Ok(()),
            Ok(health) => Err(format!(
                "actor {name} reports itself unhealthy: {}",
                health.message.unwrap_or_else(|| "it gave no reason".into())
            )),
            Err(error) => Err(format!(
                "actor {name} answered {HEALTH_REQUEST} with what is not a health report: {error}"
            )),
        },
        Err(error) => Err(format!("actor {name}'s {HEALTH_REQUEST} failed: {error}")),
    })
}
