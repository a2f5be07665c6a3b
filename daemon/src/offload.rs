//! The dispatch host: what the `tensorwasm:offload` imports of a rewritten module do.
//!
//! For a call `dispatch_K(args…)` the host evaluates, exactly and with checked arithmetic, the
//! kernel's trip counts, its checks (loops that run at least once, groups that do not overlap),
//! the bytes every access may touch, and the launch threshold; bounds-checks the union of those
//! bytes (the *memory window*) against linear memory; copies the window in, launches, reads the
//! trap flag, and copies the window back only when the kernel ran to the end without raising
//! it. It then returns 0 and keeps the live-outs for the `live_out` import. In every other case
//! it *declines*: it returns 1 having written nothing, and the module runs its original loop.
//!
//! Backends: `none` declines every call; `emulated` runs the PTX on the oracle's interpreter
//! (exact, slow: for tests and machines without a GPU); `cuda` launches on an NVIDIA GPU
//! through the oracle's CUDA runner (libcuda loaded at run time).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tensorwasm_guard::{
    ArgType, Decline, IMPORT_MODULE, LIVE_OUT_IMPORT, OffloadKernel, OffloadTable, ParamValue,
    Value, check, decline,
};
use tensorwasm_oracle::{DeviceMemory, Interpreter, Launch, LaunchStats, PtxModule};
use wasmtime::{Caller, Extern, FuncType, Linker, Module, Val, ValType};

use crate::error::{Error, Result};

/// Which device runs the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Decline every dispatch: every loop runs on the CPU.
    None,
    /// The PTX interpreter: exact and slow.
    Emulated,
    /// An NVIDIA GPU through libcuda.
    Cuda,
}

impl BackendKind {
    /// Parses `none`, `emulated`, `cuda` or `auto` (cuda when libcuda loads and device 0
    /// opens, else none).
    pub fn parse(s: &str) -> std::result::Result<BackendKind, String> {
        match s {
            "none" => Ok(BackendKind::None),
            "emulated" => Ok(BackendKind::Emulated),
            "cuda" => Ok(BackendKind::Cuda),
            "auto" => Ok(if cuda_usable() {
                BackendKind::Cuda
            } else {
                BackendKind::None
            }),
            other => Err(format!(
                "unknown backend `{other}`: expected auto, cuda, emulated or none"
            )),
        }
    }

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::None => "none",
            BackendKind::Emulated => "emulated",
            BackendKind::Cuda => "cuda",
        }
    }
}

fn cuda_usable() -> bool {
    tensorwasm_oracle::CudaBackend::library_present()
        && tensorwasm_oracle::CudaBackend::new(0).is_ok()
}

/// Bounds on the device work one runtime takes on; a dispatch past one declines with `quota`
/// (its loop runs on the CPU, so a full device costs time, never a failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchLimits {
    /// Launches in flight at once, all bundles and tenants together (a launch waits for the
    /// device behind the ones before it; past this many the CPU is the better place).
    pub max_inflight: usize,
    /// Bytes of one launch's memory window (copied to the device and back).
    pub max_window_bytes: u64,
    /// Threads of one launch on `emulated` (the interpreter runs them on the calling thread, and
    /// an invocation's deadline does not interrupt a host call).
    pub max_emulated_threads: u64,
}

impl Default for LaunchLimits {
    fn default() -> Self {
        LaunchLimits {
            max_inflight: 4,
            max_window_bytes: 1 << 30,
            max_emulated_threads: 1 << 20,
        }
    }
}

/// The host's device and settings, shared by every bundle of a runtime.
pub struct Host {
    kind: BackendKind,
    cuda: Option<tensorwasm_oracle::CudaBackend>,
    min_threads: Option<u64>,
    limits: LaunchLimits,
    inflight: std::sync::atomic::AtomicUsize,
}

