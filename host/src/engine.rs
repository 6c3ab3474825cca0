//! The wasmtime engine a host shares between all its actors (one copy per core), the ticker
//! that drives its epoch deadlines, and the cache of compiled modules keyed by module hash.
//!
//! Decisions:
//! - **One wasmtime [`Engine`] per core** ([`crate::per_core`]), each with its share of the
//!   instance slots. Every async call into a guest takes and drops a reference to its
//!   engine (wasmtime's fiber holds one): with one engine, that count was a line which
//!   every call on every core wrote, so calls from two cores ran little faster than from one
//!   (bench (n)). A module is compiled once and loaded into every copy from its compiled form;
//!   an instance starts on its core's copy, or on another's when that one's slots are all
//!   taken, so the host's slots are one budget as before.
//! - **Epoch interruption, not fuel.** Fuel instruments every block and costs on every call;
//!   an epoch check is a load and compare. A background thread bumps the epoch every
//!   [`EPOCH_TICK_MS`]; at each tick a running guest checks its deadline and yields (see
//!   [`crate::instance`]).
//! - **Async calls.** Guests run on fiber stacks from the pool (one per live instance), so a
//!   host call can await a provider without holding a thread.
//! - **Pooling allocator.** Instances come from preallocated slots, so instantiating a guest
//!   costs microseconds, which is what lets every trapped instance be thrown away.
//! - **Compile once, off the async workers.** Modules are compiled on load, on tokio's
//!   blocking pool (a compile takes tens to hundreds of milliseconds, which would stall every
//!   task on a worker), and cached by the hash their claims record (the code without its
//!   claims), so re-signing or re-loading the same code is free.
//!
//! The ticker thread stops when the [`WasmEngine`] is dropped.

use crate::instance::{GuestState, StartUp, WapcInstance, linker};
use crate::limits::Limits;
use crate::limits::{DEFAULT_MAX_MEMORY_BYTES, DEFAULT_MAX_STACK_BYTES, EPOCH_TICK_MS};
use crate::snapshot;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig,
};

/// How much of a freed instance's linear memory stays resident for the next instance in its
/// slot: a Rust actor's stack, data and start-up heap fit.
const MEMORY_KEEP_RESIDENT_BYTES: usize = 2 << 20;
/// The same for its function table.
const TABLE_KEEP_RESIDENT_BYTES: usize = 64 << 10;

/// Instance slots where the machine's memory cannot be read.
pub const DEFAULT_INSTANCE_SLOTS: u32 = 1_000;
/// The memory one instance slot is sized for by default: an instance keeps
/// [`MEMORY_KEEP_RESIDENT_BYTES`] resident in its slot, and a typical actor's heap and stack
/// use a few MiB more.
pub const MEMORY_PER_SLOT_BYTES: u64 = 16 << 20;
/// The fewest and the most slots sized from memory (each slot reserves address space: its
/// memory's reservation and guard, about 4 GiB).
const SLOTS_FROM_MEMORY: (u64, u64) = (256, 10_000);

/// Instance slots for a machine of `memory_bytes`: one per [`MEMORY_PER_SLOT_BYTES`], within
/// 256 and 10,000.
pub fn slots_for_memory(memory_bytes: u64) -> u32 {
    let (least, most) = SLOTS_FROM_MEMORY;
    u32::try_from((memory_bytes / MEMORY_PER_SLOT_BYTES).clamp(least, most))
        .unwrap_or(DEFAULT_INSTANCE_SLOTS)
}

/// This machine's memory (`MemTotal` in `/proc/meminfo`), if it can be read.
fn machine_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Engine-wide settings; fixed for the life of the engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Instances that can exist at once, across all actors (by default sized from the
    /// machine's memory: [`slots_for_memory`]).
    pub instance_slots: u32,
    /// The largest memory any actor may be allowed, bytes (per-actor limits are lower or equal).
    pub max_memory_bytes: usize,
    /// Wasm stack cap, bytes.
    pub max_stack_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            // Instances start on demand and idle ones are reaped, so slots bound the instances
            // alive at once (calls running, and instances kept warm), not the actors.
            instance_slots: machine_memory_bytes().map_or(DEFAULT_INSTANCE_SLOTS, slots_for_memory),
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            max_stack_bytes: DEFAULT_MAX_STACK_BYTES,
        }
    }
}

