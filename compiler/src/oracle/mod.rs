//! The oracle stage: checks a PTX kernel against the Wasm it replaces, through
//! `tensorwasm_oracle::harness` with Wasmtime as the reference.
//!
//! ```text
//! REF.wasm/.wat + export ──reference::WasmtimeReference──┐
//! K.ptx + entry ─────────────────────────────────────────┼─► harness::check ─► Report
//! PLAN.toml ──plan::parse_plan──► harness::Plan ─────────┘   (interpreter or CUDA backend)
//! ```
//!
//! `tensorwasm oracle` calls [`check_files`]; `tensorwasm build` will call
//! `tensorwasm_oracle::harness::check` directly with a plan built from each detected kernel's
//! launch plan. This module never panics on user files: every problem is an [`InputError`]
//! naming the file and what is wrong.

pub mod bundle;
pub mod nest;
pub mod plan;
pub mod reference;

use std::path::Path;

pub use plan::parse_plan;
pub use reference::WasmtimeReference;
use tensorwasm_oracle::Backend;
use tensorwasm_oracle::harness::{self, Candidate, Config, Report};

/// What `tensorwasm oracle` checks.
#[derive(Debug, Clone)]
pub struct OracleFiles<'a> {
    /// The reference module (.wasm or .wat).
    pub wasm: &'a Path,
    /// The reference function's export name.
    pub export: &'a str,
    /// The kernel's PTX.
    pub ptx: &'a Path,
    /// The kernel's `.entry`.
    pub entry: &'a str,
    /// The plan (TOML).
    pub plan: &'a Path,
}

/// A problem with the inputs (not a counterexample): the CLI exits 2 on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Reads the files and runs the check with `backend` as the candidate (the PTX interpreter, or
/// the CUDA runner on a host with a GPU).
pub fn check_files(
    files: &OracleFiles<'_>,
    config: &Config,
    backend: &mut dyn Backend,
) -> Result<Report, InputError> {
    let err = |path: &Path, e: String| InputError(format!("{}: {e}", path.display()));
    let wasm = crate::source::read_module(files.wasm).map_err(|e| InputError(format!("{e:#}")))?;
    let mut reference =
        WasmtimeReference::new(&wasm, files.export).map_err(|e| err(files.wasm, e))?;
    let ptx = std::fs::read_to_string(files.ptx)
        .map_err(|e| err(files.ptx, format!("cannot read: {e}")))?;
    let plan_text = std::fs::read_to_string(files.plan)
        .map_err(|e| err(files.plan, format!("cannot read: {e}")))?;
    let plan = parse_plan(&plan_text).map_err(|e| err(files.plan, e))?;
    harness::check(
        &mut reference,
        backend,
        Candidate {
            ptx: &ptx,
            entry: files.entry,
        },
        &plan,
        config,
    )
    .map_err(|e| match e {
        harness::HarnessError::Plan(m) => err(files.plan, m),
        harness::HarnessError::Kernel(k) => err(files.ptx, k.to_string()),
        harness::HarnessError::Reference(m) => err(files.wasm, m),
    })
}