/// A launch slot of [`LaunchLimits::max_inflight`], given back when dropped.
struct LaunchSlot<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for LaunchSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("kind", &self.kind)
            .field("min_threads", &self.min_threads)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host on `kind`. `min_threads` overrides each kernel's launch threshold (tests use 1).
    /// Opening the CUDA device fails with a clear error.
    pub fn new(kind: BackendKind, min_threads: Option<u64>) -> Result<Host> {
        let cuda = match kind {
            BackendKind::Cuda => Some(
                tensorwasm_oracle::CudaBackend::new(0)
                    .map_err(|e| Error::Runtime(format!("cannot use the cuda backend: {e}")))?,
            ),
            _ => None,
        };
        Ok(Host {
            kind,
            cuda,
            min_threads,
            limits: LaunchLimits::default(),
            inflight: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// A host that declines everything.
    pub fn none() -> Host {
        Host {
            kind: BackendKind::None,
            cuda: None,
            min_threads: None,
            limits: LaunchLimits::default(),
            inflight: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The same host with other launch limits.
    pub fn with_limits(mut self, limits: LaunchLimits) -> Host {
        self.limits = limits;
        self
    }

    /// A launch slot, if fewer than `max_inflight` launches are in flight.
    fn launch_slot(&self) -> Option<LaunchSlot<'_>> {
        use std::sync::atomic::Ordering;
        self.inflight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limits.max_inflight).then_some(n + 1)
            })
            .ok()
            .map(|_| LaunchSlot(&self.inflight))
    }

    /// The backend.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// The CUDA device, with backend `cuda`.
    pub(crate) fn cuda(&self) -> Option<&tensorwasm_oracle::CudaBackend> {
        self.cuda.as_ref()
    }

    /// Launches `entry` of `ptx` on the CUDA device, on the stream of `queue` (an invocation's
    /// tenant; the default stream without one), and waits for it.
    pub(crate) fn cuda_launch(
        &self,
        queue: Option<&str>,
        ptx: &str,
        entry: &str,
        launch: &Launch,
        mem: &mut DeviceMemory,
    ) -> std::result::Result<LaunchStats, String> {
        let c = self.cuda.as_ref().ok_or("no CUDA device")?;
        let q = match queue {
            Some(name) => c.queue(name).map_err(|e| e.to_string())?,
            None => c.default_queue(),
        };
        c.launch_on(&q, ptx, entry, launch, mem)
            .map_err(|e| e.to_string())
    }
}

/// A bundle's kernels, ready to dispatch: the table with each PTX module parsed once.
pub struct Kernels {
    table: OffloadTable,
    parsed: Vec<Option<PtxModule>>,
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels")
            .field("kernels", &self.table.kernels.len())
            .finish_non_exhaustive()
    }
}

impl Kernels {
    /// Prepares `table` (a kernel whose PTX does not parse declines every call).
    pub fn new(table: OffloadTable) -> Kernels {
        let parsed = table
            .kernels
            .iter()
            .map(|k| tensorwasm_oracle::parse_module(&k.ptx).ok())
            .collect();
        Kernels { table, parsed }
    }

    /// The table.
    pub fn table(&self) -> &OffloadTable {
        &self.table
    }
}

/// What happened to one kernel during one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KernelStats {
    /// The kernel (PTX entry) name.
    pub kernel: String,
    /// Calls that ran on the device.
    pub dispatched: u64,
    /// Calls declined, by reason.
    pub declined: BTreeMap<&'static str, u64>,
    /// Nanoseconds spent in dispatches that ran (copies and launch).
    pub device_ns: u64,
    /// Bytes copied to the device for this kernel's launches (its memory windows), launches
    /// whose trap flag made the host decline included. Bundle kernels only: a guest's own
    /// `wasi:cuda` copies belong to its buffers, not to a launch.
    pub bytes_to_device: u64,
    /// Bytes copied back from the device (the windows of launches that ran to the end).
    pub bytes_from_device: u64,
    /// The details of the last decline, if any.
    pub last_decline: Option<String>,
    /// Thread-instructions the PTX interpreter ran for this kernel (backend `emulated` only;
    /// launches whose trap flag made the host decline included). The build's oracle budgets
    /// its cases by it.
    #[serde(skip)]
    pub instructions: u64,
}

/// What one dispatch cost: added to its kernel's [`KernelStats`], whether it ran or declined.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    /// Thread-instructions the interpreter ran (backend `emulated`).
    pub instructions: u64,
    /// Bytes copied to the device.
    pub to_device: u64,
    /// Bytes copied back from the device.
    pub from_device: u64,
}

impl KernelStats {
    fn add(&mut self, spent: Spent) {
        self.instructions += spent.instructions;
        self.bytes_to_device += spent.to_device;
        self.bytes_from_device += spent.from_device;
    }
}

