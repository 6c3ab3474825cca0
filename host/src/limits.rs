//! Every limit the host puts on a guest, in one place. Each default is overridable per host
//! (and, where it makes sense, per actor), and each has a test that it is obeyed (a guest inside
//! it works) and enforced (a guest past it gets a clear error and the host keeps serving).
//!
//! | limit | default | enforced by |
//! |---|---|---|
//! | execution time per call | [`DEFAULT_CALL_DEADLINE_MS`] | checked at every epoch tick ([`EPOCH_TICK_MS`]); includes time waiting on host calls |
//! | linear memory per instance | [`DEFAULT_MAX_MEMORY_BYTES`] | store limits: growing past it traps |
//! | wasm stack | [`DEFAULT_MAX_STACK_BYTES`] | wasmtime's stack check: overflow traps |
//! | bytes a guest sends in one host call | [`DEFAULT_MAX_HOST_CALL_BYTES`] | checked before copying |
//! | bytes of one guest response or error | [`DEFAULT_MAX_RESPONSE_BYTES`] | checked before copying |
//! | bytes of a binding, contract or operation name | [`MAX_NAME_BYTES`] | checked before copying |
//! | bytes of one log line | [`MAX_LOG_LINE_BYTES`] | checked before copying |
//! | log bytes of one call, console and logging capability together | [`DEFAULT_MAX_LOG_BYTES_PER_CALL`] | `crate::guest_log`: past it, lines dropped and counted |
//! | log bytes of one actor per second, all its calls | [`DEFAULT_MAX_LOG_BYTES_PER_SECOND`] | `crate::guest_log`: past it, lines dropped and counted |
//! | bytes of a guest error kept for logs and callers | [`MAX_GUEST_ERROR_BYTES`] | the rest cut, and counted in the text |
//! | module size | [`DEFAULT_MAX_MODULE_BYTES`] | checked before parsing |
//! | instances of one actor | [`DEFAULT_MAX_INSTANCES`] | the concurrency layer (`crate::invoke::concurrency`) |
//! | calls waiting for an instance | [`DEFAULT_MAX_QUEUED_CALLS`] | the concurrency layer: past it, "busy" at once |
//! | time waiting for an instance | the call's deadline | the concurrency layer: past it, "busy" |
//!
//! The deadline is checked at epoch ticks, so a looping guest stops between one and two ticks
//! past its deadline: well within 2× for any deadline over a few ticks. It covers the whole
//! call: the wait for an instance, the guest's run and its host calls, so a saturated actor
//! answers "busy" within its deadline instead of queueing without bound.

/// Default execution deadline of one call into a guest, milliseconds.
pub const DEFAULT_CALL_DEADLINE_MS: u64 = 5_000;
/// Period of the epoch ticker, milliseconds: how often running guest code checks its deadline
/// and yields to other tasks, so a deadline is overrun by at most about one tick.
pub const EPOCH_TICK_MS: u64 = 5;
/// Default cap on an instance's linear memory, bytes (64 MiB).
pub const DEFAULT_MAX_MEMORY_BYTES: usize = 64 << 20;
/// Default cap on the wasm stack, bytes (512 KiB).
pub const DEFAULT_MAX_STACK_BYTES: usize = 512 << 10;
/// Default cap on the payload a guest passes to one host call, bytes (8 MiB).
pub const DEFAULT_MAX_HOST_CALL_BYTES: usize = 8 << 20;
/// Default cap on a guest's response (or error message) to one call, bytes (8 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 8 << 20;
/// Cap on each of the binding, contract and operation names of a host call, bytes.
pub const MAX_NAME_BYTES: usize = 4 << 10;
/// Cap on one `__console_log` line from a guest, bytes.
pub const MAX_LOG_LINE_BYTES: usize = 16 << 10;
/// Default cap on the log bytes one call may write (console and logging capability), 64 KiB;
/// lines past it are dropped and counted.
pub const DEFAULT_MAX_LOG_BYTES_PER_CALL: usize = 64 << 10;
/// Default cap on the log bytes one actor may write in a second over all its calls, 1 MiB.
pub const DEFAULT_MAX_LOG_BYTES_PER_SECOND: usize = 1 << 20;
/// The most of a guest's error message kept: the rest is cut (and counted) before the text
/// reaches logs and callers, since an HTTP client would otherwise get it whole.
pub const MAX_GUEST_ERROR_BYTES: usize = 4 << 10;
/// Default cap on the size of a module, bytes (32 MiB).
pub const DEFAULT_MAX_MODULE_BYTES: usize = 32 << 20;
/// Default number of instances one actor may run at once.
pub const DEFAULT_MAX_INSTANCES: usize = 16;
/// The least time a call needs once it has an instance, milliseconds: a provider call leaves
/// the actor this much of its deadline to handle the answer, so a call left with less could
/// not complete one. A call stops waiting for an instance this long before its deadline.
pub const MIN_CALL_TIME_MS: u64 = 50;
/// Default number of calls that may wait for an instance of one actor when all of its
/// instances are busy; one more is refused as busy at once.
pub const DEFAULT_MAX_QUEUED_CALLS: usize = 64;

/// The limits applied to one actor's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Execution deadline of one call, milliseconds.
    pub call_deadline_ms: u64,
    /// Linear memory cap per instance, bytes.
    pub max_memory_bytes: usize,
    /// Payload cap of one host call, bytes.
    pub max_host_call_bytes: usize,
    /// Cap on one guest response or error, bytes.
    pub max_response_bytes: usize,
    /// Module size cap, bytes.
    pub max_module_bytes: usize,
    /// Instances of one actor at once.
    pub max_instances: usize,
    /// Calls that may wait for an instance when all are busy.
    pub max_queued_calls: usize,
    /// Log bytes one call may write.
    pub max_log_bytes_per_call: usize,
    /// Log bytes the actor may write in a second.
    pub max_log_bytes_per_second: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_deadline_ms: DEFAULT_CALL_DEADLINE_MS,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            max_host_call_bytes: DEFAULT_MAX_HOST_CALL_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_module_bytes: DEFAULT_MAX_MODULE_BYTES,
            max_instances: DEFAULT_MAX_INSTANCES,
            max_queued_calls: DEFAULT_MAX_QUEUED_CALLS,
            max_log_bytes_per_call: DEFAULT_MAX_LOG_BYTES_PER_CALL,
            max_log_bytes_per_second: DEFAULT_MAX_LOG_BYTES_PER_SECOND,
        }
    }
}
