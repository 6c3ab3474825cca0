//! Progress of a long command (`weft ctl apply`, `weft ctl update`, `weft build`): one line on
//! stderr per step as it ends, with the time since the command started. Results stay alone on
//! stdout, so a script reading them sees no progress, and a person watching sees the command
//! move. Quiet with `--json`, where a program reads the output.

use std::io::Write;
use std::time::Instant;

/// The steps of one command so far.
pub struct Progress {
    what: &'static str,
    started: Instant,
    done: usize,
    quiet: bool,
}

impl Progress {
    /// The progress of `what` (`apply`, `update`, `build`), quiet when `quiet`.
    pub fn new(what: &'static str, quiet: bool) -> Self {
        Progress {
            what,
            started: Instant::now(),
            done: 0,
            quiet,
        }
    }

    /// Says a step ended, as `line` tells.
    pub fn step(&mut self, line: impl std::fmt::Display) {
        self.done += 1;
        self.say(line);
    }

    /// Says what is being done now, without counting a step.
    pub fn say(&self, line: impl std::fmt::Display) {
        if self.quiet {
            return;
        }
        // Progress only: a closed stderr is no reason to fail the command.
        let _ = writeln!(
            std::io::stderr(),
            "{} [{} done, {:.1} s] {line}",
            self.what,
            self.done,
            self.started.elapsed().as_secs_f64()
        );
    }
}
