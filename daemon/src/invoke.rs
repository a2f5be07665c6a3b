//! Running a guest: a fresh instance per invocation, WASI preview 1 linked in, limits applied.
//!
//! Two entry points: [`Runtime::invoke`] calls one exported function with JSON arguments and
//! returns JSON results; [`Runtime::run_command`] runs a WASI command's `_start` with arguments,
//! environment, preopened directories and stdio, and returns its exit code. Every failure is an
//! [`Error`] saying whether the caller, the limits or the guest is at fault; nothing panics on
//! guest behaviour.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use wasmtime::{Engine, ExternType, InstancePre, Linker, Module, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::error::{Error, Result};
use crate::limits::{EpochTicker, Limits, MemoryLimiter};
use crate::offload::{self, HasOffload, Host, KernelStats, Kernels, OffloadState};
use crate::values;

/// Most bytes of stdout or stderr kept from a command whose output is captured.
pub const MAX_CAPTURED_OUTPUT: usize = 16 << 20;

/// An engine with its epoch ticker: what every invocation runs on.
pub struct Runtime {
    engine: Engine,
    linker: Linker<State>,
    host: Arc<Host>,
    _ticker: EpochTicker,
}

/// A module linked against WASI once, ready to instantiate many times.
#[derive(Clone)]
pub struct Prepared {
    module: Module,
    pre: InstancePre<State>,
    kernels: Option<Arc<Kernels>>,
    inline: bool,
    queue: Option<Arc<str>>,
}

impl Prepared {
    /// The module this was prepared from.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// The bundle's kernels, when the module was prepared with them.
    pub fn kernels(&self) -> Option<&Kernels> {
        self.kernels.as_deref()
    }

    /// Whether a call may start on an async runtime's worker thread (`crate::worker`): every
    /// import is a `tensorwasm:offload` dispatch or a `wasi:cuda` call, which leave the worker
    /// themselves when they launch. WASI's synchronous host calls block on the async runtime,
    /// which a worker thread may not do, so a module that imports WASI runs off the worker.
    pub fn runs_inline(&self) -> bool {
        self.inline
    }

    /// The same, with every kernel launch of its calls on device queue `name` (the daemon
    /// names each tenant's): on `cuda` a stream of its own, so one tenant's launches never
    /// queue behind another's. Without one, launches use the device's default stream.
    pub fn on_queue(mut self, name: &str) -> Prepared {
        self.queue = Some(Arc::from(name));
        self
    }

    /// The device queue its calls launch on ([`Prepared::on_queue`]).
    pub fn queue(&self) -> Option<&str> {
        self.queue.as_deref()
    }
}

/// Where a guest's stdio goes.
#[derive(Debug, Clone)]
pub enum Stdio {
    /// The host process's own stdin, stdout and stderr.
    Inherit,
    /// Stdin from these bytes; stdout and stderr captured (up to [`MAX_CAPTURED_OUTPUT`]).
    Capture { stdin: Vec<u8> },
    /// No stdin, output discarded.
    Null,
}

/// A WASI command's environment.
#[derive(Debug, Clone)]
pub struct CommandIo {
    /// `argv`, including the program name as `argv[0]`.
    pub args: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Preopened directories: host path and the guest path it appears as.
    pub dirs: Vec<(PathBuf, String)>,
    /// Stdio wiring.
    pub stdio: Stdio,
}

/// What a WASI command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// `proc_exit` status, or 0 when `_start` returned.
    pub exit_code: i32,
    /// Captured stdout, with [`Stdio::Capture`].
    pub stdout: Vec<u8>,
    /// Captured stderr, with [`Stdio::Capture`].
    pub stderr: Vec<u8>,
    /// What each kernel of the bundle did (empty without kernels).
    pub kernels: Vec<KernelStats>,
}

/// Captured stdout and stderr pipes.
type CapturedOutput = (MemoryOutputPipe, MemoryOutputPipe);

/// Per-store host state: WASI and the memory limiter.
pub struct State {
    /// WASI: a command's own context, or for an invocation one made at its first WASI call
    /// (most invoked exports make none, and making one costs more than a trivial call).
    wasi: Option<WasiP1Ctx>,
    limiter: MemoryLimiter,
    offload: OffloadState,
}

impl State {
    fn wasi(&mut self) -> &mut WasiP1Ctx {
        self.wasi
            .get_or_insert_with(|| WasiCtxBuilder::new().build_p1())
    }
}

