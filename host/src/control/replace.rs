//! Replacing a provider that runs as a process of its own, live: its replacement starts (a
//! supervised child started here, or a process its operator started), the lattice's calls are
//! handed over to it (`Host::hand_over_provider`: links first, then every host switches and
//! confirms), and only then is the old process stopped or told to leave, so no call is lost
//! in an unsubscribe window and none is applied twice.

use super::handler::{Control, ControlError};
use super::wire::{Done, EventKind, ProviderSummary};
use super::{ProviderProcess, nats};
use crate::HostError;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_lattice::{self as lattice, ProviderInstance};

/// How long the hosts of the lattice have to say they are there before a hand-over.
const HOSTS_ANSWER_WITHIN: Duration = Duration::from_millis(500);
/// How long the processes of a provider have to say they serve.
const INSTANCES_ANSWER_WITHIN: Duration = Duration::from_millis(500);
/// How long an old process has to say it heard it must leave.
const LEAVE_ANSWERED_WITHIN: Duration = Duration::from_secs(2);
/// Most processes of one provider id asked about at once.
const MOST_INSTANCES: usize = 64;

impl Control {
    /// Replaces the supervised provider process `old` (of `summary`) with a new child
    /// configured with `config`. A provider that holds what only a replacement in its own
    /// process can take over (data in memory, subscriptions) is refused, saying so.
    pub(super) async fn replace_process(
        &self,
        summary: ProviderSummary,
        config: BTreeMap<String, String>,
        old: Arc<dyn ProviderProcess>,
        by: &str,
    ) -> Result<Done, ControlError> {
        let (id, kind) = (summary.id.clone(), summary.kind.clone());
        if let Err(reason) = self
            .factory()
            .provider(&kind, &config)
            .map_or(Ok(()), |provider| provider.replaceable_by_process())
        {
            return Err(ControlError::InProcessOnly { id, kind, reason });
        }
        let started = Instant::now();
        let new = self
            .factory()
            .start_process(&id, &kind, &config)
            .await
            .map_err(ControlError::Factory)?;
        let handed_over = match new.instance() {
            Some(instance) => self.hand_over(&id, &instance).await,
            None => Err(ControlError::ReplacementNotServing(id.clone())),
        };
        if let Err(error) = handed_over {
            new.stop().await;
            return Err(error);
        }
        let pid = new.status().pid.unwrap_or_default();
        self.record_process(summary.clone(), config, new);
        old.stop().await;
        if let Some(metrics) = self.host().metrics() {
            metrics.provider_replaced(&id);
        }
        let detail = format!(
            "{kind} now process {pid}; the old one left after {} ms",
            started.elapsed().as_millis()
        );
        self.publish(EventKind::ProviderUpdated, &id, detail, by)
            .await;
        Ok(Done::Provider(summary))
    }

    /// Replaces a provider process no host supervises with the newest process of its id
    /// (which its operator started): hands the calls over to it, then tells the older ones
    /// to leave.
    pub(super) async fn replace_standalone(
        &self,
        id: &str,
        by: &str,
    ) -> Result<Done, ControlError> {
        let member = self.lattice_member()?;
        let subject = member.subjects().provider_instances(id);
        let answers = lattice::gather(
            &member,
            subject.clone(),
            Vec::new(),
            INSTANCES_ANSWER_WITHIN,
            lattice::chunks::MAX_SMALL_BODY_BYTES,
            MOST_INSTANCES,
        )
        .await
        .map_err(|failure| HostError::Lattice(failure.message))?;
        // Each answer counts only from the process it names.
        let mut instances: Vec<ProviderInstance> = answers
            .into_iter()
            .filter_map(|(body, from)| {
                lattice::decode::<ProviderInstance>(&subject, &body)
                    .ok()
                    .filter(|i| i.instance == from && i.provider_id == id)
            })
            .collect();
        let Some(newest) = instances
            .iter()
            .max_by_key(|i| i.serving_since_ms)
            .cloned()
            .filter(|_| instances.len() >= 2)
        else {
            return Err(ControlError::NoReplacement {
                id: id.to_string(),
                serving: instances.len(),
            });
        };
        if let Some(reason) = instances.iter().find_map(|i| i.not_replaceable.clone()) {
            return Err(ControlError::InProcessOnly {
                id: id.to_string(),
                kind: "process".into(),
                reason,
            });
        }
        self.hand_over(id, &newest.instance).await?;
        instances.retain(|i| i.instance != newest.instance);
        for old in &instances {
            let leave = member.subjects().provider_instance_leave(id, &old.instance);
            if let Err(error) =
                lattice::request(&member, leave, Vec::new(), LEAVE_ANSWERED_WITHIN).await
            {
                tracing::warn!(provider = id, instance = %old.instance, %error, "an old process was not told to leave; no host routes to it");
            }
        }
        let detail = format!(
            "process {} took over from {} older one(s)",
            newest.instance,
            instances.len()
        );
        self.publish(EventKind::ProviderUpdated, id, detail, by)
            .await;
        Ok(Done::Provider(ProviderSummary {
            id: id.to_string(),
            kind: "process".into(),
            process: true,
            changed_by: Some(by.to_string()),
            ..ProviderSummary::default()
        }))
    }

    /// Hands `id`'s calls on the lattice over to `instance`, with every host that answers a
    /// ping now.
    async fn hand_over(&self, id: &str, instance: &str) -> Result<(), ControlError> {
        let member = self.lattice_member()?;
        let hosts = nats::inventories(&member, HOSTS_ANSWER_WITHIN)
            .await
            .map_err(|failure| HostError::Lattice(failure.message))?;
        let members: Vec<String> = hosts
            .into_iter()
            .map(|host| host.member_id)
            .filter(|member| !member.is_empty())
            .collect();
        Ok(self
            .host()
            .hand_over_provider(id, instance, &members)
            .await?)
    }

    fn lattice_member(&self) -> Result<Arc<lattice::Member>, ControlError> {
        self.host().lattice_member().ok_or_else(|| {
            HostError::Lattice("this host is on no lattice, where provider processes serve".into())
                .into()
        })
    }
}
