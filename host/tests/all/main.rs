//! Integration tests of the runtime library, as one binary (STYLE.md §10).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod architecture;
mod host;
mod lattice;
mod runtime;
mod snapshot;
mod swap;

use std::path::PathBuf;
use wascap::{Actor, Claims, KeyRole};

/// The misbehaving test guest (see the commands at its top).
pub const GUEST: &str = include_str!("guest.wat");

/// Signs `module` as an actor named "guest" with `caps`, by a fresh account.
pub fn sign(module: &[u8], caps: &[&str]) -> Vec<u8> {
    let account = KeyRole::Account.generate().unwrap();
    let subject = KeyRole::Module.generate().unwrap();
    let claims = Claims::new(
        account.public_key(),
        subject.public_key(),
        Actor {
            name: Some("guest".into()),
            caps: Some(caps.iter().map(|c| c.to_string()).collect()),
            ..Actor::default()
        },
    );
    wascap::embed_claims(module, &claims, &account).unwrap()
}

/// The test guest, signed with `caps`.
pub fn guest(caps: &[&str]) -> Vec<u8> {
    sign(&wat::parse_str(GUEST).unwrap(), caps)
}

/// A payload for the test guest: the command byte, then its argument.
pub fn cmd(command: u8, arg: i32) -> Vec<u8> {
    let mut payload = vec![command];
    payload.extend_from_slice(&arg.to_le_bytes());
    payload
}

/// A signed example actor, built by the test command (`scripts/test.sh` runs `weft build`).
pub fn signed_actor(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("actors").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: the actors are built and signed by `scripts/test.sh` \
         (or by hand: `cargo run -p weft-cli -- build`)",
        path.display()
    );
    path
}