impl HasOffload for State {
    fn offload(&mut self) -> &mut OffloadState {
        &mut self.offload
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime over `engine`, which must have epoch interruption on (as
    /// [`crate::engine::base_config`] does).
    pub fn new(engine: Engine) -> Result<Runtime> {
        Runtime::with_host(engine, Host::none())
    }

    /// A runtime whose kernels dispatch through `host`.
    pub fn with_host(engine: Engine, host: Host) -> Result<Runtime> {
        let ticker = EpochTicker::start(&engine)
            .map_err(|e| Error::Runtime(format!("cannot start the epoch thread: {e}")))?;
        let mut linker: Linker<State> = Linker::new(&engine);
        p1::add_to_linker_sync(&mut linker, State::wasi)
            .map_err(|e| Error::Runtime(format!("cannot link WASI: {e:#}")))?;
        let host = Arc::new(host);
        crate::wasi_cuda::define(&mut linker, host.clone())?;
        Ok(Runtime {
            engine,
            linker,
            host,
            _ticker: ticker,
        })
    }

    /// The dispatch host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The engine modules must be loaded into.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Links `module` against WASI once (imports resolved, type-checked), for many
    /// instantiations. Fails when the module imports something the runtime does not provide.
    pub fn prepare(&self, module: &Module) -> Result<Prepared> {
        self.prepare_with(module, None)
    }

    /// [`Runtime::prepare`] for a module whose offloaded loops call `tensorwasm:offload`:
    /// each dispatch import runs its kernel of `kernels` on this runtime's host.
    pub fn prepare_with(&self, module: &Module, kernels: Option<Arc<Kernels>>) -> Result<Prepared> {
        let pre = match &kernels {
            Some(k) if offload::imports_offload(module) => {
                let mut linker = self.linker.clone();
                offload::define(&mut linker, module, k.clone(), self.host.clone())?;
                linker.instantiate_pre(module)
            }
            _ => self.linker.instantiate_pre(module),
        }
        .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
        let inline = offload::only_launch_imports(module);
        Ok(Prepared {
            module: module.clone(),
            pre,
            kernels,
            inline,
            queue: None,
        })
    }

    /// Calls `export` with JSON `args` lowered by its declared parameter types, and returns the
    /// results as a JSON array. WASI is linked with null stdio.
    pub fn invoke(
        &self,
        module: &Module,
        export: &str,
        args: &Value,
        limits: &Limits,
    ) -> Result<Value> {
        self.invoke_prepared(&self.prepare(module)?, export, args, limits)
    }

    /// [`Runtime::invoke`] on a prepared module: a fresh store and instance, nothing shared
    /// with any other call.
    pub fn invoke_prepared(
        &self,
        prepared: &Prepared,
        export: &str,
        args: &Value,
        limits: &Limits,
    ) -> Result<Value> {
        self.invoke_prepared_stats(prepared, export, args, limits)
            .map(|(v, _)| v)
    }

    /// [`Runtime::invoke_prepared`], also returning what each kernel did.
    pub fn invoke_prepared_stats(
        &self,
        prepared: &Prepared,
        export: &str,
        args: &Value,
        limits: &Limits,
    ) -> Result<(Value, Vec<KernelStats>)> {
        let func_ty = function_export(&prepared.module, export)?;
        let params: Vec<_> = func_ty.params().collect();
        let args = values::lower_args(export, &params, args)?;
        let mut store = self.bare_store(None, limits, prepared);
        let instance = instantiate(&mut store, prepared)?;
        let func = instance.get_func(&mut store, export).ok_or_else(|| {
            Error::Runtime(format!("export `{export}` vanished after instantiation"))
        })?;
        let mut results = vec![wasmtime::Val::I32(0); func_ty.results().len()];
        func.call(&mut store, &args, &mut results)
            .map_err(|e| guest_error(e, limits))?;
        let stats = kernel_stats(prepared, store.data());
        Ok((values::raise_results(&results), stats))
    }

    /// Runs a WASI command's `_start`.
    pub fn run_command(
        &self,
        module: &Module,
        io: &CommandIo,
        limits: &Limits,
    ) -> Result<CommandOutcome> {
        self.run_prepared(&self.prepare(module)?, io, limits)
    }

    /// [`Runtime::run_command`] on a prepared module.
    pub fn run_prepared(
        &self,
        prepared: &Prepared,
        io: &CommandIo,
        limits: &Limits,
    ) -> Result<CommandOutcome> {
        if !matches!(
            prepared.module.get_export("_start"),
            Some(ExternType::Func(_))
        ) {
            return Err(Error::NotACommand {
                available: function_exports(&prepared.module),
            });
        }
        let (mut store, pipes) = self.store(io, limits, prepared)?;
        let instance = instantiate(&mut store, prepared)?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|e| Error::Instantiate(format!("`_start` has the wrong type: {e}")))?;
        let exit_code = match start.call(&mut store, ()) {
            Ok(()) => 0,
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => exit.0,
                None => return Err(guest_error(e, limits)),
            },
        };
        let (stdout, stderr) = match pipes {
            Some((out, err)) => (out.contents().to_vec(), err.contents().to_vec()),
            None => (Vec::new(), Vec::new()),
        };
        Ok(CommandOutcome {
            exit_code,
            stdout,
            stderr,
            kernels: kernel_stats(prepared, store.data()),
        })
    }

