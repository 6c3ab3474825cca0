//! Replacing one instance of a provider on the lattice with another without a failed or a
//! repeated call: the new instance is told of every link first (one it refuses ends the
//! replacement with nothing changed), then every host switches its calls to it and confirms
//! once the calls it sent the old instance are answered; only then may the old one leave.
//! Nothing depends on an unsubscribe: the old instance keeps its subscription until no host
//! routes to it (see `weft_provider_sdk::runner::Subscriptions::run`).

use super::membership::Membership;
use std::time::Duration;
use weft_lattice::{self as lattice, RouteSwitch};
use weft_provider_sdk::{Failure, FailureKind, LinkDefinition};

impl Membership {
    /// Hands `provider_id`'s calls over to `instance` (a member id): tells it of `links`, then
    /// has each host of `hosts` (member ids; this one is always included) route to it. `Err`
    /// names what failed: a link refused (no host was switched), or the hosts that did not
    /// confirm (those that did route to `instance` already; the caller keeps the old instance
    /// serving, and a call to one that goes away is made again at the one serving then).
    pub(crate) async fn hand_over(
        &self,
        provider_id: &str,
        instance: &str,
        links: &[LinkDefinition],
        hosts: &[String],
    ) -> Result<(), Failure> {
        let deadline = self.call_deadline;
        let subject = self
            .subjects
            .provider_instance_link_put(provider_id, instance);
        for link in links {
            let body = lattice::encode(&subject, link)?;
            let (_, from) = lattice::request_from(&self.member, subject.clone(), body, deadline)
                .await
                .map_err(|failure| {
                    Failure::new(
                        failure.kind,
                        format!(
                            "the new instance of {provider_id} refused the link of actor {} \
                             ({}, link {:?}): {failure}; nothing was switched",
                            link.actor_id, link.contract_id, link.link_name
                        ),
                    )
                })?;
            if from != instance {
                return Err(Failure::new(
                    FailureKind::Denied,
                    format!(
                        "member {from} answered for instance {instance} of {provider_id}; \
                         nothing was switched"
                    ),
                ));
            }
        }
        let switch = RouteSwitch {
            provider_id: provider_id.to_string(),
            instance: instance.to_string(),
        };
        let mut hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        hosts.push(self.member.id());
        hosts.sort_unstable();
        hosts.dedup();
        // A host waits up to its call deadline for calls to the old instance: twice that here.
        let within = deadline.saturating_mul(2) + Duration::from_secs(1);
        let asked = hosts.iter().map(|host| {
            let subject = self.subjects.routes(host);
            let switch = &switch;
            async move {
                let body = lattice::encode(&subject, switch)?;
                lattice::request(&self.member, subject, body, within)
                    .await
                    .map(|_| ())
            }
        });
        let answers = futures_util::future::join_all(asked).await;
        let unconfirmed: Vec<String> = hosts
            .iter()
            .zip(answers)
            .filter_map(|(host, answer)| answer.err().map(|e| format!("host {host}: {e}")))
            .collect();
        if unconfirmed.is_empty() {
            return Ok(());
        }
        Err(Failure::new(
            FailureKind::Unavailable,
            format!(
                "{} of {} host(s) did not confirm routing {provider_id} to its new instance ({}); \
                 the old instance keeps serving",
                unconfirmed.len(),
                hosts.len(),
                unconfirmed.join("; ")
            ),
        ))
    }
}
