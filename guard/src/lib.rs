//! TensorWasm's guard: the kernel table of a bundle and the exact decision, per call, whether
//! an offloaded loop nest may run as its kernel.
//!
//! ```text
//! tensorwasm build ──► table::OffloadTable (JSON, signed in the bundle's `offload` section)
//!                              │
//! dispatch_K(args) ──► check::check(kernel, args, memory length)
//!                        ├─ Err(Decline)  → the original loop runs
//!                        └─ Ok(Checked)   → grid, kernel parameters, memory window, live-outs
//! ```
//!
//! - [`table`]: the kernel table's types: dispatch arguments, trip-count formulas, kernel
//!   parameters, access ranges, checks and live-outs, all as integer polynomials ([`Expr`]).
//! - [`validate`]: the checks and size caps a table passes when it is read.
//! - [`check`]: the guard, evaluated with checked arithmetic; its run-time dependence test is
//!   the analysis's ([`tensorwasm_analysis::dependence`]) over the launch's values.
//!
//! One guard for every caller: the dispatch host of `tensorwasmd` and `tensorwasm run`, and the
//! build's oracle, which generates cases the guard accepts. This crate links no Wasm engine and
//! no compiler (only the analysis, for the dependence test), and has no `unsafe`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod check;
pub mod table;
pub mod validate;

pub use check::{Checked, Decline, Value, check, decline};
pub use table::{
    AccessGuard, AccessRange, Arg, ArgSource, ArgType, Check, Cubin, Evidence, Expr, IMPORT_MODULE,
    LIVE_OUT_IMPORT, LiveOut, OffloadKernel, OffloadTable, ParamValue, TableError, Trip, Var,
    WrapCheck,
};
