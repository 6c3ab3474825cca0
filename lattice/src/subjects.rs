//! Every subject of a lattice, built in one place. Each starts with `weft.{lattice}`, so
//! lattices share a NATS server without seeing each other.

/// The subjects of one lattice.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// The subjects of lattice `lattice`.
    pub fn new(lattice: &str) -> Self {
        Subjects {
            prefix: format!("weft.{lattice}"),
        }
    }

    /// Where an actor is invoked (and the queue group of the hosts running it).
    pub fn actor(&self, actor_id: &str) -> String {
        format!("{}.actor.{actor_id}", self.prefix)
    }

    /// Where an actor is invoked by its call alias (and the queue group of the hosts running
    /// it); `None` for an alias that is not a valid subject (a space, a wildcard, an empty
    /// token), which then reaches the actor only on its own host.
    pub fn actor_alias(&self, alias: &str) -> Option<String> {
        let valid = !alias.is_empty()
            && alias.split('.').all(|token| {
                !token.is_empty()
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
            });
        valid.then(|| format!("{}.alias.{alias}", self.prefix))
    }

    /// Where one instance (a process, or a host serving its in-process provider) of provider
    /// `provider_id` serves actors' calls. Each instance has its own: a host calls the one it
    /// routes to, and switching instances is a host changing subject, never an instance
    /// unsubscribing while calls may be on their way to it.
    pub fn provider_instance_calls(&self, provider_id: &str, instance: &str) -> String {
        format!(
            "{}.provider.{provider_id}.instance.{instance}.call",
            self.prefix
        )
    }

    /// Where one instance of a provider is told of a link before calls are switched to it.
    pub fn provider_instance_link_put(&self, provider_id: &str, instance: &str) -> String {
        format!(
            "{}.provider.{provider_id}.instance.{instance}.link.put",
            self.prefix
        )
    }

    /// Where one instance of a provider process is told to leave, once no host routes to it.
    pub fn provider_instance_leave(&self, provider_id: &str, instance: &str) -> String {
        format!(
            "{}.provider.{provider_id}.instance.{instance}.leave",
            self.prefix
        )
    }

    /// Where every instance of a provider says that it serves (how a host finds one to route
    /// to).
    pub fn provider_instances(&self, provider_id: &str) -> String {
        format!("{}.provider.{provider_id}.instances", self.prefix)
    }

    /// Where the host that is member `member_id` is told to route a provider's calls to
    /// another instance.
    pub fn routes(&self, member_id: &str) -> String {
        format!("{}.routes.{member_id}", self.prefix)
    }

    /// Where a provider is told of a new link.
    pub fn provider_link_put(&self, provider_id: &str) -> String {
        format!("{}.provider.{provider_id}.link.put", self.prefix)
    }

    /// Where a provider is told a link is gone.
    pub fn provider_link_del(&self, provider_id: &str) -> String {
        format!("{}.provider.{provider_id}.link.del", self.prefix)
    }

    /// Where a provider that was not told of a link a call names asks the hosts for it (each
    /// host holding it answers).
    pub fn provider_link_get(&self, provider_id: &str) -> String {
        format!("{}.provider.{provider_id}.link.get", self.prefix)
    }

    /// Every provider's link requests (what hosts subscribe to).
    pub fn provider_link_gets(&self) -> String {
        format!("{}.provider.*.link.get", self.prefix)
    }

    /// Where a provider answers health checks.
    pub fn provider_health(&self, provider_id: &str) -> String {
        format!("{}.provider.{provider_id}.health", self.prefix)
    }

    /// Where a member answers requests for its key (`member`).
    pub fn member_key(&self, member_id: &str) -> String {
        format!("{}.member.{member_id}.key", self.prefix)
    }

    /// Where every host answers with its inventory.
    pub fn ping(&self) -> String {
        format!("{}.ctl.ping", self.prefix)
    }

    /// Where one host takes control requests.
    pub fn control_host(&self, host_id: &str) -> String {
        format!("{}.ctl.host.{host_id}", self.prefix)
    }

    /// Where events of `kind` (`actor_started`, ...) are published.
    pub fn event(&self, kind: &str) -> String {
        format!("{}.evt.{kind}", self.prefix)
    }

    /// Every event.
    pub fn all_events(&self) -> String {
        format!("{}.evt.>", self.prefix)
    }
}
