//! What a process has used, read from `/proc` (Linux).

/// CPU time (user and system) of process `pid` so far, in clock ticks (1/100 s, Linux's
/// USER_HZ); `None` when it cannot be read (no such process, not Linux).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces: utime
    // and stime are the 12th and 13th of them (fields 14 and 15 of the whole line).
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_some_cpu_and_a_missing_one_none() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(30) {}
        assert!(cpu_ticks(std::process::id()).is_some_and(|ticks| ticks > 0));
        assert_eq!(cpu_ticks(u32::MAX), None);
    }
}
