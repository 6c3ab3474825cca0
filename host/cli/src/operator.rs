//! Operator keys: the key `weft ctl` signs control requests with, and the keys a host trusts
//! to sign them (`weft_host::control::nats`). Without flags both come from the key store
//! (`$WEFT_HOME/keys/weft_operator.nk`, made on first use), so a host and `weft ctl` run by
//! the same user on one machine work together at once; a host on another machine trusts a key
//! given with `--ctl-key` (its public key, `O…`, from `weft claims keygen --kind operator`).

use crate::claims::key_from_arg;
use crate::keystore::KeyStore;
use anyhow::{Context, Result};
use wascap::{KeyPair, KeyRole};

/// The key store's name for the operator key.
const KEY_NAME: &str = "weft";

/// The key store's operator key, made on first use.
fn stored() -> Result<KeyPair> {
    let store = KeyStore::from_env()?;
    Ok(store
        .get_or_create(KEY_NAME, KeyRole::Operator)
        .context("failed to read or make the operator key")?
        .key)
}

/// The key `weft ctl` signs with: `--ctl-seed` (a seed, or a file holding one), else the key
/// store's.
pub fn signing_key(seed: Option<&str>) -> Result<KeyPair> {
    match seed {
        Some(seed) => key_from_arg(seed, KeyRole::Operator, "--ctl-seed"),
        None => stored(),
    }
}

/// The keys a host trusts: the key store's operator key and each `--ctl-key` (an operator
/// public key, `O…`).
pub fn trusted(keys: &[String]) -> Result<Vec<String>> {
    let mut trusted = vec![stored()?.public_key()];
    for key in keys {
        wascap::keys::public_key_with_role(key, KeyRole::Operator, "--ctl-key")?;
        trusted.push(key.clone());
    }
    Ok(trusted)
}
