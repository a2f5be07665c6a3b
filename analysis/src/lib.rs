//! TensorWasm analysis: finds the loop nests of a Wasm module that can run as GPU kernels, and
//! says for every other loop why not.
//!
//! ```text
//! .wasm ──frontend::translate──► ModuleIr (BlockIR: blocks, SSA values, locals, loop forest)
//!              │  invariants: verify::verify holds (values defined once, branches match
//!              │  block params, loops nest properly)
//!              ▼
//!        loops::analyze_function ─► LoopFacts per loop: latches, exits, induction variables,
//!              │                     trip count over values live on entry (or why not)
//!              ▼
//!        detect::analyze ─► OffloadPlan (one verdict per outermost loop nest)
//!              │            + one Diagnostic per loop; never fails
//!              │  per nest that passes the body checks:
//!              ├─ symbolic::evaluate_nest ─► NestEval: values, addresses, trip counts as Polys
//!              │       └─ constprop::entry_constants: locals constant on entry to the nest
//!              └─ candidate::build ─► Candidate: grid, groups, runtime conditions, live-outs
//!                      └─ dependence::pair_test: can two threads touch the same byte?
//! ```
//!
//! Modules: [`frontend`] (Wasm to BlockIR), [`ir`], [`opcode`], [`print`](mod@print),
//! [`verify`], [`dom`] (dominators), [`liveness`], [`loops`] (loop facts, trip counts),
//! [`poly`] (polynomials), [`constprop`] (constant propagation of the locals), [`symbolic`]
//! (symbolic evaluation of a nest), [`dependence`] (the dependence test, also called at run time
//! by the dispatch host through [`dependence::threads_disjoint`] and
//! [`dependence::groups_disjoint`]), [`candidate`] (grid, conditions, live-outs, traps, work),
//! [`detect`] (verdicts).
//!
//! Only [`translate`] can fail, and only on a malformed binary. Nothing here compiles, runs or
//! rewrites Wasm; this crate must stay light (wasmparser, serde, thiserror) so it builds and
//! fuzzes in seconds.
#![forbid(unsafe_code)]

pub mod candidate;
pub mod constprop;
pub mod dependence;
pub mod detect;
pub mod dom;
pub mod frontend;
pub mod ir;
pub mod liveness;
pub mod loops;

pub mod opcode;
mod par;
pub mod poly;
pub mod print;
pub mod symbolic;
pub mod verify;

pub use detect::{
    Diagnostic, NestVerdict, OffloadPlan, Reason, Verdict, analyze, analyze_with_threads,
};
pub use frontend::{translate, translate_with_threads};
pub use ir::ModuleIr;

/// Errors of this crate. Analyses never fail; only the front end and the verifier return these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The binary is malformed or does not validate.
    #[error("invalid wasm: {message} (at offset {offset:#x})")]
    Invalid {
        /// wasmparser's message.
        message: String,
        /// Byte offset in the binary.
        offset: usize,
    },
    /// An internal inconsistency: a bug in this crate, never the input's fault.
    #[error("internal error: {0}")]
    Bug(String),
    /// The verifier found a broken invariant (a bug in the pass that produced the IR).
    #[error("verifier: {0}")]
    Verify(String),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
