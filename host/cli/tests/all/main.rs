//! Integration tests of the `weft` binary, as one binary (STYLE.md §10).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod canary;
mod claims_cli;
mod ctl;
mod dashboard;
mod embed;
mod faults;
mod generations;
mod health;
mod hostile;
mod lattice;
mod replace;
mod secure;
mod traces;
mod up;

use std::path::PathBuf;
use std::process::{Command, Output};

pub use weft_testing::actors::{signed_actor, target_dir, unsigned_actor};

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

    /// Signs `module` as the `kvcounter` actor at revision `rev` with this key store's keys
    /// (made on first use, so every version shares its module key), into `output`.
    pub fn sign_kvcounter(&self, module: &std::path::Path, output: &std::path::Path, rev: &str) {
        self.sign_as(module, output, "kvcounter", rev, &["-s", "-k", "-l"]);
    }

    /// Signs `module` as actor `name` at revision `rev` with `caps` (`weft claims sign`'s
    /// flags) and this key store's keys, so every version of `name` shares its module key.
    pub fn sign_as(
        &self,
        module: &std::path::Path,
        output: &std::path::Path,
        name: &str,
        rev: &str,
        caps: &[&str],
    ) {
        let (module, output) = (module.to_str().unwrap(), output.to_str().unwrap());
        let args = [
            &["claims", "sign", module, "-o", output, "--name", name][..],
            caps,
            &["--rev", rev],
        ]
        .concat();
        self.run(&args).ok();
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
    /// Asserts that a `weft ctl` request was refused by a host (its reason is on stdout, one
    /// line per host) with a clean error exit; returns stdout and stderr.
    pub fn refused(&self) -> String {
        let stderr = self.stderr();
        assert_eq!(
            self.output.status.code(),
            Some(1),
            "not refused: {stderr}\nstdout: {}",
            self.stdout()
        );
        assert!(!stderr.contains("panicked"), "weft panicked: {stderr}");
        format!("{}{stderr}", self.stdout())
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
        // Progress lines of a long command (`apply [2 done, 0.4 s] …`) may come before it.
        let progress = |line: &str| {
            ["apply [", "update [", "build ["]
                .iter()
                .any(|p| line.starts_with(p))
        };
        let error: Vec<&str> = stderr.lines().filter(|l| !progress(l)).collect();
        assert_eq!(error.len(), 1, "error is not one line: {stderr}");
        assert!(error[0].starts_with("error: "), "{stderr}");
        format!("{}\n", error[0])
    }
}

/// Resident memory of process `pid`, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// HTTP clients on threads of their own, each sending one request after another until
/// [`HttpLoad::finish`], counting the `200`s and keeping every other outcome as a failure.
pub struct HttpLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ok: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    failures: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    clients: Vec<std::thread::JoinHandle<()>>,
}

impl HttpLoad {
    /// `clients` threads, each sending requests with what `client` makes for it.
    pub fn start<C>(clients: usize, client: impl Fn() -> C) -> Self
    where
        C: FnMut() -> Result<(u16, String), String> + Send + 'static,
    {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ok = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let clients = (0..clients)
            .map(|_| {
                let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
                let mut request = client();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        match request() {
                            Ok((200, _)) => {
                                ok.fetch_add(1, Ordering::SeqCst);
                            }
                            other => failures.lock().unwrap().push(format!("{other:?}")),
                        }
                    }
                })
            })
            .collect();
        HttpLoad {
            stop,
            ok,
            failures,
            clients,
        }
    }

    /// The successful requests and the failures so far.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.ok.load(std::sync::atomic::Ordering::SeqCst),
            self.failures.lock().unwrap().len(),
        )
    }

    /// Stops the clients; returns the successful requests and the failures.
    pub fn finish(self) -> (usize, Vec<String>) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::SeqCst);
        for client in self.clients {
            client.join().unwrap();
        }
        let failures = std::mem::take(&mut *self.failures.lock().unwrap());
        (self.ok.load(Ordering::SeqCst), failures)
    }
}
