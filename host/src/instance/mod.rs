//! One waPC instance of an actor: a wasmtime store with the guest instantiated in it, and the
//! waPC conversation state (request, response, errors) kept in the store's data.
//!
//! Why not `wapc::WapcHost` with `wasmtime-provider`, on which this is modelled:
//! - wasmtime-provider 2.25 slices guest memory unchecked (`data[ptr..ptr + len]`): a guest
//!   calling `__guest_response(65500, 1000)` with 64 KiB of memory panics the host. Here every
//!   `(ptr, len)` is bounds-checked with checked arithmetic and every length is capped before
//!   anything is copied; a bad pointer traps the guest, never the host.
//! - It links the imports under `wapc` only; wasmCloud 0.x actors built with `wasmbus-rpc`
//!   import them from `wasmbus`. Both names are linked here to the same functions.
//! - `WapcHost` is neither `Send` nor `Sync` (a `RefCell` around an unbounded trait object), so
//!   instances could not move between the tokio workers of a shared pool without `unsafe`; its
//!   state takes five locks per call, and its one error type cannot tell a trap (instance
//!   unusable) from an error the guest reported (instance fine). A `WapcInstance` is `Send`,
//!   lock-free, and reports [`GuestError`]s by kind.
//! - Limits: a wall-clock deadline per call checked at every epoch tick, memory growth capped
//!   by a limiter that names the limit, host-call and response sizes capped (see
//!   [`crate::limits`]).
//!
//! Guests run as futures (wasmtime's async calls, on a fiber stack): a call runs in place on
//! whatever task awaits it, with no thread hand-off, and `__host_call` awaits the provider
//! instead of blocking a thread on it. A guest that computes for long yields to the executor
//! at every epoch tick (5 ms), so it never holds a runtime worker longer than that.
//!
//! The wire protocol is waPC's unchanged (function names from `wapc::wapc_functions`), so
//! guests built with `wapc-guest` or `wasmbus-rpc` run as they are.

use crate::clock;
use crate::guest_log::{CallLog, LogBudget};
use crate::invoke::{Deadline, GuestError, HostCall, HostCalls, InvokeError};
use crate::limits::Limits;
use std::sync::Arc;
use wapc::wapc_functions as wf;
use wasmtime::{InstancePre, Memory, ResourceLimiter, Store, Trap, TypedFunc, UpdateDeadline};
use weft_provider_sdk::async_trait;

mod imports;
use imports::fault;
pub use imports::{IMPORT_NAMESPACES, linker};

/// The store's data: the waPC conversation of the call in progress, and the limits.
pub struct GuestState {
    /// The actor this instance is of, as its host calls name it.
    actor: Arc<str>,
    handler: Arc<dyn HostCalls>,
    /// What the call in progress has logged, against the actor's log budget.
    log: Arc<CallLog>,
    memory: Option<Memory>,
    operation: String,
    request: Vec<u8>,
    guest_response: Option<Vec<u8>>,
    guest_error: Option<String>,
    host_response: Option<Vec<u8>>,
    host_error: Option<String>,
    /// Where a `__host_call`'s names and payload are copied out of guest memory, kept between
    /// calls so that a call from actor to actor allocates nothing for its arguments.
    host_call_args: Vec<u8>,
    max_memory_bytes: usize,
    max_host_call_bytes: usize,
    max_response_bytes: usize,
    /// When the guest code running now (a call, or start-up) must have finished, on the
    /// engine's coarse clock.
    deadline_ms: u64,
    call_deadline_ms: u64,
}

impl ResourceLimiter for GuestState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            return Err(wasmtime::Error::new(GuestError::MemoryLimit {
                desired,
                limit: self.max_memory_bytes,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; 100k is far beyond any real actor.
        Ok(desired <= 100_000)
    }
}

/// One instantiated guest, ready for calls one at a time.
pub struct WapcInstance {
    store: Store<GuestState>,
    guest_call: TypedFunc<(i32, i32), i32>,
    limits: Limits,
}

/// Whether a new instance runs the guest's start-up exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartUp {
    /// Run `_start`, then `wapc_init`, each only if exported, within the call deadline.
    Run,
    /// Nothing to run: the module is a snapshot taken after start-up (see the engine's
    /// `prepare`).
    AlreadyDone,
}

/// The names of the guest's start-up exports, in the order they run.
const START_UP_EXPORTS: [&str; 2] = ["_start", "wapc_init"];

