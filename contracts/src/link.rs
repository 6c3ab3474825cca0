//! Link definitions: which provider serves an actor for a contract, under which link name,
//! with which settings. The shape is wasmCloud 0.x's (`wasmbus_rpc::core::LinkDefinition`),
//! less the provider's contract key, which a Weft link names by provider id alone.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The link name used when an actor names none.
pub const DEFAULT_LINK_NAME: &str = "default";

/// Binds one actor to one provider for one contract under one link name, with the settings
/// the provider needs for that actor (a port to listen on, a Redis URL, subjects, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkDefinition {
    /// The actor's id (module key `M…`).
    pub actor_id: String,
    /// The contract id.
    pub contract_id: String,
    /// The link name; [`DEFAULT_LINK_NAME`] unless the actor asks for another.
    #[serde(default = "default_link_name")]
    pub link_name: String,
    /// The provider's id.
    pub provider_id: String,
    /// Settings for this actor.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

/// Which link a call goes through: the actor, the contract and the link name. A call to a
/// provider over the lattice names its link by this and never carries the link's values: the
/// provider looks them up among the links it was told of.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LinkKey {
    /// The actor's id.
    pub actor_id: String,
    /// The contract id.
    pub contract_id: String,
    /// The link name.
    pub link_name: String,
}

impl LinkDefinition {
    /// The key this link is found by.
    pub fn key(&self) -> LinkKey {
        LinkKey {
            actor_id: self.actor_id.clone(),
            contract_id: self.contract_id.clone(),
            link_name: self.link_name.clone(),
        }
    }
}

fn default_link_name() -> String {
    DEFAULT_LINK_NAME.to_string()
}
