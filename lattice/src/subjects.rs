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

    /// Where a provider serves actors' calls (and its instances' queue group).
    pub fn provider_calls(&self, provider_id: &str) -> String {
        format!("{}.provider.{provider_id}.call", self.prefix)
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
