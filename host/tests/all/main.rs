//! Integration tests of the runtime library, as one binary (STYLE.md §10).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod architecture;
mod host;
mod runtime;

use std::path::PathBuf;

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
