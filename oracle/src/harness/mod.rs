//! The differential harness: a Wasm reference function against a PTX kernel, on generated
//! inputs, with shrunk counterexamples.
//!
//! ```text
//! Plan + seed ──gen──► Case (sizes, scalars, buffer placements and lanes, background bytes)
//!                        │ image
//!        ┌───────────────┴────────────────┐
//!   Reference::run(memory, args)     DeviceMemory ← each buffer's bytes; Backend::launch;
//!   (Wasmtime in the compiler)       trap flag set? declined : copy buffers back
//!        └──────────────┬─────────────────┘
//!                  run::compare → crate::compare (exact; NaN = NaN only in float lanes)
//!                        │ first failure
//!                  shrink ──► Counterexample in the Report, with the case seed to replay
//! ```
//!
//! [`check`] is the one entry point: the compiler calls it for each detected kernel (plan built
//! from the kernel's launch plan) and `tensorwasm oracle` for hand-written ones (plan read from
//! TOML). The harness never panics on a plan, a kernel or a reference; problems that are not
//! counterexamples come back as [`HarnessError`].

mod expr;
mod inputs;
mod plan;
mod reference;
mod report;
mod run;
mod shrink;

pub use expr::SizeExpr;
pub use inputs::{Floats, Rng, case_seed, f32_bits, f32_plain, f64_bits, f64_plain, int_bits};
pub use plan::{Addressing, ElemType, KernelArg, ParamKind, Plan, PlanParam, WasmType};
pub use reference::{Outcome, Reference, WasmValue};
pub use report::{ArgDump, BufferDump, Counterexample, Failure, Mismatch, Report, Verdict};
pub use shrink::{shrink_size, toward as shrink_toward};

use crate::backend::Backend;
use crate::interp::Interpreter;
use crate::ptx::parse_module;
use inputs::{ArgInput, Case, generate};
use run::{Runner, show_lane};

/// Cases per check unless told otherwise: keeps the sample kernels' oracle step under a few
/// seconds on the interpreter (docs/PERFORMANCE.md, "Oracle throughput").
pub const DEFAULT_CASES: u32 = 1000;

/// Candidate runs the shrinker may spend on one counterexample.
pub const DEFAULT_SHRINK_RUNS: u32 = 2000;

/// The kernel under test.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The PTX module text.
    pub ptx: &'a str,
    /// The `.entry` to launch.
    pub entry: &'a str,
}

/// How many cases, from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Cases to run (the check stops at the first failure).
    pub cases: u32,
    /// Run seed; case 0 uses it directly, so a counterexample's case seed replays it first.
    pub seed: u64,
    /// Shrinking budget in candidate runs.
    pub max_shrink_runs: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cases: DEFAULT_CASES,
            seed: 0,
            max_shrink_runs: DEFAULT_SHRINK_RUNS,
        }
    }
}

/// Why a check could not be carried out (as opposed to a counterexample).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HarnessError {
    /// The plan does not fit the reference or the kernel, or cannot be evaluated.
    #[error("plan: {0}")]
    Plan(String),
    /// The PTX does not parse, has no such entry, is outside the supported subset, or the
    /// launch is invalid.
    #[error("kernel: {0}")]
    Kernel(crate::Error),
    /// The reference failed for a reason other than a Wasm trap.
    #[error("reference: {0}")]
    Reference(String),
}

