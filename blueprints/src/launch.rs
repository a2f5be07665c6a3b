//! Launch plans: how the host launches a kernel.
//!
//! A [`LaunchPlan`] says which param carries each grid dimension's trip count, the block shape,
//! the buffers the kernel reads and writes, and the trap flag. The host turns trip counts into
//! grid dimensions with [`LaunchPlan::grid_dims`] and copies buffers by their [`Access`].
//! This module computes no memory ranges (the compiler's guard does) and never launches anything.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernel_ir::{Kernel, MemOp, ParamId, mem_ops, verify};

/// How a kernel uses a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    /// Only loaded.
    In,
    /// Only stored. The host still copies the range in unless it proves every byte of the
    /// range is written, because it copies the whole range back out.
    Out,
    /// Loaded and stored.
    InOut,
}

/// One buffer of a launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BufferUse {
    /// The pointer param.
    pub param: ParamId,
    /// How the kernel uses it.
    pub access: Access,
}

/// How to launch one kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchPlan {
    /// The kernel's entry name.
    pub kernel: String,
    /// Threads per block along x, y, z.
    pub block: [u32; 3],
    /// Per grid dimension (x, y, z in order), the param holding its trip count.
    pub trips: Vec<ParamId>,
    /// The pointer params the kernel accesses, in param order.
    pub buffers: Vec<BufferUse>,
    /// The `u32` trap flag param, if the kernel has one. The host zeroes it before the launch
    /// and declines the dispatch (writing nothing back) when it is non-zero afterwards.
    pub trap_flag: Option<ParamId>,
}

/// CUDA's limit on threads per block.
pub const MAX_THREADS_PER_BLOCK: u32 = 1024;

impl LaunchPlan {
    /// The default block shape for a grid of `dims` dimensions: 256 threads.
    pub fn default_block(dims: usize) -> [u32; 3] {
        match dims {
            0 | 1 => [256, 1, 1],
            2 => [32, 8, 1],
            _ => [16, 4, 4],
        }
    }

    /// The plan for `kernel` (verified first), with `block` or else the block shape its
    /// blueprint requires (see [`crate::blueprint::choose`]; PTX from
    /// [`crate::emit_ptx`] declares it with `.reqntid`) or else the default one.
    pub fn for_kernel(kernel: &Kernel, block: Option<[u32; 3]>) -> Result<LaunchPlan> {
        verify(kernel)?;
        let block = block
            .or_else(|| crate::blueprint::choose(kernel).block())
            .unwrap_or_else(|| Self::default_block(kernel.grid.len()));
        let threads = block.iter().try_fold(1u32, |acc, b| acc.checked_mul(*b));
        if block.contains(&0) || block[2] > 64 || threads.is_none_or(|t| t > MAX_THREADS_PER_BLOCK)
        {
            return Err(Error::ImplLimit(format!(
                "block {block:?} is not a valid CUDA block shape"
            )));
        }
        let mut uses: Vec<(ParamId, bool, bool)> = Vec::new();
        for op in mem_ops(&kernel.body) {
            let store = matches!(op, MemOp::Store(..));
            match uses.iter_mut().find(|u| u.0 == op.addr().base) {
                Some(u) if store => u.2 = true,
                Some(u) => u.1 = true,
                None => uses.push((op.addr().base, !store, store)),
            }
        }
        uses.sort_by_key(|u| u.0);
        let buffers = uses
            .into_iter()
            .map(|(param, load, store)| BufferUse {
                param,
                access: match (load, store) {
                    (true, true) => Access::InOut,
                    (false, true) => Access::Out,
                    _ => Access::In,
                },
            })
            .collect();
        Ok(LaunchPlan {
            kernel: kernel.name.clone(),
            block,
            trips: kernel.grid.iter().map(|g| g.trip).collect(),
            buffers,
            trap_flag: kernel.trap_flag,
        })
    }

    /// Grid dimensions (blocks along x, y, z) for the given trip counts, one per dimension.
    /// Fails with `ImplLimit` when a dimension needs more blocks than CUDA allows (the host then
    /// declines and the CPU loop runs).
    pub fn grid_dims(&self, trips: &[u64]) -> Result<[u32; 3]> {
        if trips.len() != self.trips.len() {
            return Err(Error::Bug(format!(
                "{} trip counts for a {}-dimensional grid",
                trips.len(),
                self.trips.len()
            )));
        }
        let mut grid = [1u32; 3];
        for (i, (&trip, limit)) in trips.iter().zip([0x7FFF_FFFFu64, 65535, 65535]).enumerate() {
            let blocks = trip.div_ceil(u64::from(self.block[i]));
            if blocks > limit {
                return Err(Error::ImplLimit(format!(
                    "grid dimension {i} needs {blocks} blocks (at most {limit})"
                )));
            }
            grid[i] = blocks.max(1) as u32;
        }
        Ok(grid)
    }
}
