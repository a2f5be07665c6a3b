//! TensorWasm's offload pipeline: the stages between the loop analysis and the bundle.
//!
//! ```text
//! module ─► driver::Analysed::new   (tensorwasm_analysis: translate → loops → detect, once)
//!        ─► lower                   (each candidate nest → KernelIR, one thread per grid point)
//!        ─► tensorwasm_blueprints   (blueprint choice, PTX emission)
//!        ─► plan                    (polynomials → the kernel table's exact guard expressions)
//!        ─► rewrite::outline        (per kernel an exported function for the build's oracle)
//!        ─► rewrite::rewrite        (each nest dispatches first, its loop kept as fallback)
//! ```
//!
//! - [`driver`]: [`Analysed`] analyses a module once; [`Analysed::plan`] gives the kernel table
//!   entries ([`Planned`]), [`Analysed::kernels`] the KernelIR and PTX of every nest
//!   (`tensorwasm analyze`, `build --emit-ptx`).
//! - [`lower`]: an analysis candidate to a KernelIR kernel.
//! - [`plan`]: a lowered kernel to its [`tensorwasm_guard::OffloadKernel`].
//! - [`rewrite`]: the guarded rewrite and the outliner (wasm-encoder).
//! - [`report`]: what the build reports per nest, the oracle's verdict included.
//!
//! The build's oracle, which runs each kernel against its loop, needs a Wasm engine for the
//! reference and lives in `tensorwasm` (`oracle::nest`); this crate links no Wasm engine and no
//! Cranelift, so it builds and tests in seconds. It has no `unsafe`.

#![forbid(unsafe_code)]

pub mod driver;
pub mod lower;
pub mod plan;
pub mod report;
pub mod rewrite;

pub use driver::{
    Analysed, CubinBuild, KernelBuild, KernelReport, LoweredNest, Planned, kernel_name, plan_module,
};
pub use plan::{global_types, plan_kernel};
pub use report::{NestFailure, NestReport};
pub use rewrite::{RewriteError, outline, outlined_export, rewrite};
