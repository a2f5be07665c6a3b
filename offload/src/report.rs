//! What the build reports for each offloadable nest: whether its kernel ships, the blueprint,
//! the oracle's verdict ([`NestReport`]) and the cubins. The oracle itself runs in the
//! `tensorwasm` crate, which links Wasmtime for its reference; its report and budgets are
//! plain data and live here, beside the build report that carries them.

use std::collections::BTreeMap;

use serde::Serialize;

/// Loop iterations (summed over the cases that ran the kernel) after which the oracle stops
/// early, so that a nest with large constant trip counts does not hold a build for minutes.
/// Deterministic (a count, not a time), so a rebuild gives the same report.
pub const ITERATION_BUDGET: i128 = 4_000_000;

/// Interpreter thread-instructions (summed over cases, counted in chunks of [`CHUNK`] cases)
/// after which the build's oracle stops early: what a kernel costs the interpreter per
/// iteration varies (a tiled kernel's 16 × 16 blocks fill shared tiles and wait at barriers),
/// and this bounds that time the way [`ITERATION_BUDGET`] bounds the loop iterations. Also a
/// count, so a rebuild gives the same report.
pub const INSTRUCTION_BUDGET: u64 = 300_000_000;

/// The least share of its cases in which the oracle must have run a kernel (the rest declined
/// by the host, and compared as the CPU loop against itself) for the build to ship it: half.
/// Below it the kernel stays on the CPU, named "weakly checked" in the build's report. The
/// oracle builds its inputs to meet the host's checks, so a kernel below the floor is one
/// whose conditions it cannot meet, and so cannot claim to have checked.
pub const MIN_RAN_SHARE: (u32, u32) = (1, 2);

/// The fewest cases that must have run a kernel for the build to ship it, when at least twice
/// as many were asked for (`--oracle-cases`; fewer asked, half of them): a kernel whose budget
/// stopped it early, or whose inputs the host mostly declines, is weakly checked below it.
pub const MIN_RAN_CASES: u32 = 100;

/// The oracle's verdict on one kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NestReport {
    /// The kernel.
    pub kernel: String,
    /// Cases run.
    pub cases: u32,
    /// Cases in which the kernel ran (the rest the host declined, checked too).
    pub dispatched: u32,
    /// Cases the host declined, by reason.
    pub declined: BTreeMap<String, u32>,
    /// Cases where the CPU loop ran out of fuel (not compared).
    pub inconclusive: u32,
    /// Whether the run stopped before its case count because the cases' loop iterations
    /// reached [`ITERATION_BUDGET`] or their thread-instructions [`INSTRUCTION_BUDGET`].
    pub budget_exhausted: bool,
    /// Thread-instructions the interpreter ran for the kernel, over every case.
    pub instructions: u64,
    /// The backend the kernel ran on.
    pub backend: String,
    /// The run's seed (`--oracle-seed` replays it).
    pub seed: u64,
    /// The most grid threads of one case that ran the kernel.
    pub largest_grid: u64,
    /// The first failure, shrunk.
    pub failure: Option<NestFailure>,
}

/// A counterexample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NestFailure {
    /// The seed of the failing case (as `--oracle-seed`, it runs first).
    pub case_seed: u64,
    /// The nest's locals on entry, `l0=…`, after shrinking.
    pub locals: String,
    /// What differed.
    pub what: String,
}

impl NestReport {
    /// Whether the kernel ran in fewer than [`MIN_RAN_SHARE`] of its cases, or in fewer than
    /// [`MIN_RAN_CASES`] (half of `asked`, the cases asked for, when that is less).
    pub fn weakly_checked(&self, asked: u32) -> bool {
        let (num, den) = MIN_RAN_SHARE;
        u64::from(self.dispatched) * u64::from(den) < u64::from(self.cases) * u64::from(num)
            || self.dispatched < MIN_RAN_CASES.min(asked / 2)
    }

    /// The evidence the kernel table keeps for a kernel that passed, checked by `tool`.
    pub fn evidence(&self, tool: &str) -> tensorwasm_guard::Evidence {
        tensorwasm_guard::Evidence {
            cases: self.cases,
            dispatched: self.dispatched,
            declined: self.declined.clone(),
            inconclusive: self.inconclusive,
            budget_exhausted: self.budget_exhausted,
            largest_grid: self.largest_grid,
            instructions: self.instructions,
            backend: self.backend.clone(),
            seed: self.seed,
            tool: tool.to_string(),
        }
    }

    /// One line for the build's summary.
    pub fn summary(&self) -> String {
        let mut s = format!("oracle: {}", self.evidence("").summary());
        if self.budget_exhausted {
            s.push_str(&format!(
                "; stopped at its budget ({ITERATION_BUDGET} loop iterations, \
                 {INSTRUCTION_BUDGET} interpreter thread-instructions)"
            ));
        }
        if let Some(f) = &self.failure {
            s.push_str(&format!(
                ": FAILED: {} (case seed {:#x}; {})",
                f.what, f.case_seed, f.locals
            ));
        }
        s
    }
}
