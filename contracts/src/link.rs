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

fn default_link_name() -> String {
    DEFAULT_LINK_NAME.to_string()
}
