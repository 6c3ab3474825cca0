//! A fuzzing driver on the stable toolchain: feeds a parser of untrusted bytes mutated
//! inputs and checks that it never panics, and never takes long.
//!
//! Why a driver of our own: the coverage-guided engines (`cargo fuzz`, and `bolero`'s
//! libFuzzer and AFL engines) need a nightly compiler or an LLVM toolchain that a fresh
//! Debian machine with rustup does not have, and the test command must run everywhere. This
//! one is guided by outcomes instead of coverage: every input whose result (its error, with
//! numbers taken out) has not been seen before joins the corpus, so mutations reach past the
//! first check of a format (its length prefix, its hash, its signature) to the next.
//!
//! Each target runs as a test with a short budget ([`DEFAULT_ITERATIONS`]); the long run sets
//! `WEFT_FUZZ_ITERATIONS` (README, Fuzzing). `WEFT_FUZZ_SEED` replays a run. A panicking input
//! is written to `target/fuzz-crashes/` and fails the test naming the file.
//!
//! **What it is not:** a coverage-guided fuzzer, nor a place for property tests of results:
//! a target checks that bad input is refused cleanly; the crate's own tests check what good
//! input means.
#![allow(
    clippy::panic,
    clippy::print_stdout,
    clippy::indexing_slicing,
    reason = "a test driver: it fails the test that runs it, prints what it did for the \
              README's figures, and indexes within lengths it has just checked"
)]

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// Inputs per target when `WEFT_FUZZ_ITERATIONS` is not set (a few seconds of the test run).
pub const DEFAULT_ITERATIONS: u64 = 50_000;
/// Longest any input may take before the run fails as too slow.
pub const SLOW_INPUT: Duration = Duration::from_secs(1);
/// Inputs kept for mutation, at most.
const MAX_CORPUS: usize = 2_000;
/// Longest input the driver makes.
const MAX_INPUT_BYTES: usize = 64 << 10;

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Inputs tried.
    pub inputs: u64,
    /// Distinct outcomes seen (accepted, and each kind of refusal).
    pub outcomes: usize,
    /// The slowest input, microseconds.
    pub slowest_us: u128,
    /// The seed to replay the run with.
    pub seed: u64,
}

/// Feeds `target` mutations of `seeds` (well-formed inputs, as varied as possible) and
/// returns what it saw. `target` answers `Ok` for an accepted input, else its refusal.
/// Panics (failing the test) if an input panics `target` or takes over [`SLOW_INPUT`].
pub fn run<E: std::fmt::Display>(
    name: &str,
    seeds: &[Vec<u8>],
    target: impl Fn(&[u8]) -> Result<(), E>,
) -> Report {
    let iterations = std::env::var("WEFT_FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS);
    let seed = std::env::var("WEFT_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().next_u64());
    run_with(name, seeds, iterations, seed, target)
}

/// [`run`], with the number of inputs and the seed given.
pub fn run_with<E: std::fmt::Display>(
    name: &str,
    seeds: &[Vec<u8>],
    iterations: u64,
    seed: u64,
    target: impl Fn(&[u8]) -> Result<(), E>,
) -> Report {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut corpus: Vec<Vec<u8>> = seeds.to_vec();
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut outcomes = HashSet::new();
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    for _ in 0..iterations {
        let input = mutate(&mut rng, &corpus);
        let began = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| target(&input)));
        let took = began.elapsed();
        slowest = slowest.max(took);
        let outcome = match result {
            Ok(Ok(())) => "accepted".to_string(),
            Ok(Err(refusal)) => shape(&refusal.to_string()),
            Err(_) => crashed(name, seed, &input),
        };
        assert!(
            took <= SLOW_INPUT,
            "fuzz {name}: an input of {} bytes took {took:?} (seed {seed})",
            input.len()
        );
        if outcomes.insert(outcome) && corpus.len() < MAX_CORPUS {
            corpus.push(input);
        }
    }
    let report = Report {
        inputs: iterations,
        outcomes: outcomes.len(),
        slowest_us: slowest.as_micros(),
        seed,
    };
    println!(
        "fuzz {name}: {} inputs in {:.1} s, 0 crashes, {} outcomes, slowest {} us (WEFT_FUZZ_SEED={seed})",
        report.inputs,
        started.elapsed().as_secs_f64(),
        report.outcomes,
        report.slowest_us
    );
    report
}