/// Per-invocation offload state, kept in the store.
#[derive(Debug, Default)]
pub struct OffloadState {
    /// The device queue this invocation's launches go to (its tenant, in the daemon); the
    /// default one when `None`. On `cuda` each queue is a stream of its own.
    pub(crate) queue: Option<Arc<str>>,
    live_outs: Vec<i64>,
    stats: Vec<KernelStats>,
    /// The guest's own `wasi:cuda` device state.
    pub(crate) guest: crate::wasi_cuda::GuestDevice,
}

impl OffloadState {
    /// Fresh state whose launches go to device queue `queue` (see [`OffloadState::queue`]).
    pub fn on_queue(queue: Option<Arc<str>>) -> OffloadState {
        OffloadState {
            queue,
            ..OffloadState::default()
        }
    }

    /// The device queue this invocation's launches go to.
    pub fn queue(&self) -> Option<&str> {
        self.queue.as_deref()
    }

    /// Per kernel of the bundle, in table order (empty when the module has no kernels).
    pub fn stats(&self) -> &[KernelStats] {
        &self.stats
    }

    /// What each entry the guest launched through `wasi:cuda` did.
    pub fn guest_stats(&self) -> &[KernelStats] {
        self.guest.stats()
    }

    fn record(&mut self, k: usize, name: &str) -> &mut KernelStats {
        if self.stats.len() <= k {
            self.stats.resize_with(k + 1, KernelStats::default);
        }
        let s = &mut self.stats[k];
        if s.kernel.is_empty() {
            s.kernel = name.to_string();
        }
        s
    }
}

/// Access to the offload state from a store's data.
pub trait HasOffload {
    /// The state.
    fn offload(&mut self) -> &mut OffloadState;
}

/// Whether `module` imports anything from [`IMPORT_MODULE`].
pub fn imports_offload(module: &Module) -> bool {
    module.imports().any(|i| i.module() == IMPORT_MODULE)
}

/// Whether every import of `module` is a [`IMPORT_MODULE`] dispatch or a `wasi:cuda` call:
/// host functions that leave an async worker themselves when they launch (`crate::worker`).
pub fn only_launch_imports(module: &Module) -> bool {
    module
        .imports()
        .all(|i| [IMPORT_MODULE, crate::wasi_cuda::IMPORT_MODULE].contains(&i.module()))
}

