//! Errors of the runtime: each says who is at fault (the bundle, the host, the caller's
//! arguments, or the guest) and what to do about it.

use std::time::Duration;

/// Result alias for the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong restoring a bundle or running a guest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle failed verification or decoding.
    #[error(transparent)]
    Bundle(#[from] tensorwasm_bundle::Error),
    /// The bundle carries no code for this machine's target.
    #[error(
        "bundle has no code for this host ({host}); it was built for: {available}; rebuild it with \
         `tensorwasm build SOURCE --target {host} --key KEY -o OUT.twb`"
    )]
    NoTarget { host: String, available: String },
    /// The bundle's code was produced by another Wasmtime version.
    #[error(
        "bundle code for {triple} was compiled by Wasmtime {bundle}, but this runtime is Wasmtime \
         {runtime}; rebuild it with a tensorwasm that links Wasmtime {runtime}: \
         `tensorwasm build SOURCE --target {triple} --key KEY -o OUT.twb`"
    )]
    WasmtimeVersion {
        triple: String,
        bundle: String,
        runtime: String,
    },
    /// The bundle's code was produced with another engine configuration.
    #[error(
        "engine configuration mismatch for {triple}: bundle was compiled for engine {bundle_fp} \
         [{bundle_desc}], this runtime is engine {runtime_fp} [{runtime_desc}]; rebuild it with \
         this version of tensorwasm: `tensorwasm build SOURCE --target {triple} --key KEY -o OUT.twb`"
    )]
    EngineMismatch {
        triple: String,
        bundle_fp: String,
        bundle_desc: String,
        runtime_fp: String,
        runtime_desc: String,
    },
    /// The bundle's code needs CPU features this host lacks.
    #[error(
        "bundle code for {triple} requires CPU feature(s) {missing} that this host lacks \
         (bundle requires: {required}); rebuild it for the baseline CPU: \
         `tensorwasm build SOURCE --target {triple} --key KEY -o OUT.twb`"
    )]
    CpuFeatures {
        triple: String,
        missing: String,
        required: String,
    },
    /// Wasmtime refused the precompiled code even though the manifest matched.
    #[error("precompiled code for {triple} was refused by Wasmtime: {message}")]
    Deserialize { triple: String, message: String },
    /// The requested export does not exist.
    #[error("export `{name}` not found; function exports: {available}")]
    UnknownExport { name: String, available: String },
    /// The requested export is not a function.
    #[error("export `{name}` is a {kind}, not a function")]
    NotAFunction { name: String, kind: String },
    /// The caller passed the wrong number of arguments.
    #[error("`{name}` takes {expected} argument(s) {signature}, but {got} were given")]
    ArgCount {
        name: String,
        expected: usize,
        got: usize,
        signature: String,
    },
    /// An argument does not fit the declared parameter type.
    #[error("argument {index} of `{name}`: expected {expected}, got {got}")]
    ArgType {
        name: String,
        index: usize,
        expected: String,
        got: String,
    },
    /// The arguments were not a JSON array.
    #[error("arguments must be a JSON array such as [1, 2.5]: {0}")]
    ArgsJson(String),
    /// The module has no `_start` to run as a WASI command.
    #[error(
        "module has no `_start` export, so it is not a WASI command; use --invoke EXPORT (function exports: {available})"
    )]
    NotACommand { available: String },
    /// Instantiation failed (missing import, start function trap, ...).
    #[error("instantiation failed: {0}")]
    Instantiate(String),
    /// A memory would grow past the store's limit during instantiation.
    #[error(
        "guest needs {requested} bytes of linear memory, over the limit of {limit} bytes (raise it with --max-memory)"
    )]
    MemoryLimit { requested: usize, limit: usize },
    /// The guest trapped.
    #[error("guest trapped: {0}")]
    Trap(String),
    /// The guest ran past its wall-time limit.
    #[error("guest exceeded the wall-time limit of {0:?} and was interrupted")]
    Timeout(Duration),
    /// A preopened directory could not be opened.
    #[error("cannot preopen directory `{path}`: {message}")]
    Preopen { path: String, message: String },
    /// Any other runtime failure.
    #[error("{0}")]
    Runtime(String),
}
