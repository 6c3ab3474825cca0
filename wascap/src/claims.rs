//! The claims carried in a token, with wascap's exact JSON names so tokens interoperate with
//! wasmCloud's tooling (`wash`, the published `wascap` crate).
//!
//! Decisions:
//! - `caps` is written although wascap 0.14+ dropped it: Weft enforces capabilities from it, and
//!   wascap ignores unknown fields, so both sides still read the token.
//! - `wascap_revision` is always written as [`WASCAP_REVISION`] (3). A module hash matches if it
//!   is that of the module less its claims either as wascap re-encodes it or byte for byte (a
//!   tool that padded its section sizes hashed the latter). Below revision 3, as in wascap, a
//!   hash that matches neither is not held against the token (older wascap hashed another way),
//!   unless `VerifyOptions::require_module_hash`; `Verified::hash_checked` says which.
//! - Provider claims always carry `capid`: wascap 0.13 requires it, 0.16 ignores it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// The claims revision Weft writes; wascap verifies module hashes from this revision on.
pub const WASCAP_REVISION: u32 = 3;

/// A JWT's claims with wascap's metadata `T` ([`Actor`] or [`Provider`]) under `wascap`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims<T> {
    /// `exp`: seconds since the Unix epoch after which the token is refused.
    #[serde(rename = "exp", default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// `jti`: a unique id for this token.
    #[serde(rename = "jti")]
    pub id: String,
    /// `iat`: when it was issued, seconds since the Unix epoch.
    #[serde(rename = "iat")]
    pub issued_at: u64,
    /// `iss`: the public key (account, `A…`) that signed the token.
    #[serde(rename = "iss")]
    pub issuer: String,
    /// `sub`: the public key of what the token is about (module `M…`, service `V…`).
    #[serde(rename = "sub")]
    pub subject: String,
    /// `nbf`: seconds since the Unix epoch before which the token is refused.
    #[serde(rename = "nbf", default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<u64>,
    /// `wascap`: what kind of thing the subject is and what it may do.
    #[serde(
        rename = "wascap",
        default = "none",
        skip_serializing_if = "Option::is_none"
    )]
    pub metadata: Option<T>,
    /// `wascap_revision`: the claims format revision.
    #[serde(
        rename = "wascap_revision",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub wascap_revision: Option<u32>,
}

// serde's `default` on a generic `Option<T>` would demand `T: Default`.
fn none<T>() -> Option<T> {
    None
}

impl<T> Claims<T> {
    /// New claims issued now, with a fresh `jti` and the current revision.
    pub fn new(issuer: String, subject: String, metadata: T) -> Self {
        Claims {
            expires: None,
            id: new_token_id(),
            issued_at: unix_now(),
            issuer,
            subject,
            not_before: None,
            metadata: Some(metadata),
            wascap_revision: Some(WASCAP_REVISION),
        }
    }
}

/// Metadata of an actor token (`wascap` object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Human-friendly name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Uppercase hex SHA-256 of the module without its claims sections.
    #[serde(rename = "hash", default)]
    pub module_hash: String,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Capability contract ids the actor may call (`wasmcloud:keyvalue`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caps: Option<Vec<String>>,
    /// Monotonic revision; an update may not lower it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<i32>,
    /// Human-friendly version string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
    /// An alias other actors may call this one by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_alias: Option<String>,
    /// Whether the module is itself a capability provider.
    #[serde(rename = "prov", default)]
    pub provider: bool,
}

impl Actor {
    /// The capabilities the actor was signed for; none when `caps` is absent.
    pub fn capabilities(&self) -> &[String] {
        self.caps.as_deref().unwrap_or_default()
    }

    /// Whether the actor was signed for `contract_id`.
    pub fn has_capability(&self, contract_id: &str) -> bool {
        self.capabilities().iter().any(|c| c == contract_id)
    }
}

/// Metadata of a capability provider token (`wascap` object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    /// Human-friendly name.
    #[serde(default)]
    pub name: Option<String>,
    /// The contract the provider serves (`wasmcloud:keyvalue`).
    #[serde(default)]
    pub capid: String,
    /// Who makes it.
    #[serde(default)]
    pub vendor: String,
    /// Monotonic revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<i32>,
    /// Human-friendly version string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
    /// Target triple → hash of the binary built for it.
    #[serde(default)]
    pub target_hashes: BTreeMap<String, String>,
    /// JSON schema of the provider's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_schema: Option<serde_json::Value>,
}

/// Seconds since the Unix epoch by the system clock (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A random 128-bit token id, as uppercase hex.
fn new_token_id() -> String {
    data_encoding::HEXUPPER.encode(&rand::random::<[u8; 16]>())
}

/// Well-known capability contract ids and the names people know them by.
pub mod contracts {
    /// `wasmcloud:keyvalue`
    pub const KEYVALUE: &str = "wasmcloud:keyvalue";
    /// `wasmcloud:messaging`
    pub const MESSAGING: &str = "wasmcloud:messaging";
    /// `wasmcloud:httpserver`
    pub const HTTP_SERVER: &str = "wasmcloud:httpserver";
    /// `wasmcloud:httpclient`
    pub const HTTP_CLIENT: &str = "wasmcloud:httpclient";
    /// `wasmcloud:builtin:logging`
    pub const LOGGING: &str = "wasmcloud:builtin:logging";
    /// `wasmcloud:builtin:numbergen`
    pub const NUMBERGEN: &str = "wasmcloud:builtin:numbergen";
    /// `wasmcloud:blobstore`
    pub const BLOBSTORE: &str = "wasmcloud:blobstore";

    const FRIENDLY: [(&str, &str); 7] = [
        (KEYVALUE, "K/V Store"),
        (MESSAGING, "Messaging"),
        (HTTP_SERVER, "HTTP Server"),
        (HTTP_CLIENT, "HTTP Client"),
        (LOGGING, "Logging"),
        (NUMBERGEN, "Number Generator"),
        (BLOBSTORE, "Blob Store"),
    ];

    /// The friendly name of a well-known contract, or the contract id itself.
    pub fn friendly_name(contract_id: &str) -> &str {
        FRIENDLY
            .iter()
            .find(|(id, _)| *id == contract_id)
            .map_or(contract_id, |(_, name)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_claims_use_wascap_field_names() {
        let mut claims = Claims::new(
            "AISSUER".to_string(),
            "MSUBJECT".to_string(),
            Actor {
                name: Some("echo".into()),
                module_hash: "ABC".into(),
                caps: Some(vec![contracts::KEYVALUE.into()]),
                rev: Some(2),
                ..Actor::default()
            },
        );
        claims.expires = Some(10);
        let json: serde_json::Value = serde_json::to_value(&claims).unwrap();
        for key in [
            "exp",
            "jti",
            "iat",
            "iss",
            "sub",
            "wascap",
            "wascap_revision",
        ] {
            assert!(json.get(key).is_some(), "missing {key} in {json}");
        }
        assert_eq!(json["wascap_revision"], 3);
        assert_eq!(json["wascap"]["hash"], "ABC");
        assert_eq!(json["wascap"]["caps"][0], "wasmcloud:keyvalue");
        assert_eq!(json["wascap"]["prov"], false);
        assert!(
            json.get("nbf").is_none(),
            "absent nbf is not written: {json}"
        );
    }

    #[test]
    fn friendly_names_fall_back_to_the_id() {
        assert_eq!(contracts::friendly_name(contracts::KEYVALUE), "K/V Store");
        assert_eq!(contracts::friendly_name("acme:thing"), "acme:thing");
    }
}