/// An outcome's kind: its text with numbers and quoted parts taken out, so "offset 12" and
/// "offset 13" count once.
fn shape(text: &str) -> String {
    let mut shape = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in text.chars().take(200) {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' | '`' => quoted = !quoted,
            _ if quoted => {}
            c if c.is_ascii_digit() => {
                if !shape.ends_with('#') {
                    shape.push('#');
                }
            }
            c => shape.push(c),
        }
    }
    shape
}

/// Writes a panicking input where a person can replay it, and fails the run.
fn crashed(name: &str, seed: u64, input: &[u8]) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-crashes");
    let path = dir.join(format!("{name}-{seed}.bin"));
    let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input));
    panic!(
        "fuzz {name}: an input panicked the target; saved to {} ({saved:?}); replay with \
         WEFT_FUZZ_SEED={seed}",
        path.display()
    );
}

/// A new input: a corpus entry changed by one to four mutations, or now and then random
/// bytes.
fn mutate(rng: &mut StdRng, corpus: &[Vec<u8>]) -> Vec<u8> {
    if rng.gen_ratio(1, 50) {
        let len = rng.gen_range(0..256);
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        return bytes;
    }
    let mut input = corpus[rng.gen_range(0..corpus.len())].clone();
    for _ in 0..rng.gen_range(1..=4) {
        mutate_once(rng, &mut input, corpus);
    }
    input.truncate(MAX_INPUT_BYTES);
    input
}

/// Values that sit on the edges of integer encodings.
const INTERESTING: [u8; 10] = [0, 1, 0x7f, 0x80, 0xff, 0xfe, 0x40, 0x20, b'0', b'9'];

fn mutate_once(rng: &mut StdRng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let len = input.len();
    let at = |rng: &mut StdRng| if len == 0 { 0 } else { rng.gen_range(0..len) };
    match rng.gen_range(0..9) {
        // Flip one bit.
        0 if len > 0 => {
            let i = at(rng);
            input[i] ^= 1 << rng.gen_range(0..8);
        }
        // A byte to an edge value.
        1 if len > 0 => {
            let i = at(rng);
            input[i] = INTERESTING[rng.gen_range(0..INTERESTING.len())];
        }
        // A random byte.
        2 if len > 0 => {
            let i = at(rng);
            input[i] = rng.r#gen();
        }
        // Insert a few random bytes.
        3 => {
            let i = if len == 0 { 0 } else { rng.gen_range(0..=len) };
            let mut extra = vec![0u8; rng.gen_range(1..16)];
            rng.fill_bytes(&mut extra);
            input.splice(i..i, extra);
        }
        // Delete a range.
        4 if len > 0 => {
            let start = at(rng);
            let end = (start + rng.gen_range(1..=16)).min(len);
            input.drain(start..end);
        }
        // Repeat a range (lengths, nesting).
        5 if len > 0 => {
            let start = at(rng);
            let end = (start + rng.gen_range(1..=64)).min(len);
            let copy = input[start..end].to_vec();
            let i = rng.gen_range(0..=input.len());
            input.splice(i..i, copy);
        }
        // Cut the end off.
        6 if len > 0 => input.truncate(at(rng)),
        // Splice in part of another input.
        7 => {
            let other = &corpus[rng.gen_range(0..corpus.len())];
            if !other.is_empty() {
                let start = rng.gen_range(0..other.len());
                let end = (start + rng.gen_range(1..=64)).min(other.len());
                let i = if len == 0 { 0 } else { rng.gen_range(0..=len) };
                input.splice(i..i, other[start..end].iter().copied());
            }
        }
        // Overwrite a run with one edge value (zeroed lengths, all-ones counts).
        _ if len > 0 => {
            let start = at(rng);
            let end = (start + rng.gen_range(1..=8)).min(len);
            let value = INTERESTING[rng.gen_range(0..INTERESTING.len())];
            input[start..end].fill(value);
        }
        _ => input.push(rng.r#gen()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The driver finds a planted bug behind two checks, by outcome guidance: a run that
    /// cannot fail would prove nothing about the targets that pass. (The seed is fixed, so
    /// this is the same run each time.)
    #[test]
    fn finds_a_bug_behind_two_checks() {
        let target = |input: &[u8]| -> Result<(), String> {
            match input {
                [b'W', b'F', rest @ ..] if rest.len() > 3 && rest[0] == 0xff => {
                    panic!("planted")
                }
                [b'W', b'F', ..] => Err("magic ok, no marker".into()),
                [b'W', ..] => Err("half the magic".into()),
                _ => Err("no magic".into()),
            }
        };
        let found = std::panic::catch_unwind(|| {
            run_with("planted", &[b"hello world".to_vec()], 500_000, 7, target);
        });
        assert!(found.is_err(), "the planted bug was not found");
    }
}
