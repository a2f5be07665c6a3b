//! The contract every kernel runner implements: the PTX interpreter here, and a CUDA runner
//! later. Tests are written once against [`Backend`] and run on each implementation.
//!
//! This module holds only the launch description and the trait; it must never depend on how a
//! backend executes PTX.

use crate::error::Result;
use crate::memory::{BufferId, DeviceMemory};

/// Something that runs a PTX kernel over device memory.
pub trait Backend {
    /// A short name for reports (`"interpreter"`, `"cuda"`).
    fn name(&self) -> &str;
    /// Runs `entry` of `module_ptx` over `mem` and returns statistics.
    fn launch(
        &mut self,
        module_ptx: &str,
        entry: &str,
        launch: &Launch,
        mem: &mut DeviceMemory,
    ) -> Result<LaunchStats>;
}

/// Grid and block dimensions and parameter values of one launch.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// Blocks in x, y, z.
    pub grid: [u32; 3],
    /// Threads per block in x, y, z.
    pub block: [u32; 3],
    /// One value per kernel parameter, in order.
    pub params: Vec<ParamValue>,
}

/// A kernel parameter value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamValue {
    /// For `.u32`/`.b32`/`.s32` parameters.
    U32(u32),
    /// For `.u64`/`.b64`/`.s64` parameters.
    U64(u64),
    /// For `.s32`/`.u32`/`.b32` parameters.
    S32(i32),
    /// For `.s64`/`.u64`/`.b64` parameters.
    S64(i64),
    /// For `.f32`/`.b32` parameters.
    F32(f32),
    /// For `.f64`/`.b64` parameters.
    F64(f64),
    /// A buffer, passed as its device address to a 64-bit integer parameter.
    Ptr(BufferId),
}

/// What a launch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LaunchStats {
    /// Blocks run.
    pub blocks: u64,
    /// Threads run (all blocks).
    pub threads: u64,
    /// Instructions executed by all threads (guarded-off ones included).
    pub instructions: u64,
    /// Barrier releases (all blocks).
    pub barriers: u64,
}
