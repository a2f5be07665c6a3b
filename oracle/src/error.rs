//! The oracle's one error type and its `Result` alias.
//!
//! Every failure names who is at fault: the PTX text (`Parse`), the subset this interpreter
//! accepts (`Unsupported`), the caller's launch (`Launch`, `UnknownEntry`, `UnknownBuffer`), or
//! the kernel at run time (`Fault`, naming the PTX line, block and thread). This module must never
//! grow a variant that hides a PTX line when one is known, and messages never end with a period.

use std::fmt;

/// `Result` with the oracle's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Where a run-time fault happened: PTX source line, block index and thread index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// 1-based PTX source line of the faulting instruction.
    pub line: u32,
    /// `%ctaid` of the faulting thread.
    pub block: [u32; 3],
    /// `%tid` of the faulting thread.
    pub thread: [u32; 3],
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [bx, by, bz] = self.block;
        let [tx, ty, tz] = self.thread;
        write!(
            f,
            "line {} (block ({bx},{by},{bz}) thread ({tx},{ty},{tz}))",
            self.line
        )
    }
}

/// What went wrong while a kernel ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// A global or shared access outside every buffer or variable.
    OutOfBounds {
        /// `"global"` or `"shared"`.
        space: &'static str,
        /// Faulting address.
        addr: u64,
        /// Access width in bytes.
        size: u32,
    },
    /// An access whose address is not a multiple of its width.
    Misaligned {
        /// `"global"` or `"shared"`.
        space: &'static str,
        /// Faulting address.
        addr: u64,
        /// Access width in bytes.
        size: u32,
    },
    /// Integer `div`/`rem` by zero: the PTX ISA leaves the result unspecified.
    IntegerDivisionByZero,
    /// Signed `div` of the minimum value by -1: the quotient is not representable.
    IntegerDivisionOverflow,
    /// The thread executed more instructions than the configured step limit.
    StepLimit(u64),
    /// A register was read before anything was written to it.
    UninitializedRegister(String),
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::OutOfBounds { space, addr, size } => {
                write!(
                    f,
                    "out-of-bounds {space} access of {size} bytes at address {addr:#x}"
                )
            }
            FaultKind::Misaligned { space, addr, size } => {
                write!(
                    f,
                    "misaligned {space} access of {size} bytes at address {addr:#x}"
                )
            }
            FaultKind::IntegerDivisionByZero => write!(f, "integer division by zero"),
            FaultKind::IntegerDivisionOverflow => {
                write!(f, "signed integer division overflow (MIN / -1)")
            }
            FaultKind::StepLimit(n) => write!(f, "step limit of {n} instructions exceeded"),
            FaultKind::UninitializedRegister(r) => write!(f, "read of uninitialized register {r}"),
        }
    }
}

/// Every error the oracle reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The PTX text is malformed.
    #[error("parse error at line {line}, column {col}: {msg}")]
    Parse {
        /// 1-based line.
        line: u32,
        /// 1-based column.
        col: u32,
        /// What was expected or found.
        msg: String,
    },
    /// Well-formed PTX outside the subset this interpreter executes exactly.
    #[error("unsupported at line {line}: {what}")]
    Unsupported {
        /// 1-based PTX line.
        line: u32,
        /// The instruction or construct, and why.
        what: String,
    },
    /// The module has no `.entry` of this name.
    #[error("no kernel entry named `{0}`")]
    UnknownEntry(String),
    /// The launch does not fit the kernel (parameters, dimensions).
    #[error("invalid launch: {0}")]
    Launch(String),
    /// A buffer id that this `DeviceMemory` did not allocate.
    #[error("unknown device buffer {0}")]
    UnknownBuffer(u32),
    /// The kernel faulted while running.
    #[error("{kind} at {site}")]
    Fault {
        /// What went wrong.
        kind: FaultKind,
        /// Where.
        site: Site,
    },
    /// The GPU or its driver failed: no libcuda, no device, a PTX the driver rejects, or a kernel
    /// that faulted on the device (after which the CUDA context is unusable).
    #[error("CUDA: {0}")]
    Device(String),
    /// Threads of a block wait at different barriers, or some at a barrier while others cannot
    /// reach it.
    #[error("divergent barrier in block ({},{},{}): {detail}", block[0], block[1], block[2])]
    DivergentBarrier {
        /// The block.
        block: [u32; 3],
        /// Which lines the threads wait at.
        detail: String,
    },
}
