//! Integration tests of the claims library, as one binary (STYLE.md §10).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bad_input;
mod fuzz;
mod interop;
mod known_code;
mod mutation;

use std::borrow::Cow;
use wascap::{Actor, Claims, KeyPair, KeyRole};
use wasm_encoder::Section;

/// A module with the sections a compiled actor has: types, imports, functions, memory, globals,
/// exports, code, data, and a `name` custom section.
pub fn sample_module() -> Vec<u8> {
    wat::parse_str(
        r#"(module $sample
             (import "wapc" "__console_log" (func $log (param i32 i32)))
             (memory (export "memory") 1)
             (global $counter (mut i32) (i32.const 0))
             (data (i32.const 16) "hello, weft")
             (func $guest_call (export "__guest_call") (param $op i32) (param $len i32) (result i32)
               (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
               (call $log (i32.const 16) (i32.const 11))
               (i32.const 1)))"#,
    )
    .unwrap()
}

pub struct Signer {
    pub account: KeyPair,
    pub module: KeyPair,
}

impl Default for Signer {
    fn default() -> Self {
        Self::new()
    }
}

impl Signer {
    pub fn new() -> Self {
        Signer {
            account: KeyRole::Account.generate().unwrap(),
            module: KeyRole::Module.generate().unwrap(),
        }
    }

    pub fn claims(&self, actor: Actor) -> Claims<Actor> {
        Claims::new(self.account.public_key(), self.module.public_key(), actor)
    }

    pub fn sign(&self, module: &[u8], actor: Actor) -> Vec<u8> {
        wascap::embed_claims(module, &self.claims(actor), &self.account).unwrap()
    }
}

pub fn named(name: &str) -> Actor {
    Actor {
        name: Some(name.into()),
        ..Actor::default()
    }
}

/// The module with its claims sections replaced by one holding `token` (any bytes).
pub fn with_token(module: &[u8], token: &[u8]) -> Vec<u8> {
    let mut out = strip(module);
    wasm_encoder::CustomSection {
        name: Cow::Borrowed("wasmcloud_jwt"),
        data: Cow::Borrowed(token),
    }
    .append_to(&mut out);
    out
}

/// The module without claims, re-encoded the way signing does.
pub fn strip(module: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        let payload = payload.unwrap();
        match &payload {
            wasmparser::Payload::Version { .. } => {
                out.extend_from_slice(&wasm_encoder::Module::HEADER)
            }
            wasmparser::Payload::CustomSection(c) if c.name().ends_with("jwt") => {}
            other => {
                if let Some((id, range)) = other.as_section() {
                    wasm_encoder::RawSection {
                        id,
                        data: &module[range],
                    }
                    .append_to(&mut out);
                }
            }
        }
    }
    out
}

/// Signs arbitrary header and claims JSON with `key`, as a forger (or a buggy tool) would.
pub fn raw_token(header: &str, claims: &serde_json::Value, key: &KeyPair) -> String {
    use data_encoding::BASE64URL_NOPAD as B64;
    let signed = format!(
        "{}.{}",
        B64.encode(header.as_bytes()),
        B64.encode(claims.to_string().as_bytes())
    );
    let sig = key.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", B64.encode(&sig))
}