/// Defines the `tensorwasm:offload` imports of `module` in `linker`: one `dispatch_<name>` per
/// kernel of `kernels` and `live_out`. Fails when the module imports something the table does
/// not describe, or with another type.
pub fn define<T: HasOffload + 'static>(
    linker: &mut Linker<T>,
    module: &Module,
    kernels: Arc<Kernels>,
    host: Arc<Host>,
) -> Result<()> {
    // Cubins for this device replace the driver's PTX JIT; offered once, before any launch.
    if let Some(c) = host.cuda() {
        for k in &kernels.table.kernels {
            for cubin in &k.cubins {
                c.offer_cubin(&k.ptx, &cubin.arch, &cubin.image);
            }
        }
    }
    let memory = module.exports().find_map(|e| match e.ty() {
        wasmtime::ExternType::Memory(_) => Some(e.name().to_string()),
        _ => None,
    });
    let engine = module.engine();
    for imp in module.imports().filter(|i| i.module() == IMPORT_MODULE) {
        let name = imp.name();
        let wasmtime::ExternType::Func(ty) = imp.ty() else {
            return Err(Error::Instantiate(format!(
                "import {IMPORT_MODULE}::{name} is not a function"
            )));
        };
        if name == LIVE_OUT_IMPORT {
            let want = FuncType::new(engine, [ValType::I32], [ValType::I64]);
            if !FuncType::eq(&ty, &want) {
                return Err(Error::Instantiate(format!(
                    "import {IMPORT_MODULE}::{name} must have type (i32) -> i64"
                )));
            }
            linker
                .func_new(
                    IMPORT_MODULE,
                    name,
                    want,
                    |mut caller: Caller<'_, T>, params, results| {
                        let i = params[0].unwrap_i32();
                        let outs = &caller.data_mut().offload().live_outs;
                        let v = usize::try_from(i).ok().and_then(|i| outs.get(i)).copied();
                        match v {
                            Some(v) => {
                                results[0] = Val::I64(v);
                                Ok(())
                            }
                            None => Err(wasmtime::Error::msg(format!(
                                "{IMPORT_MODULE}::{LIVE_OUT_IMPORT}({i}): no such live-out"
                            ))),
                        }
                    },
                )
                .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
            continue;
        }
        let Some(k) = kernels
            .table
            .kernels
            .iter()
            .position(|k| k.import_name() == name)
        else {
            return Err(Error::Instantiate(format!(
                "import {IMPORT_MODULE}::{name} names no kernel of the bundle"
            )));
        };
        let kern = &kernels.table.kernels[k];
        let want = FuncType::new(
            engine,
            kern.args.iter().map(|a| match a.ty {
                ArgType::I32 => ValType::I32,
                ArgType::I64 => ValType::I64,
                ArgType::F32 => ValType::F32,
                ArgType::F64 => ValType::F64,
            }),
            [ValType::I32],
        );
        if !FuncType::eq(&ty, &want) {
            return Err(Error::Instantiate(format!(
                "import {IMPORT_MODULE}::{name} does not have the kernel's type"
            )));
        }
        let (kernels, host, memory) = (kernels.clone(), host.clone(), memory.clone());
        linker
            .func_new(
                IMPORT_MODULE,
                name,
                want,
                move |mut caller: Caller<'_, T>, params, results| {
                    let kern = &kernels.table.kernels[k];
                    let start = Instant::now();
                    let mut spent = Spent::default();
                    let outcome = if host.kind == BackendKind::None {
                        // Without a device every call declines here, before the memory
                        // lookup and the copy of the queue's name.
                        Err(decline("no-device", "backend none"))
                    } else {
                        let queue = caller.data_mut().offload().queue.clone();
                        match memory
                            .as_deref()
                            .and_then(|m| caller.get_export(m))
                            .and_then(Extern::into_memory)
                        {
                            None => Err(decline("no-memory", "the module exports no memory")),
                            Some(mem) => {
                                let data = mem.data_mut(&mut caller);
                                let parsed = kernels.parsed[k].as_ref();
                                dispatch(
                                    &host,
                                    kern,
                                    parsed,
                                    params,
                                    data,
                                    &mut spent,
                                    queue.as_deref(),
                                )
                            }
                        }
                    };
                    let state = caller.data_mut().offload();
                    let ok = outcome.is_ok();
                    match outcome {
                        Ok(outs) => {
                            state.live_outs = outs;
                            let s = state.record(k, &kern.name);
                            s.dispatched += 1;
                            s.device_ns += start.elapsed().as_nanos() as u64;
                            s.add(spent);
                        }
                        Err(d) => {
                            let s = state.record(k, &kern.name);
                            *s.declined.entry(d.reason).or_default() += 1;
                            if s.last_decline.as_deref() != Some(&*d.detail) {
                                s.last_decline = Some(d.detail.into_owned());
                            }
                            s.add(spent);
                        }
                    }
                    results[0] = Val::I32(if ok { 0 } else { 1 });
                    Ok(())
                },
            )
            .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
    }
    Ok(())
}

/// The guard's view of a call's arguments (`None`: a value of no Wasm number type).
pub fn guard_values(params: &[Val]) -> Vec<Value> {
    params
        .iter()
        .map(|v| match v {
            Val::I32(x) => Value::I32(*x),
            Val::I64(x) => Value::I64(*x),
            Val::F32(x) => Value::F32(*x),
            Val::F64(x) => Value::F64(*x),
            // Never in a dispatch signature; a float's bits stand in, which the guard does not
            // read as an integer.
            _ => Value::F64(0),
        })
        .collect()
}

