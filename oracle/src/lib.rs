//! TensorWasm's differential oracle: the PTX interpreter that stands in for a GPU on machines
//! without one, behind the [`Backend`] trait that a CUDA runner will also implement.
//!
//! ```text
//! PTX text ──ptx::parse_module──► PtxModule (syntax, lines and columns)
//!                                   │
//!              interp::decode ──────► Kernel (typed ops; unsupported subset rejected here)
//!                                   │
//!   Launch + DeviceMemory ──interp──► blocks in order, threads interleaved at bar.sync
//!                                   ▼
//!                           DeviceMemory updated, LaunchStats
//! ```
//!
//! The crate must never panic on any input and never invent a result that the PTX ISA leaves
//! unspecified; it reports such cases as [`Error`]s naming the PTX line. Its only unsafe code is
//! the CUDA runner's calls into the driver (`cuda`, feature `cuda`).
#![deny(unsafe_code)]

mod backend;
pub mod compare;
#[cfg(feature = "cuda")]
mod cuda;
mod error;
pub mod harness;
mod interp;
mod memory;
pub mod ptx;
pub mod record;

pub use backend::{Backend, Launch, LaunchStats, ParamValue};
#[cfg(feature = "cuda")]
pub use cuda::{CudaBackend, DeviceInfo, MAX_QUEUES, Queue};
pub use error::{Error, FaultKind, Result, Site};
pub use interp::{DEFAULT_STEP_LIMIT, Interpreter};
pub use memory::{ALIGNMENT, BASE_ADDRESS, BufferId, DeviceMemory, GUARD_GAP};
pub use ptx::{PtxModule, parse_module};
