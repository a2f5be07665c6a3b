//! What a differential check found: [`Report`] (cases, backend, seed, verdict) and, on failure,
//! the shrunk [`Counterexample`]. Reports serialize to JSON (for `--json` and, later, bundle
//! manifests) and print as text.

use std::fmt;

use serde::Serialize;

/// The result of [`check`](super::check).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The kernel's entry name.
    pub kernel: String,
    /// The backend that ran the kernel (`"interpreter"`, `"cuda"`).
    pub backend: String,
    /// The reference that ran the Wasm function (`"wasmtime"`).
    pub reference: String,
    /// The run seed.
    pub seed: u64,
    /// Cases asked for.
    pub cases: u32,
    /// Cases run before the verdict (all of them on a pass).
    pub cases_run: u32,
    /// Cases where the CPU trapped and the kernel raised its trap flag.
    pub traps: u32,
    /// Cases whose grid had a zero dimension, so nothing was launched.
    pub empty_launches: u32,
    /// Thread-instructions the backend executed (0 when it does not count them).
    pub instructions: u64,
    /// Pass, or the counterexample.
    pub verdict: Verdict,
}

impl Report {
    /// True when every case passed.
    pub fn passed(&self) -> bool {
        matches!(self.verdict, Verdict::Pass)
    }
}

/// Pass or fail.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Verdict {
    /// Every case matched.
    Pass,
    /// A case did not match; shrunk.
    Fail(Box<Counterexample>),
}

/// A minimal failing input and what went wrong on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counterexample {
    /// Index of the failing case in the run.
    pub case_index: u32,
    /// Seed of the failing case: a run with this seed replays it as its first case.
    pub case_seed: u64,
    /// Candidate inputs tried while shrinking.
    pub shrink_runs: u32,
    /// The reference function's arguments after shrinking, in order.
    pub args: Vec<ArgDump>,
    /// The buffers' contents before the run.
    pub buffers: Vec<BufferDump>,
    /// Whether the bytes outside the buffers were random (`false`: all zero).
    pub random_background: bool,
    /// What went wrong.
    pub failure: Failure,
}

/// One argument of the reference call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArgDump {
    /// Parameter name.
    pub name: String,
    /// `size`, `scalar` or `buffer`.
    pub kind: &'static str,
    /// The value (a buffer's Wasm address).
    pub value: String,
}

/// One buffer's input contents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BufferDump {
    /// Parameter name.
    pub name: String,
    /// Element type.
    pub elem: &'static str,
    /// Wasm address of element 0.
    pub addr: u64,
    /// Number of elements.
    pub len: u64,
    /// The first elements, printed (at most 64).
    pub lanes: Vec<String>,
}

/// Why a case failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// Both returned, and memory differs.
    Mismatch(Box<Mismatch>),
    /// The CPU trapped; the kernel finished without raising its trap flag.
    MissingTrap {
        /// The CPU's trap.
        cpu_trap: String,
    },
    /// The kernel raised its trap flag; the CPU returned normally.
    SpuriousTrap,
    /// The kernel faulted on the backend (out-of-bounds access, division by zero, step limit,
    /// divergent barrier).
    KernelFault {
        /// The backend's error, with the PTX line.
        error: String,
        /// The CPU's outcome on the same input.
        cpu: String,
    },
}

/// The first differing lane of memory, in address order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// `y[3]` (buffer and element index) or `memory[0x1234]` outside every buffer.
    pub location: String,
    /// Wasm address of the lane.
    pub addr: u64,
    /// The lane's type (`f32`, `i32`, `u8` for bytes outside buffers).
    pub elem: &'static str,
    /// The CPU's value.
    pub expected: String,
    /// The kernel's value.
    pub actual: String,
    /// The CPU's bytes, hex, memory order.
    pub expected_bytes: String,
    /// The kernel's bytes.
    pub actual_bytes: String,
    /// How many lanes differ in all (buffers' elements plus loose bytes).
    pub differing_lanes: u64,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Mismatch(m) => write!(
                f,
                "memory differs at {} (address {:#x}, {}): expected {} [{}], kernel wrote {} \
                 [{}]; {} differing lane{} in all",
                m.location,
                m.addr,
                m.elem,
                m.expected,
                m.expected_bytes,
                m.actual,
                m.actual_bytes,
                m.differing_lanes,
                if m.differing_lanes == 1 { "" } else { "s" }
            ),
            Failure::MissingTrap { cpu_trap } => write!(
                f,
                "the CPU trapped ({cpu_trap}) but the kernel did not raise its trap flag"
            ),
            Failure::SpuriousTrap => write!(
                f,
                "the kernel raised its trap flag but the CPU returned without trapping"
            ),
            Failure::KernelFault { error, cpu } => {
                write!(f, "the kernel faulted: {error} (the CPU {cpu})")
            }
        }
    }
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "counterexample (case {}, shrunk in {} runs):",
            self.case_index, self.shrink_runs
        )?;
        writeln!(f, "  {}", self.failure)?;
        writeln!(f, "  arguments:")?;
        for a in &self.args {
            writeln!(f, "    {} = {} ({})", a.name, a.value, a.kind)?;
        }
        for b in &self.buffers {
            let more = if (b.lanes.len() as u64) < b.len {
                ", ..."
            } else {
                ""
            };
            writeln!(
                f,
                "    {}: {} x {} at {:#x} = [{}{more}]",
                b.name,
                b.len,
                b.elem,
                b.addr,
                b.lanes.join(", ")
            )?;
        }
        write!(
            f,
            "  memory outside the buffers: {}",
            if self.random_background {
                "random bytes"
            } else {
                "zero"
            }
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let result = if self.passed() { "PASS" } else { "FAIL" };
        writeln!(
            f,
            "{result}: kernel `{}` against the {} reference on the {} backend",
            self.kernel, self.reference, self.backend
        )?;
        writeln!(
            f,
            "  cases: {} of {} (CPU traps matched: {}, empty grids: {}), thread-instructions: {}, \
             seed: {:#x}",
            self.cases_run,
            self.cases,
            self.traps,
            self.empty_launches,
            self.instructions,
            self.seed
        )?;
        if let Verdict::Fail(c) = &self.verdict {
            writeln!(f, "{c}")?;
            write!(f, "  replay: --seed {:#x}", c.case_seed)?;
        }
        Ok(())
    }
}
