//! The PTX interpreter: runs a whole grid on the CPU, standing in for a GPU.
//!
//! Execution model (see `docs/ORACLE.md`, "Execution model"): blocks run one after another in
//! `%ctaid` order (x fastest); inside a block each thread runs until it exits or reaches
//! `bar.sync 0`, in `%tid` order, and when every thread has stopped the barrier is released if all
//! non-exited threads wait at the same `bar.sync`. Memory is the caller's [`DeviceMemory`] plus
//! zero-filled shared memory per block.
//!
//! The interpreter must never panic and never return a value that the PTX ISA leaves
//! unspecified: such cases are errors naming the PTX line and thread.

mod decode;
mod exec;
mod float;

use crate::backend::{Backend, Launch, LaunchStats, check_dims, encode_params};
use crate::error::{Error, Result};
use crate::memory::DeviceMemory;
use crate::ptx::{PtxModule, parse_module};
use decode::{DecodeOptions, Kernel, decode};
use exec::{BlockCtx, Thread, ThreadState};

/// Default instructions per thread before a launch fails with a step-limit fault.
pub const DEFAULT_STEP_LIMIT: u64 = 10_000_000;

/// The CPU backend.
#[derive(Debug, Clone)]
pub struct Interpreter {
    step_limit: u64,
    allow_implicit_rounding: bool,
}

impl Default for Interpreter {
    fn default() -> Self {
        Self::new()
    }
}

impl Interpreter {
    /// An interpreter with the default step limit that rejects float `add/sub/mul` without an
    /// explicit rounding modifier.
    pub fn new() -> Self {
        Interpreter {
            step_limit: DEFAULT_STEP_LIMIT,
            allow_implicit_rounding: false,
        }
    }

    /// Sets the instructions-per-thread limit.
    pub fn with_step_limit(mut self, limit: u64) -> Self {
        self.step_limit = limit;
        self
    }

    /// Treats float `add/sub/mul` without a rounding modifier as `.rn`. Off by default, because
    /// ptxas may contract such a `mul`/`add` pair into one fma (PTX ISA 9.7.3.3, add, Notes).
    pub fn allow_implicit_rounding(mut self, allow: bool) -> Self {
        self.allow_implicit_rounding = allow;
        self
    }

    /// The configured step limit.
    pub fn step_limit(&self) -> u64 {
        self.step_limit
    }

    /// Checks that every instruction of `entry` is in the supported subset, without running it.
    pub fn check(&self, module: &PtxModule, entry: &str) -> Result<()> {
        self.kernel(module, entry).map(|_| ())
    }

    fn kernel(&self, module: &PtxModule, entry: &str) -> Result<Kernel> {
        let e = module
            .entry(entry)
            .ok_or_else(|| Error::UnknownEntry(entry.to_string()))?;
        decode(
            e,
            DecodeOptions {
                allow_implicit_rounding: self.allow_implicit_rounding,
            },
        )
    }