/// Runs one dispatch: `Ok(live-outs)` when the kernel ran and memory holds its result;
/// `Err` when it declined, with memory untouched. Adds to `spent` the thread-instructions the
/// interpreter ran (backend `emulated`) and the bytes copied each way. The dispatch import ([`define`]) declines backend
/// `none` before it looks up memory and calls this; called with it anyway, this declines at
/// the launch.
pub fn dispatch(
    host: &Host,
    kern: &OffloadKernel,
    parsed: Option<&PtxModule>,
    params: &[Val],
    memory: &mut [u8],
    spent: &mut Spent,
    queue: Option<&str>,
) -> std::result::Result<Vec<i64>, Decline> {
    let checked = check(kern, &guard_values(params), memory.len(), host.min_threads)?;
    let (lo, hi) = checked.window;
    let grid = checked.grid(kern)?;
    let limits = host.limits;
    let threads = grid
        .iter()
        .chain(&kern.block)
        .fold(1u64, |acc, &d| acc.saturating_mul(u64::from(d)));
    if host.kind == BackendKind::Emulated && threads > limits.max_emulated_threads {
        return Err(decline(
            "quota",
            format!(
                "{threads} threads, more than the {} one launch may run on the interpreter",
                limits.max_emulated_threads
            ),
        ));
    }
    let bytes = (hi - lo) as u64;
    if bytes > limits.max_window_bytes {
        return Err(decline(
            "quota",
            format!(
                "a memory window of {bytes} bytes, more than the {} a launch may copy",
                limits.max_window_bytes
            ),
        ));
    }
    let _slot = host.launch_slot().ok_or_else(|| {
        decline(
            "quota",
            format!(
                "{} launches already in flight (the most at once)",
                limits.max_inflight
            ),
        )
    })?;
    let mut dev = DeviceMemory::new();
    let window = dev.alloc(memory[lo..hi].to_vec());
    spent.to_device += bytes;
    let trap = dev.alloc_zeroed(4);
    let mut values = Vec::with_capacity(kern.params.len());
    for p in &kern.params {
        values.push(match p {
            ParamValue::Memory => tensorwasm_oracle::ParamValue::PtrOffset(window, -(lo as i64)),
            ParamValue::TrapFlag => tensorwasm_oracle::ParamValue::Ptr(trap),
            ParamValue::Arg(i) => match params.get(*i as usize) {
                Some(Val::I32(x)) => tensorwasm_oracle::ParamValue::U32(*x as u32),
                Some(Val::I64(x)) => tensorwasm_oracle::ParamValue::U64(*x as u64),
                Some(Val::F32(x)) => tensorwasm_oracle::ParamValue::F32(f32::from_bits(*x)),
                Some(Val::F64(x)) => tensorwasm_oracle::ParamValue::F64(f64::from_bits(*x)),
                _ => return Err(decline("bad-call", "argument of an unexpected type")),
            },
            ParamValue::Int { expr, bits } => {
                let v = checked.int_param(expr, *bits)?;
                if *bits == 64 {
                    tensorwasm_oracle::ParamValue::U64(v)
                } else {
                    tensorwasm_oracle::ParamValue::U32(v as u32)
                }
            }
        });
    }
    let launch = Launch {
        grid,
        block: kern.block,
        params: values,
    };
    // A launch may take long: off the async worker, if on one (`worker`).
    let ran = crate::worker::blocking(|| match host.kind {
        BackendKind::None => Err(decline("no-device", "backend none")),
        BackendKind::Emulated => {
            let module = parsed.ok_or_else(|| decline("launch-error", "the PTX does not parse"))?;
            Interpreter::new()
                .launch_module(module, &kern.name, &launch, &mut dev)
                .map_err(|e| decline("launch-error", e.to_string()))
        }
        BackendKind::Cuda => match &host.cuda {
            None => Err(decline("no-device", "no CUDA device")),
            Some(_) => host
                .cuda_launch(queue, &kern.ptx, &kern.name, &launch, &mut dev)
                .map_err(|e| decline("launch-error", e)),
        },
    })?;
    if host.kind == BackendKind::Emulated {
        spent.instructions += ran.instructions;
    }
    let flag = dev
        .read(trap)
        .map_err(|e| decline("launch-error", e.to_string()))?;
    if flag.iter().any(|b| *b != 0) {
        return Err(decline("trap", "the kernel raised its trap flag"));
    }
    let out = dev
        .read(window)
        .map_err(|e| decline("launch-error", e.to_string()))?;
    if out.len() != hi - lo {
        return Err(decline("launch-error", "window size changed"));
    }
    spent.from_device += bytes;
    let live = checked.live_outs(kern)?;
    memory[lo..hi].copy_from_slice(out);
    Ok(live)
}
