//! Integration tests of the `weft` binary, as one binary (STYLE.md §10).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod claims_cli;
mod lattice;
mod up;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The workspace's target directory (where `weft build` puts signed actors).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// A signed example actor built by the test command (`scripts/test.sh` runs `weft build`).
pub fn signed_actor(name: &str) -> PathBuf {
    let path = target_dir().join("actors").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: the actors are built and signed by `scripts/test.sh` \
         (or by hand: `cargo run -p weft-cli -- build`)",
        path.display()
    );
    path
}

/// The unsigned wasm cargo produced for an example actor.
pub fn unsigned_actor(name: &str) -> PathBuf {
    let path = target_dir()
        .join("wasm32-unknown-unknown/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `scripts/test.sh`",
        path.display()
    );
    path
}

/// `weft` with a private key store, so tests never touch the user's keys.
pub struct Weft {
    pub home: tempfile::TempDir,
}

impl Default for Weft {
    fn default() -> Self {
        Self::new()
    }
}

impl Weft {
    pub fn new() -> Self {
        Weft {
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(args)
            .env("WEFT_HOME", self.home.path())
            .output()
            .unwrap();
        Run { output }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }
}

pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> String {
        assert!(
            self.output.status.success(),
            "weft failed: {}\nstdout: {}",
            self.stderr(),
            self.stdout()
        );
        self.stdout()
    }
    /// Asserts a one-line error on stderr, non-zero exit and no panic; returns the line.
    pub fn fails(&self) -> String {
        let stderr = self.stderr();
        assert!(
            !self.output.status.success(),
            "weft succeeded: {}",
            self.stdout()
        );
        assert_eq!(
            self.output.status.code(),
            Some(1),
            "not a clean error exit: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "weft panicked: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "error is not one line: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        stderr
    }
}