    fn store(
        &self,
        io: &CommandIo,
        limits: &Limits,
        prepared: &Prepared,
    ) -> Result<(Store<State>, Option<CapturedOutput>)> {
        let mut builder = WasiCtxBuilder::new();
        builder.args(&io.args).envs(&io.env);
        let pipes = match &io.stdio {
            Stdio::Inherit => {
                builder.inherit_stdio();
                None
            }
            Stdio::Capture { stdin } => {
                let out = MemoryOutputPipe::new(MAX_CAPTURED_OUTPUT);
                let err = MemoryOutputPipe::new(MAX_CAPTURED_OUTPUT);
                builder
                    .stdin(MemoryInputPipe::new(stdin.clone()))
                    .stdout(out.clone())
                    .stderr(err.clone());
                Some((out, err))
            }
            Stdio::Null => None,
        };
        for (host, guest) in &io.dirs {
            builder
                .preopened_dir(host, guest, FsPerms::ReadWrite)
                .map_err(|e| Error::Preopen {
                    path: host.display().to_string(),
                    message: format!("{e:#}"),
                })?;
        }
        Ok((
            self.bare_store(Some(builder.build_p1()), limits, prepared),
            pipes,
        ))
    }

    fn bare_store(
        &self,
        wasi: Option<WasiP1Ctx>,
        limits: &Limits,
        prepared: &Prepared,
    ) -> Store<State> {
        let state = State {
            wasi,
            limiter: MemoryLimiter::new(limits.max_memory),
            offload: OffloadState::on_queue(prepared.queue.clone()),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // The first tick after the start hands a guest that is still running off its async
        // worker (`worker`); the rest of the wall-time limit then runs out as before.
        let total = limits.deadline_ticks();
        let mut first = total > 1;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if std::mem::take(&mut first) {
                crate::worker::hand_off();
                return Ok(UpdateDeadline::Continue(total - 1));
            }
            Ok(UpdateDeadline::Interrupt)
        });
        store
    }
}

/// One entry per kernel of the prepared module, calls or not.
/// The bundle's kernels in table order, then each entry the guest launched through `wasi:cuda`.
fn kernel_stats(prepared: &Prepared, state: &State) -> Vec<KernelStats> {
    let table = prepared.kernels.iter().flat_map(|k| &k.table().kernels);
    table
        .enumerate()
        .map(|(i, kern)| match state.offload.stats().get(i) {
            Some(s) if !s.kernel.is_empty() => s.clone(),
            _ => KernelStats {
                kernel: kern.name.clone(),
                ..KernelStats::default()
            },
        })
        .chain(state.offload.guest_stats().iter().cloned())
        .collect()
}

fn instantiate(store: &mut Store<State>, prepared: &Prepared) -> Result<wasmtime::Instance> {
    prepared.pre.instantiate(&mut *store).map_err(|e| {
        let limiter = &store.data().limiter;
        match limiter.refused {
            Some(requested) => Error::MemoryLimit {
                requested,
                limit: limiter.limit(),
            },
            None => match e.downcast_ref::<Trap>() {
                Some(_) => Error::Trap(format!("{e:#}")),
                None => Error::Instantiate(format!("{e:#}")),
            },
        }
    })
}

fn guest_error(e: wasmtime::Error, limits: &Limits) -> Error {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Error::Timeout(limits.timeout),
        _ => Error::Trap(format!("{e:#}")),
    }
}

fn function_export(module: &Module, name: &str) -> Result<wasmtime::FuncType> {
    match module.get_export(name) {
        Some(ExternType::Func(ty)) => Ok(ty),
        Some(other) => Err(Error::NotAFunction {
            name: name.to_string(),
            kind: extern_kind(&other).into(),
        }),
        None => Err(Error::UnknownExport {
            name: name.to_string(),
            available: function_exports(module),
        }),
    }
}

/// Comma-separated function exports with their signatures, for error messages.
pub fn function_exports(module: &Module) -> String {
    let names: Vec<String> = module
        .exports()
        .filter_map(|e| match e.ty() {
            ExternType::Func(f) => {
                let params: Vec<_> = f.params().collect();
                let results: Vec<_> = f.results().collect();
                Some(format!(
                    "{}{} -> {}",
                    e.name(),
                    values::signature(&params),
                    values::signature(&results)
                ))
            }
            _ => None,
        })
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn extern_kind(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "function",
        ExternType::Global(_) => "global",
        ExternType::Table(_) => "table",
        ExternType::Memory(_) => "memory",
        ExternType::Tag(_) => "tag",
    }
}
