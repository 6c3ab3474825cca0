//! Integration tests of the runtime library, as one binary (STYLE.md §10).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod actor_calls;
mod architecture;
mod canary;
mod control;
mod fuzz;
mod generations;
mod health;
mod host;
mod instances;
mod lattice;
mod logs;
mod metrics;
mod overload;
mod rogue;
mod runtime;
mod snapshot;
mod swap;

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

pub use weft_testing::actors::signed_actor;

/// The lattice issuer every member in these tests is signed by (each test runs its own
/// `nats-server`, so they share nothing else).
pub fn credentials() -> &'static weft_lattice::Credentials {
    static CREDENTIALS: std::sync::OnceLock<weft_lattice::Credentials> = std::sync::OnceLock::new();
    CREDENTIALS.get_or_init(weft_lattice::Credentials::generate)
}

/// The call subject of the instance of provider `provider_id` serving now, asked as
/// `member` until one answers (10 s at most).
pub async fn instance_calls(member: &weft_lattice::Member, provider_id: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        let within = std::time::Duration::from_millis(500);
        match weft_lattice::calls::find_instance(member, provider_id, within).await {
            Ok(instance) => {
                return member
                    .subjects()
                    .provider_instance_calls(provider_id, &instance);
            }
            Err(error) => {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(10),
                    "no instance of {provider_id} came up: {error}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

/// A member of `lattice` on the NATS server at `url`, signed by [`credentials`].
pub async fn join(url: &str, lattice: &str, name: &str) -> std::sync::Arc<weft_lattice::Member> {
    let client = weft_lattice::connect(&weft_lattice::NatsOptions {
        url: url.to_string(),
        ..weft_lattice::NatsOptions::default()
    })
    .await
    .unwrap();
    weft_lattice::Member::join(client, lattice, name, credentials())
        .await
        .unwrap()
}