    /// Runs an already parsed module.
    pub fn launch_module(
        &self,
        module: &PtxModule,
        entry: &str,
        launch: &Launch,
        mem: &mut DeviceMemory,
    ) -> Result<LaunchStats> {
        let kernel = self.kernel(module, entry)?;
        check_dims(launch)?;
        if let Some(req) = kernel.reqntid
            && req != launch.block
        {
            return Err(Error::Launch(format!(
                "block {:?} but the kernel declares `.reqntid {}, {}, {}`",
                launch.block, req[0], req[1], req[2]
            )));
        }
        let params = param_bytes(&kernel, launch, mem)?;
        let mut stats = LaunchStats::default();
        let [gx, gy, gz] = launch.grid;
        let [bx, by, bz] = launch.block;
        let mut shared = vec![0u8; usize::try_from(kernel.shared_bytes).unwrap_or(0)];
        // One set of threads for the whole launch, restarted for each block.
        let mut threads = Vec::new();
        if gx > 0 && gy > 0 && gz > 0 {
            threads.reserve((bx * by * bz) as usize);
            for tz in 0..bz {
                for ty in 0..by {
                    for tx in 0..bx {
                        threads.push(Thread::new(kernel.reg_types.len(), [tx, ty, tz]));
                    }
                }
            }
        }
        let mut first = true;
        for cz in 0..gz {
            for cy in 0..gy {
                for cx in 0..gx {
                    shared.fill(0);
                    if !first {
                        threads.iter_mut().for_each(Thread::restart);
                    }
                    first = false;
                    let mut ctx = BlockCtx {
                        kernel: &kernel,
                        mem,
                        shared: &mut shared,
                        params: &params,
                        ctaid: [cx, cy, cz],
                        ntid: launch.block,
                        nctaid: launch.grid,
                        step_limit: self.step_limit,
                        executed: 0,
                    };
                    stats.barriers += run_block(&mut ctx, &mut threads)?;
                    stats.instructions += ctx.executed;
                    stats.blocks += 1;
                    stats.threads += threads.len() as u64;
                }
            }
        }
        Ok(stats)
    }
}

impl Backend for Interpreter {
    fn name(&self) -> &str {
        "interpreter"
    }

    fn launch(
        &mut self,
        module_ptx: &str,
        entry: &str,
        launch: &Launch,
        mem: &mut DeviceMemory,
    ) -> Result<LaunchStats> {
        let module = parse_module(module_ptx)?;
        self.launch_module(&module, entry, launch, mem)
    }
}

/// Runs one block to completion; returns the number of barrier releases.
fn run_block(ctx: &mut BlockCtx<'_>, threads: &mut [Thread]) -> Result<u64> {
    let mut releases = 0;
    loop {
        for t in threads.iter_mut() {
            if t.state == ThreadState::Running {
                ctx.run(t)?;
            }
        }
        let mut waiting: Vec<(usize, [u32; 3])> = Vec::new();
        for t in threads.iter() {
            if let ThreadState::AtBarrier(pc) = t.state {
                waiting.push((pc, t.tid));
            }
        }
        let Some(&(first, _)) = waiting.first() else {
            return Ok(releases);
        };
        if let Some(&(other, tid)) = waiting.iter().find(|(pc, _)| *pc != first) {
            let line = |pc: usize| ctx.kernel.insts.get(pc).map_or(0, |i| i.line);
            let (t0, _) = waiting[0];
            let tid0 = waiting[0].1;
            return Err(Error::DivergentBarrier {
                block: ctx.ctaid,
                detail: format!(
                    "thread ({},{},{}) waits at line {} but thread ({},{},{}) at line {}",
                    tid0[0],
                    tid0[1],
                    tid0[2],
                    line(t0),
                    tid[0],
                    tid[1],
                    tid[2],
                    line(other)
                ),
            });
        }
        for t in threads.iter_mut() {
            if matches!(t.state, ThreadState::AtBarrier(_)) {
                t.state = ThreadState::Running;
            }
        }
        releases += 1;
    }
}

fn param_bytes(kernel: &Kernel, launch: &Launch, mem: &DeviceMemory) -> Result<Vec<u8>> {
    let values = encode_params(
        kernel.params.iter().map(|p| (p.name.as_str(), p.ty)),
        launch,
        &|id| mem.address(id),
    )?;
    let mut out = vec![0u8; usize::try_from(kernel.param_bytes).unwrap_or(0)];
    for (i, (slot, bytes)) in kernel.params.iter().zip(values).enumerate() {
        let off = slot.offset as usize;
        match out.get_mut(off..off + bytes.len()) {
            Some(dst) => dst.copy_from_slice(&bytes),
            None => {
                return Err(Error::Launch(format!(
                    "parameter {} does not fit the parameter buffer",
                    i + 1
                )));
            }
        }
    }
    Ok(out)
}
