//! The contract every kernel runner implements: the PTX interpreter here, and a CUDA runner
//! later. Tests are written once against [`Backend`] and run on each implementation.
//!
//! This module holds only the launch description and the trait; it must never depend on how a
//! backend executes PTX.

use crate::error::{Error, Result};
use crate::memory::{BufferId, DeviceMemory};
use crate::ptx::ScalarType;

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
    /// A buffer's device address plus a byte offset (wrapping), for kernels that index a buffer
    /// with addresses of their own, e.g. Wasm addresses into a window of linear memory that
    /// starts at Wasm address `-offset`.
    PtrOffset(BufferId, i64),
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
    /// Nanoseconds the kernel ran on a GPU, measured with CUDA events; 0 where the backend does
    /// not measure it (the interpreter counts `instructions` instead).
    pub gpu_ns: u64,
}

/// Checks grid and block dimensions against the limits every CUDA device shares.
pub(crate) fn check_dims(launch: &Launch) -> Result<()> {
    let [gx, gy, gz] = launch.grid;
    let [bx, by, bz] = launch.block;
    if launch.grid.contains(&0) || launch.block.contains(&0) {
        return Err(Error::Launch(format!(
            "zero dimension in grid {:?} or block {:?}",
            launch.grid, launch.block
        )));
    }
    if bx > 1024 || by > 1024 || bz > 64 || u64::from(bx) * u64::from(by) * u64::from(bz) > 1024 {
        return Err(Error::Launch(format!(
            "block {:?} exceeds 1024 threads (x, y <= 1024, z <= 64)",
            launch.block
        )));
    }
    if gx > i32::MAX as u32 || gy > 65535 || gz > 65535 {
        return Err(Error::Launch(format!(
            "grid {:?} exceeds (2^31-1, 65535, 65535)",
            launch.grid
        )));
    }
    Ok(())
}

/// The little-endian bytes of each parameter of an entry declared with `params` (name, type),
/// with buffers resolved to device addresses by `address`. Every backend encodes parameters
/// here, so a launch that one backend accepts, every backend accepts.
pub(crate) fn encode_params<'a>(
    params: impl ExactSizeIterator<Item = (&'a str, ScalarType)>,
    launch: &Launch,
    address: &dyn Fn(BufferId) -> Result<u64>,
) -> Result<Vec<Vec<u8>>> {
    if params.len() != launch.params.len() {
        return Err(Error::Launch(format!(
            "kernel takes {} parameters, launch gives {}",
            params.len(),
            launch.params.len()
        )));
    }
    params
        .zip(&launch.params)
        .enumerate()
        .map(|(i, ((name, ty), v))| encode_param(i, name, ty, v, address))
        .collect()
}

/// The bytes of parameter `i` (0-based), `name` of type `ty`.
fn encode_param(
    i: usize,
    name: &str,
    ty: ScalarType,
    v: &ParamValue,
    address: &dyn Fn(BufferId) -> Result<u64>,
) -> Result<Vec<u8>> {
    let int32 = ty.is_int() && ty.bits() == 32;
    let int64 = ty.is_int() && ty.bits() == 64;
    let bytes: Option<Vec<u8>> = match *v {
        ParamValue::U32(x) if int32 => Some(x.to_le_bytes().to_vec()),
        ParamValue::S32(x) if int32 => Some(x.to_le_bytes().to_vec()),
        ParamValue::U64(x) if int64 => Some(x.to_le_bytes().to_vec()),
        ParamValue::S64(x) if int64 => Some(x.to_le_bytes().to_vec()),
        ParamValue::F32(x) if ty == ScalarType::F32 || ty == ScalarType::B32 => {
            Some(x.to_bits().to_le_bytes().to_vec())
        }
        ParamValue::F64(x) if ty == ScalarType::F64 || ty == ScalarType::B64 => {
            Some(x.to_bits().to_le_bytes().to_vec())
        }
        ParamValue::Ptr(id) if int64 => Some(address(id)?.to_le_bytes().to_vec()),
        ParamValue::PtrOffset(id, off) if int64 => {
            Some(address(id)?.wrapping_add_signed(off).to_le_bytes().to_vec())
        }
        _ => None,
    };
    bytes.ok_or_else(|| {
        Error::Launch(format!(
            "parameter {} `{name}` has type {ty} but the launch gives {v:?}",
            i + 1
        ))
    })
}