/// Stands in for the host while start-up runs in a probe instance: any import used means
/// start-up has an effect outside the instance, which a snapshot would skip.
#[derive(Default)]
struct ImportWatch {
    used: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl HostCalls for ImportWatch {
    async fn host_call(&self, _: HostCall<'_>) -> Result<Vec<u8>, InvokeError> {
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        Err(InvokeError::BadRequest(
            "host calls are not served while the host probes an actor's start-up".into(),
        ))
    }

    fn console_log(&self, _: &str, _: &str) {
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl WapcInstance {
    /// Instantiates the guest of actor `actor` and, for [`StartUp::Run`], runs its start-up
    /// exports; its host calls go to `handler`, its log lines count against `log` (the
    /// actor's, shared by its instances).
    pub async fn new(
        pre: &InstancePre<GuestState>,
        limits: Limits,
        actor: Arc<str>,
        handler: Arc<dyn HostCalls>,
        log: Arc<LogBudget>,
        start_up: StartUp,
    ) -> Result<Self, GuestError> {
        Self::start(pre, limits, actor, handler, log, start_up)
            .await
            .map(|(instance, _)| instance)
    }

    /// Runs start-up in a probe instance that serves no import and returns the memory and the
    /// globals (exported as `global_exports`) it left, or `None` if start-up failed or used an
    /// import. The module is the snapshot planner's instrumented one.
    pub(crate) async fn probe_start_up(
        pre: &InstancePre<GuestState>,
        limits: Limits,
        global_exports: &[String],
    ) -> Option<crate::snapshot::Captured> {
        let watch = Arc::new(ImportWatch::default());
        let (mut probe, instance) = Self::start(
            pre,
            limits,
            "probe".into(),
            watch.clone(),
            // Unbounded, so that every console line reaches the watch.
            LogBudget::new(usize::MAX, usize::MAX),
            StartUp::Run,
        )
        .await
        .ok()?;
        if watch.used.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let store = &mut probe.store;
        let memory = store.data().memory?.data(&*store).to_vec();
        let mut globals = Vec::with_capacity(global_exports.len());
        for name in global_exports {
            globals.push(instance.get_global(&mut *store, name)?.get(&mut *store));
        }
        Some(crate::snapshot::Captured { memory, globals })
    }

    async fn start(
        pre: &InstancePre<GuestState>,
        limits: Limits,
        actor: Arc<str>,
        handler: Arc<dyn HostCalls>,
        log: Arc<LogBudget>,
        start_up: StartUp,
    ) -> Result<(Self, wasmtime::Instance), GuestError> {
        let state = GuestState {
            actor,
            handler,
            log: CallLog::new(log),
            memory: None,
            operation: String::new(),
            request: Vec::new(),
            guest_response: None,
            guest_error: None,
            host_response: None,
            host_error: None,
            host_call_args: Vec::new(),
            max_memory_bytes: limits.max_memory_bytes,
            max_host_call_bytes: limits.max_host_call_bytes,
            max_response_bytes: limits.max_response_bytes,
            deadline_ms: clock::now_ms().saturating_add(limits.call_deadline_ms),
            call_deadline_ms: limits.call_deadline_ms,
        };
        let mut store = Store::new(pre.module().engine(), state);
        store.limiter(|state| state as &mut dyn ResourceLimiter);
        // Checked at every epoch tick while guest code runs: past the deadline the guest is
        // stopped; before it, the guest yields so other tasks on this worker get their turn.
        store.epoch_deadline_callback(|store| {
            let state = store.data();
            if clock::now_ms() >= state.deadline_ms {
                return Err(fault(GuestError::DeadlineExceeded {
                    deadline_ms: state.call_deadline_ms,
                }));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);

        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| classify(e, &limits))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| GuestError::NotAnActor("it exports no memory named `memory`".into()))?;
        store.data_mut().memory = Some(memory);
        let guest_call = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, wf::GUEST_CALL)
            .map_err(|_| {
                GuestError::NotAnActor(format!(
                    "it exports no `{}(i32, i32) -> i32`",
                    wf::GUEST_CALL
                ))
            })?;
        if start_up == StartUp::Run {
            for init in START_UP_EXPORTS {
                if let Ok(func) = instance.get_typed_func::<(), ()>(&mut store, init) {
                    func.call_async(&mut store, ())
                        .await
                        .map_err(|e| classify(e, &limits))?;
                }
            }
        }
        let started = WapcInstance {
            store,
            guest_call,
            limits,
        };
        Ok((started, instance))
    }

    /// Calls `operation` with `payload` and returns the guest's response; the guest is
    /// stopped at `deadline`. After an error for which [`GuestError::poisons_instance`] is
    /// true, drop the instance.
    pub async fn call(
        &mut self,
        operation: &str,
        payload: &[u8],
        deadline: Deadline,
    ) -> Result<Vec<u8>, GuestError> {
        let state = self.store.data_mut();
        state.deadline_ms = deadline.at_ms();
        state.operation.clear();
        state.operation.push_str(operation);
        state.request.clear();
        state.request.extend_from_slice(payload);
        state.guest_response = None;
        state.guest_error = None;
        state.host_response = None;
        state.host_error = None;
        state.log.start_call();
        let (op_len, msg_len) = (len_i32(operation.len())?, len_i32(payload.len())?);

        self.store.set_epoch_deadline(1);
        let status = self
            .guest_call
            .call_async(&mut self.store, (op_len, msg_len))
            .await
            .map_err(|e| classify(e, &self.limits))?;
        let state = self.store.data_mut();
        if status == 1 {
            state.guest_response.take().ok_or(GuestError::NoResponse)
        } else {
            Err(GuestError::Guest(
                state
                    .guest_error
                    .take()
                    .unwrap_or_else(|| "no error message set".into()),
            ))
        }
    }
}

fn len_i32(len: usize) -> Result<i32, GuestError> {
    i32::try_from(len).map_err(|_| GuestError::TooLarge {
        what: "call payload",
        len,
        limit: i32::MAX as usize,
    })
}

/// Turns a wasmtime error into what went wrong, for the caller and the logs.
fn classify(error: wasmtime::Error, limits: &Limits) -> GuestError {
    if let Some(known) = error.downcast_ref::<GuestError>() {
        return known.clone();
    }
    if let Some(full) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return GuestError::NoSlot(full.to_string());
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => GuestError::DeadlineExceeded {
            deadline_ms: limits.call_deadline_ms,
        },
        Some(trap) => GuestError::Trap(trap.to_string()),
        None => GuestError::Trap(format!("{error:#}")),
    }
}
