//! The crate's one error type.
//!
//! Every fallible public function returns [`Result`]. Variants say who is at fault: the caller's
//! input ([`Error::Verify`], [`Error::Unsupported`]), a limit of this implementation
//! ([`Error::ImplLimit`]), the external `ptxas` tool ([`Error::PtxasNotFound`], [`Error::Ptxas`]),
//! the operating system ([`Error::Io`]) or a bug in this crate ([`Error::Bug`]).
//! This module must never panic and never format user data into anything but messages.

use std::path::PathBuf;

/// What went wrong, and whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kernel broke one of the KernelIR invariants listed in `kernel_ir::verify`.
    #[error("kernel `{kernel}` fails verification: {message}")]
    Verify {
        /// The kernel's name.
        kernel: String,
        /// Which invariant, and where.
        message: String,
    },
    /// The input asks for something this crate does not support (an unknown target, say).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A limit of this implementation (nesting depth, grid size) was exceeded.
    #[error("implementation limit: {0}")]
    ImplLimit(String),
    /// `ptxas` could not be found on `PATH` (or at `$TENSORWASM_PTXAS`).
    #[error("ptxas not found on PATH (set TENSORWASM_PTXAS or run scripts/cuda-tools)")]
    PtxasNotFound,
    /// `ptxas` ran and rejected the PTX.
    #[error("ptxas ({ptxas}) failed for {arch} with {status}: {log}")]
    Ptxas {
        /// The ptxas binary that ran.
        ptxas: PathBuf,
        /// The `-arch` it ran with.
        arch: String,
        /// Its exit status.
        status: String,
        /// Its combined output.
        log: String,
    },
    /// An I/O error while running external tools.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// An internal invariant of this crate was broken: a bug, please report it.
    #[error("bug in tensorwasm-blueprints: {0}")]
    Bug(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