/// Errors setting up the engine or compiling a module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// wasmtime refused the configuration.
    #[error("failed to set up the wasm engine: {0}")]
    Setup(String),
    /// The module did not compile.
    #[error("failed to compile the module: {0}")]
    Compile(String),
    /// The module's imports cannot be satisfied (it imports something besides waPC).
    #[error("the module cannot be linked: {0}")]
    Link(String),
    /// The epoch ticker thread could not start.
    #[error("failed to start the epoch ticker thread: {0}")]
    Ticker(#[source] std::io::Error),
}

/// A compiled module in the cache (one for each engine copy, in the copies' order), and
/// whether its instances run start-up.
#[derive(Clone)]
struct CompiledModule {
    modules: Vec<Module>,
    start_up: StartUp,
    /// Shared by every [`PreparedModule`] of it.
    started: Arc<AtomicBool>,
}

/// An actor's module, compiled and pre-linked: what its instances start from.
#[derive(Clone)]
pub struct PreparedModule {
    /// Pre-linked against the waPC imports, one for each engine copy.
    pres: Arc<[wasmtime::InstancePre<GuestState>]>,
    /// The first copy's (what [`PreparedModule::pre`] falls back on; `pres` is never empty).
    first: wasmtime::InstancePre<GuestState>,
    /// The host's instance slots, all copies together (for the error when none is free).
    pub instance_slots: usize,
    /// Whether its instances run start-up ([`StartUp::AlreadyDone`] for a snapshot).
    pub start_up: StartUp,
    /// Whether an instance of its code has started once: each code is started once (by
    /// the first actor of it), so a module that cannot start is refused when loaded.
    pub started: Arc<AtomicBool>,
    /// Its code without claims, whose SHA-256 is the hash it is cached under: what the
    /// claims of another actor of the same code are checked against ([`WasmEngine::known_code`]).
    code: Arc<[u8]>,
}

impl PreparedModule {
    /// What this core's instances start from.
    pub fn pre(&self) -> &wasmtime::InstancePre<GuestState> {
        self.pres
            .get(crate::per_core::own(self.pres.len()))
            .unwrap_or(&self.first)
    }

    /// What instances start from on each engine copy, this core's first: where the next
    /// copy's slots are tried when this one has none free.
    pub fn pres_from_own(&self) -> impl Iterator<Item = &wasmtime::InstancePre<GuestState>> {
        let own = crate::per_core::own(self.pres.len());
        self.pres.iter().cycle().skip(own).take(self.pres.len())
    }
}

/// One engine copy (its share of the slots is in its pooling allocator) and its linker.
struct EngineCopy {
    engine: Engine,
    linker: Linker<GuestState>,
}

/// The engine copies, their linkers, the epoch ticker and the module cache.
pub struct WasmEngine {
    /// At least one: [`WasmEngine::new`] makes one per core, each with a slot or more.
    copies: Box<[EngineCopy]>,
    instance_slots: usize,
    /// Compiled and pre-linked, so an actor of code already loaded pays neither.
    modules: Arc<Mutex<HashMap<String, PreparedModule>>>,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEngine").finish_non_exhaustive()
    }
}

impl WasmEngine {
    /// Builds the engine (a copy per core, at most one per slot, sharing the slots out) and
    /// starts its epoch ticker.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let slots = config.instance_slots;
        let count = u32::try_from(crate::per_core::copies())
            .unwrap_or(1)
            .min(slots)
            .max(1);
        let copies = (0..count)
            .map(|i| {
                let share = slots / count + u32::from(i < slots % count);
                Self::copy(config, share)
            })
            .collect::<Result<Box<[EngineCopy]>, EngineError>>()?;

