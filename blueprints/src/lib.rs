//! TensorWasm blueprints: the kernels that offloaded Wasm loop nests become, and their PTX.
//!
//! ```text
//!  compiler (lower) ──► KernelIR ──verify──► emit ──► PTX text ──ptxas──► cubin
//!                       kernel_ir            emit     ptx        ptxas
//!                           │
//!                           └──► LaunchPlan (grid from trip counts, block, buffers, trap flag)
//! ```
//!
//! - [`kernel_ir`]: the IR, its text form and its verifier. Invariant: a verified kernel only
//!   touches memory through pointer params, and every value is defined before use.
//! - [`emit`]: KernelIR → PTX that computes bit for bit what Wasm computes (rules in
//!   `docs/OFFLOAD.md`). Invariant: no `.ftz`, no contraction, NaN-correct min/max, traps set
//!   the trap flag. `emit/mod.rs` is the core every kernel goes through (statements, loops,
//!   addresses, loads and stores, the direct lowering); `emit/arith.rs` the operators.
//! - [`blueprint`]: tuned shapes the emitter picks when a kernel matches, each bit-identical
//!   to the direct lowering and staging loads in shared memory. One module per blueprint holds
//!   its match and its emission over the emitter core: [`blueprint::matmul`] (tiled matmul),
//!   [`blueprint::stencil`] (tiled stencil), [`blueprint::conv2d`] (tiled conv2d);
//!   `blueprint/mod.rs` holds [`choose`] and the matching they share, `blueprint/tiled.rs` the
//!   emission they share.
//! - [`ptx`]: the typed PTX builder and printer the emitter goes through.
//! - [`launch`]: [`LaunchPlan`], how the host launches a kernel.
//! - [`ptxas`]: running NVIDIA's `ptxas` (tests, and cubins at build time).
//! - [`samples`]: reference kernels (vector add, saxpy, relu, matmul, conv2d, stencil, integer
//!   divide).
//!
//! This crate does no Wasm parsing and no GPU calls, and has no `unsafe`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blueprint;
pub mod emit;
pub mod error;
pub mod kernel_ir;
pub mod launch;
pub mod ptx;
pub mod ptxas;
pub mod samples;

pub use blueprint::{Blueprint, choose};
pub use emit::{EmitOptions, emit_module, emit_ptx};
pub use error::{Error, Result};
pub use kernel_ir::{Kernel, KernelBuilder, verify};
pub use launch::{Access, BufferUse, LaunchPlan};
pub use ptx::{PtxVersion, Target};
