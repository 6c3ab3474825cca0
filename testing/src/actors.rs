//! Where the test command leaves the example actors: `scripts/test.sh` builds them to wasm32
//! and signs them with `weft build`.
#![allow(
    clippy::panic,
    reason = "test support: a missing actor must fail the test with the way to build it"
)]

use std::path::PathBuf;

/// The repository's target directory (all workspaces share it), or `$CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn existing(path: PathBuf) -> PathBuf {
    if !path.is_file() {
        panic!(
            "{} is missing: the actors are built and signed by `scripts/test.sh` (or by hand: \
             `cargo run -p weft-cli -- build`)",
            path.display()
        );
    }
    path
}

/// A signed example actor, by its manifest name (`kvcounter`, `msg-echo`, ...).
pub fn signed_actor(name: &str) -> PathBuf {
    existing(target_dir().join("actors").join(format!("{name}.wasm")))
}

/// The unsigned wasm cargo built for an example actor, by its file name (`kvcounter`,
/// `msg_echo`, ...).
pub fn unsigned_actor(name: &str) -> PathBuf {
    existing(
        target_dir()
            .join("wasm32-unknown-unknown/release")
            .join(format!("{name}.wasm")),
    )
}