        crate::clock::advance();
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = ticker_stop.clone();
        let ticking: Vec<Engine> = copies.iter().map(|copy| copy.engine.clone()).collect();
        std::thread::Builder::new()
            .name("weft-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(EPOCH_TICK_MS));
                    crate::clock::advance();
                    for engine in &ticking {
                        engine.increment_epoch();
                    }
                }
            })
            .map_err(EngineError::Ticker)?;
        Ok(WasmEngine {
            copies,
            instance_slots: usize::try_from(slots).unwrap_or(usize::MAX),
            modules: Arc::default(),
            ticker_stop,
        })
    }

    /// One engine copy with `slots` of the host's instance slots.
    fn copy(config: EngineConfig, slots: u32) -> Result<EngineCopy, EngineError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .total_stacks(slots)
            .max_memory_size(config.max_memory_bytes)
            // A freed slot's dirty pages (found with PAGEMAP_SCAN where the kernel has it,
            // 6.7+) are reset in place and stay mapped, instead of being dropped with madvise
            // and faulted back in, page by page, by the next instance's start-up.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT_BYTES)
            .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES);
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .max_wasm_stack(config.max_stack_bytes)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // For profiling: with `WEFT_PERFMAP` set, the engine writes `/tmp/perf-PID.map`, so
        // `perf report` names the guests' functions instead of showing bare JIT addresses.
        if std::env::var_os("WEFT_PERFMAP").is_some() {
            wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&wasm).map_err(|e| EngineError::Setup(format!("{e:#}")))?;
        let linker = linker(&engine).map_err(|e| EngineError::Setup(format!("{e:#}")))?;
        Ok(EngineCopy { engine, linker })
    }

    /// The actor module for `bytes`, compiled and pre-linked, from the cache if it has `hash`
    /// (the SHA-256 of `bytes` without claims, [`wascap::module_hash`]; a module that hashes
    /// otherwise is refused).
    /// Where start-up can be snapshotted (see [`crate::snapshot`]) it runs once here, in a
    /// probe instance under `limits`, and the module returned is the snapshot; otherwise it
    /// is the module as given and its instances run start-up themselves. Start-up that fails
    /// is not reported here: the caller's first instance runs it again and reports it.
    pub async fn prepare(
        &self,
        hash: &str,
        bytes: &[u8],
        limits: Limits,
    ) -> Result<PreparedModule, EngineError> {
        if let Some(cached) = self.cached(hash) {
            return Ok(cached);
        }
        // The hash is checked here, once per code, so that the code kept for it is the code
        // of that hash whoever calls (see `known_code`).
        let code: Arc<[u8]> = wascap::strip_claims(bytes)
            .map_err(|e| EngineError::Compile(e.to_string()))?
            .into();
        let actual = wascap::module_hash(&code).map_err(|e| EngineError::Compile(e.to_string()))?;
        if actual != hash {
            return Err(EngineError::Compile(format!(
                "the module's code hashes to {actual}, not {hash}"
            )));
        }
        let prepared = match snapshot::plan(bytes) {
            Err(reason) => {
                tracing::debug!(module = hash, %reason, "no start-up snapshot");
                CompiledModule {
                    modules: self.compile(bytes).await?,
                    start_up: StartUp::Run,
                    started: Arc::default(),
                }
            }
            Ok(plan) => {
                let instrumented = CompiledModule {
                    modules: self.compile(&plan.instrumented).await?,
                    start_up: StartUp::Run,
                    started: Arc::default(),
                };
                self.snapshot(bytes, &plan, &instrumented, limits)
                    .await
                    .unwrap_or(instrumented)
            }
        };
        let pres = self.link(&prepared.modules)?;
        let Some(first) = pres.first().cloned() else {
            return Err(EngineError::Compile("no engine copy to load it in".into()));
        };
        let prepared = PreparedModule {
            pres: pres.into(),
            first,
            instance_slots: self.instance_slots,
            start_up: prepared.start_up,
            started: prepared.started,
            code,
        };
        self.modules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(hash.to_string(), prepared.clone());
        Ok(prepared)
    }

    /// Runs start-up in a probe of `instrumented` and compiles the snapshot of what it left.
    async fn snapshot(
        &self,
        bytes: &[u8],
        plan: &snapshot::Plan,
        instrumented: &CompiledModule,
        limits: Limits,
    ) -> Option<CompiledModule> {
        // The probe runs on the first copy alone: only its pre-link is needed.
        let (copy, module) = self.copies.first().zip(instrumented.modules.first())?;
        let pre = copy.linker.instantiate_pre(module).ok()?;
        let captured = WapcInstance::probe_start_up(&pre, limits, &plan.global_exports).await?;
        let snapshot = snapshot::build(bytes, plan, &captured)
            .inspect_err(|reason| tracing::debug!(%reason, "no start-up snapshot"))
            .ok()?;
        let modules = self
            .compile(&snapshot)
            .await
            .inspect_err(|error| tracing::warn!(%error, "a start-up snapshot did not compile"))
            .ok()?;
        Some(CompiledModule {
            modules,
            start_up: StartUp::AlreadyDone,
            started: Arc::default(),
        })
    }

    /// Compiles on tokio's blocking pool, once: the first engine copy compiles, and the
    /// others load what it compiled (milliseconds, not a compile each).
    async fn compile(&self, bytes: &[u8]) -> Result<Vec<Module>, EngineError> {
        let engines: Vec<Engine> = self.copies.iter().map(|copy| copy.engine.clone()).collect();
        let code = bytes.to_vec();
        tokio::task::spawn_blocking(move || -> wasmtime::Result<Vec<Module>> {
            let mut engines = engines.iter();
            let Some(first) = engines.next() else {
                return Ok(Vec::new());
            };
            let compiled = Module::new(first, &code)?;
            let mut modules = Vec::with_capacity(engines.len() + 1);
            if engines.len() > 0 {
                let serialized = compiled.serialize()?;
                for engine in engines {
                    // SAFETY: `deserialize` trusts its bytes to be a module compiled by
                    // wasmtime for an engine of this configuration. These are: `serialize`
                    // made them just above, in this process, from a module compiled by
                    // another copy built by `WasmEngine::copy` with the same settings (only
                    // the number of slots differs, which compiled code does not depend on);
                    // they were never stored or received from anywhere.
                    #[allow(unsafe_code)]
                    let loaded = unsafe { Module::deserialize(engine, &serialized)? };
                    modules.push(loaded);
                }
            }
            modules.insert(0, compiled);
            Ok(modules)
        })
        .await
        .map_err(|e| EngineError::Compile(format!("the compile task failed: {e}")))?
        .map_err(|e| EngineError::Compile(format!("{e:#}")))
    }

    fn cached(&self, hash: &str) -> Option<PreparedModule> {
        self.modules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hash)
            .cloned()
    }

    /// Pre-links a module (one for each copy, in the copies' order) against the waPC
    /// imports: what each new instance starts from.
    fn link(
        &self,
        modules: &[Module],
    ) -> Result<Vec<wasmtime::InstancePre<GuestState>>, EngineError> {
        self.copies
            .iter()
            .zip(modules)
            .map(|(copy, module)| {
                copy.linker
                    .instantiate_pre(module)
                    .map_err(|e| EngineError::Link(format!("{e:#}")))
            })
            .collect()
    }

    /// The code of each cached module by its hash, for [`wascap::verify_module_code`]: an
    /// actor of code already loaded is checked by comparing bytes, not hashing them (at 10,000
    /// actors of one code, most of what starting each costs). Usable off the async workers.
    pub fn known_code(&self) -> impl Fn(&str) -> Option<Arc<[u8]>> + Send + Sync + 'static {
        let modules = self.modules.clone();
        move |hash| {
            modules
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(hash)
                .map(|prepared| prepared.code.clone())
        }
    }

    /// Instances that can exist at once across all actors: no actor may be allowed more.
    pub fn instance_slots(&self) -> usize {
        self.instance_slots
    }

    /// A wasmtime engine underneath (the first copy), with Weft's configuration (pooling
    /// allocator, epochs): for embedders and benchmarks that compare against wasmtime itself.
    pub fn wasmtime_engine(&self) -> Option<&Engine> {
        self.copies.first().map(|copy| &copy.engine)
    }

    /// Keeps only the compiled modules whose hash `keep` accepts.
    pub fn retain_modules(&self, keep: impl Fn(&str) -> bool) {
        self.modules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|hash, _| keep(hash));
    }

    /// The number of compiled modules held.
    pub fn cached_modules(&self) -> usize {
        self.modules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}