/// Runs up to `config.cases` generated cases of `plan` through `reference` and `candidate` on
/// `backend`; stops at the first failing case and shrinks it.
///
/// Before any case runs, the PTX is parsed and decoded (it must be in the interpreter's subset,
/// docs/ORACLE.md), and the plan is checked against the reference's parameter types and the
/// kernel's parameters.
pub fn check(
    reference: &mut dyn Reference,
    backend: &mut dyn Backend,
    candidate: Candidate<'_>,
    plan: &Plan,
    config: &Config,
) -> Result<Report, HarnessError> {
    let module = parse_module(candidate.ptx).map_err(HarnessError::Kernel)?;
    Interpreter::new()
        .check(&module, candidate.entry)
        .map_err(HarnessError::Kernel)?;
    let entry = module
        .entry(candidate.entry)
        .ok_or_else(|| HarnessError::Kernel(crate::Error::UnknownEntry(candidate.entry.into())))?;
    check_reference_types(reference, plan)?;
    let memory_size = reference.memory_size();
    let arena = plan
        .arena()
        .map_or(memory_size as u64, |a| a.min(memory_size as u64));
    let mut report = Report {
        kernel: candidate.entry.to_string(),
        backend: backend.name().to_string(),
        reference: reference.name().to_string(),
        seed: config.seed,
        cases: config.cases,
        cases_run: 0,
        traps: 0,
        empty_launches: 0,
        instructions: 0,
        verdict: Verdict::Pass,
    };
    let mut runner = Runner {
        plan,
        ptx: candidate.ptx,
        entry: candidate.entry,
        param_types: entry
            .params
            .iter()
            .map(|p| (p.name.clone(), p.ty))
            .collect(),
        memory_size,
        reference,
        backend,
    };
    runner.check_args()?;
    for index in 0..config.cases {
        let seed = case_seed(config.seed, index);
        let case = draw(plan, arena, seed)?;
        report.cases_run += 1;
        match runner.run(&case)? {
            Ok(passed) => {
                report.traps += u32::from(passed.trapped);
                report.empty_launches += u32::from(!passed.launched);
                report.instructions += passed.instructions;
            }
            Err(failure) => {
                let mut shrinker = shrink::Shrinker {
                    plan,
                    arena,
                    budget: config.max_shrink_runs,
                    runs: 0,
                    best: case,
                    failure,
                };
                shrinker.run(&mut |c: &Case| Ok(runner.run(c)?.err()))?;
                report.verdict = Verdict::Fail(Box::new(counterexample(
                    plan,
                    index,
                    seed,
                    shrinker.runs,
                    &shrinker.best,
                    shrinker.failure,
                )));
                break;
            }
        }
    }
    Ok(report)
}

/// Draws the case of `seed`: retries with the next draws of the same generator when the sizes
/// need more memory than the arena has.
fn draw(plan: &Plan, arena: u64, seed: u64) -> Result<Case, HarnessError> {
    let mut rng = Rng::new(seed);
    for _ in 0..100 {
        if let Some(case) = generate(plan, arena, &mut rng).map_err(HarnessError::Plan)? {
            return Ok(case);
        }
    }
    Err(HarnessError::Plan(format!(
        "the buffers do not fit in {arena} bytes of memory for most sizes drawn; lower the \
         sizes' max or use a larger memory"
    )))
}

fn check_reference_types(reference: &dyn Reference, plan: &Plan) -> Result<(), HarnessError> {
    let types = reference.param_types();
    if types.len() != plan.params().len() {
        return Err(HarnessError::Plan(format!(
            "param: {} parameters, but the reference function takes {}",
            plan.params().len(),
            types.len()
        )));
    }
    for (i, (p, t)) in plan.params().iter().zip(&types).enumerate() {
        if p.ty != *t {
            return Err(HarnessError::Plan(format!(
                "param[{i}].type: `{}` is {} in the plan but {} in the reference function",
                p.name,
                p.ty.name(),
                t.name()
            )));
        }
    }
    Ok(())
}

const MAX_DUMP_LANES: usize = 64;

fn counterexample(
    plan: &Plan,
    case_index: u32,
    case_seed: u64,
    shrink_runs: u32,
    case: &Case,
    failure: Failure,
) -> Counterexample {
    let mut args = Vec::new();
    let mut buffers = Vec::new();
    for (p, a) in plan.params().iter().zip(&case.args) {
        let (kind, value) = match a {
            ArgInput::Size(v) => ("size", v.to_string()),
            ArgInput::Scalar(v) => ("scalar", v.show()),
            ArgInput::Buffer { addr, lanes } => {
                if let ParamKind::Buffer { elem, .. } = p.kind {
                    buffers.push(BufferDump {
                        name: p.name.clone(),
                        elem: elem.name(),
                        addr: *addr,
                        len: lanes.len() as u64,
                        lanes: lanes
                            .iter()
                            .take(MAX_DUMP_LANES)
                            .map(|l| show_lane(Some(elem), *l))
                            .collect(),
                    });
                }
                ("buffer", format!("{addr:#x}"))
            }
        };
        args.push(ArgDump {
            name: p.name.clone(),
            kind,
            value,
        });
    }
    Counterexample {
        case_index,
        case_seed,
        shrink_runs,
        args,
        buffers,
        random_background: case.background != 0,
        failure,
    }
}
