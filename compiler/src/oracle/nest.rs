//! The build's oracle step: every kernel against the loop nest it replaces, on random inputs.
//!
//! The module under test is [`tensorwasm_offload::outline`]'s: the input module plus, per kernel,
//! an exported function that takes every local of the nest's function as a parameter, runs the
//! guard and the nest's loop exactly as the rewritten module does, and returns the live-outs.
//! The *reference* instance links a dispatch host that declines every call, so the original
//! loop runs under Wasmtime; the *candidate* instance links the host on the PTX interpreter with
//! no launch threshold, so the kernel runs whenever the host's checks pass.
//!
//! Each case draws the locals (pointers placed inside memory, sometimes overlapping; small trip
//! counts including 0 and 1; floats and integers biased to NaN, ±0, ±inf, subnormals, extremes
//! and integer edges; locals the analysis found constant on entry keep their constant), fills
//! the bytes the kernel may touch with biased values, runs both, and compares: the same trap or
//! none, the same live-outs, byte-identical memory except that a float lane holding NaN on both
//! sides matches. A kernel that raises its trap flag where the CPU does not trap, or fails on
//! the interpreter, fails too. A failure is shrunk (sizes toward 0) and reported with the seed
//! that replays it; the build then leaves the kernel out of the bundle.

use std::collections::BTreeMap;
use std::sync::Arc;

use tensorwasm_analysis::ir::ValType as WasmTy;
use tensorwasm_guard::{ArgSource, OffloadKernel, OffloadTable, Var};
use tensorwasm_oracle::harness::{Floats, Rng, case_seed, f32_bits, f64_bits, int_bits};
use tensorwasmd::offload::{self, BackendKind, HasOffload, Host, Kernels, OffloadState};

pub use tensorwasm_offload::report::{
    INSTRUCTION_BUDGET, ITERATION_BUDGET, NestFailure, NestReport,
};
use wasmtime::{Engine, InstancePre, Linker, Module, Store, Val};

/// Fuel per run: ends a runaway loop quickly.
const FUEL: u64 = 1 << 26;

/// Most loop iterations (all loops of the nest) of a case the oracle keeps when it redraws.
const MAX_ITERATIONS: i128 = 4096;

/// Cases run together between two checks of [`INSTRUCTION_BUDGET`].
const CHUNK: usize = 64;

/// Draws per case before a case counts as declined (inputs the host refuses are redrawn).
const DRAWS: u32 = 32;

struct State {
    off: OffloadState,
}

impl HasOffload for State {
    fn offload(&mut self) -> &mut OffloadState {
        &mut self.off
    }
}

/// One kernel's test bench.
struct Bench<'a> {
    engine: &'a Engine,
    reference: InstancePre<State>,
    candidate: InstancePre<State>,
    kernel: &'a OffloadKernel,
    /// The kernel's index in the table (its statistics' index).
    index: usize,
    export: String,
    locals: &'a [WasmTy],
    constants: &'a BTreeMap<u32, i64>,
    /// Dispatch arguments that are pointers (a base of some access).
    pointers: Vec<u32>,
    /// Dispatch arguments that scale a stride of some access, with the multiple they must be
    /// for it to stay aligned: drawn mostly as such multiples, as real byte strides are.
    strides: BTreeMap<u32, u32>,
}

/// What one run did.
#[derive(Debug, PartialEq)]
struct Ran {
    /// Live-outs, or the trap.
    result: Result<Vec<u64>, String>,
    memory: Vec<u8>,
    dispatched: bool,
    declined: Option<(&'static str, String)>,
    out_of_fuel: bool,
    /// Thread-instructions the interpreter ran for the kernel.
    instructions: u64,
}

impl Bench<'_> {
    fn run(
        &self,
        candidate: bool,
        params: &[Val],
        fill: &dyn Fn(&mut [u8]),
    ) -> Result<Ran, String> {
        let pre = if candidate {
            &self.candidate
        } else {
            &self.reference
        };
        let mut store = self.store();
        store
            .set_fuel(FUEL)
            .map_err(|e| format!("cannot set fuel: {e}"))?;
        let (inst, mem) = instantiate(pre, &mut store)?;
        fill(mem.data_mut(&mut store));
        let f = inst
            .get_func(&mut store, &self.export)
            .ok_or("the outlined nest is missing")?;
        let mut results = vec![Val::I32(0); self.kernel.live_outs.len()];
        let call = f.call(&mut store, params, &mut results);
        let out_of_fuel = matches!(
            call.as_ref()
                .err()
                .and_then(|e| e.downcast_ref::<wasmtime::Trap>()),
            Some(wasmtime::Trap::OutOfFuel)
        );
        let result = call
            .map(|()| {
                results
                    .iter()
                    .map(|v| match v {
                        Val::I32(x) => *x as u32 as u64,
                        Val::I64(x) => *x as u64,
                        _ => 0,
                    })
                    .collect()
            })
            .map_err(|e| match e.downcast_ref::<wasmtime::Trap>() {
                Some(t) => t.to_string(),
                None => format!("{e:#}"),
            });
        let stats = store
            .data()
            .off
            .stats()
            .get(self.index)
            .cloned()
            .unwrap_or_default();
        Ok(Ran {
            result,
            memory: mem.data(&store).to_vec(),
            dispatched: stats.dispatched > 0,
            declined: stats
                .declined
                .keys()
                .next()
                .map(|r| (*r, stats.last_decline.clone().unwrap_or_default())),
            out_of_fuel,
            instructions: stats.instructions,
        })
    }

    fn store(&self) -> Store<State> {
        Store::new(
            self.engine,
            State {
                off: OffloadState::default(),
            },
        )
    }

    /// The size of the memory the nest sees: the module's memory after instantiation.
    fn memory_len(&self) -> Result<usize, String> {
        let mut store = self.store();
        let (_, mem) = instantiate(&self.reference, &mut store)?;
        Ok(mem.data_size(&store))
    }

    /// The parameters of the outlined nest for a case (`tiny`: sizes below 4).
    fn draw(&self, rng: &mut Rng, memory_len: usize, tiny: bool) -> Vec<Val> {
        let args = &self.kernel.args;
        let mut placed: Vec<u64> = Vec::new();
        self.locals
            .iter()
            .enumerate()
            .map(|(l, ty)| {
                let l = l as u32;
                let konst = self.constants.get(&l).copied();
                let arg = args
                    .iter()
                    .position(|a| a.source == ArgSource::Local(l))
                    .map(|i| i as u32);
                let is_ptr = arg.is_some_and(|i| self.pointers.contains(&i));
                let int = |rng: &mut Rng, bytes: usize| -> u64 {
                    if let Some(c) = konst {
                        return c as u64;
                    }
                    if is_ptr {
                        // Inside memory, 16-byte aligned; sometimes on top of another pointer.
                        if !placed.is_empty() && rng.percent(15) {
                            let p = placed[rng.below(placed.len() as u64) as usize];
                            return p + 4 * rng.below(4);
                        }
                        let p = rng.below(memory_len as u64 / 16) * 16;
                        return p;
                    }
                    let stride = arg.and_then(|i| self.strides.get(&i)).copied();
                    if arg.is_some() {
                        // A size: small, with 0 and 1 often.
                        if tiny {
                            return rng.below(4);
                        }
                        // A size, or a scalar the nest divides by: small, with 0 and 1
                        // often, and sometimes an integer edge (-1, MIN, MAX).
                        let v = match rng.below(10) {
                            0 => 0,
                            1 => 1,
                            2 => 2,
                            3..7 => rng.below(40),
                            7 => int_bits(rng, bytes),
                            _ => rng.below(300),
                        };
                        // A byte stride: mostly a multiple of the access width, as real ones
                        // are (a misaligned one, which the host declines, one draw in eight).
                        return match stride {
                            Some(w) if rng.percent(88) => v - v % u64::from(w.max(1)),
                            _ => v,
                        };
                    }
                    int_bits(rng, bytes)
                };
                match ty {
                    WasmTy::I32 => {
                        let v = int(rng, 4);
                        if is_ptr {
                            placed.push(v);
                        }
                        Val::I32(v as u32 as i32)
                    }
                    WasmTy::I64 => {
                        let v = int(rng, 8);
                        if is_ptr {
                            placed.push(v);
                        }
                        Val::I64(v as i64)
                    }
                    WasmTy::F32 => Val::F32(f32_bits(rng)),
                    WasmTy::F64 => Val::F64(f64_bits(rng)),
                    _ => Val::I32(0),
                }
            })
            .collect()
    }

    /// The dispatch arguments for the outlined function's parameters.
    fn dispatch_args(&self, params: &[Val]) -> Vec<Val> {
        self.kernel
            .args
            .iter()
            .map(|a| match a.source {
                ArgSource::Local(l) => params.get(l as usize).cloned().unwrap_or(Val::I32(0)),
                ArgSource::Global(_) => Val::I32(0),
            })
            .collect()
    }

    /// Runs one case: reference and candidate on the same input. `Ok(None)`: they agree.
    fn case(
        &self,
        params: &[Val],
        memory_seed: u64,
        window: Option<(usize, usize)>,
    ) -> Result<(Option<String>, Ran), String> {
        let fill = |mem: &mut [u8]| {
            let Some((lo, hi)) = window else { return };
            let mut rng = Rng::new(memory_seed);
            let floats = Floats::of_case(memory_seed);
            let hi = hi.min(mem.len());
            let mut at = lo & !3;
            while at + 4 <= hi {
                if at % 8 == 0 && at + 8 <= hi && rng.percent(20) {
                    mem[at..at + 8].copy_from_slice(&floats.f64(&mut rng).to_le_bytes());
                    at += 8;
                    continue;
                }
                let w = if rng.percent(60) {
                    floats.f32(&mut rng)
                } else {
                    int_bits(&mut rng, 4) as u32
                };
                mem[at..at + 4].copy_from_slice(&w.to_le_bytes());
                at += 4;
            }
        };
        let r = self.run(false, params, &fill)?;
        let c = self.run(true, params, &fill)?;
        Ok((compare(&r, &c), c))
    }
}

/// An instance of the nest module and its (first exported) memory.
fn instantiate(
    pre: &InstancePre<State>,
    store: &mut Store<State>,
) -> Result<(wasmtime::Instance, wasmtime::Memory), String> {
    let inst = pre
        .instantiate(&mut *store)
        .map_err(|e| format!("cannot instantiate the nest's module: {e:#}"))?;
    let mem = inst
        .exports(&mut *store)
        .find_map(|e| e.into_memory())
        .ok_or("the module exports no memory")?;
    Ok((inst, mem))
}

/// `None` when the candidate run matches the reference run.
fn compare(r: &Ran, c: &Ran) -> Option<String> {
    if r.out_of_fuel {
        return None;
    }
    if let Some((reason, detail)) = &c.declined
        && *reason == "launch-error"
    {
        return Some(format!("the kernel failed on the interpreter: {detail}"));
    }
    match (&r.result, &c.result) {
        (Err(_), Ok(_)) => {
            return Some("the CPU loop traps but the kernel did not raise its trap flag".into());
        }
        (Ok(_), _) if matches!(&c.declined, Some(("trap", _))) => {
            return Some("the kernel raised its trap flag where the CPU loop does not trap".into());
        }
        (Ok(a), Ok(b)) if a != b => {
            return Some(format!("live-outs differ: CPU {a:?}, kernel {b:?}"));
        }
        (Ok(_), Err(e)) => return Some(format!("the kernel's run trapped: {e}")),
        _ => {}
    }
    if r.memory.len() != c.memory.len() {
        return Some("memory sizes differ".into());
    }
    let mut at = 0;
    while at < r.memory.len() {
        if r.memory[at] == c.memory[at] {
            at += 1;
            continue;
        }
        let nan32 = |m: &[u8], a: usize| {
            m.get(a..a + 4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap_or_default()).is_nan())
                .unwrap_or(false)
        };
        let nan64 = |m: &[u8], a: usize| {
            m.get(a..a + 8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()).is_nan())
                .unwrap_or(false)
        };
        let w4 = at & !3;
        let w8 = at & !7;
        if nan32(&r.memory, w4) && nan32(&c.memory, w4) {
            at = w4 + 4;
            continue;
        }
        if nan64(&r.memory, w8) && nan64(&c.memory, w8) {
            at = w8 + 8;
            continue;
        }
        return Some(format!(
            "memory differs at address {at:#x}: CPU {:#04x}, kernel {:#04x}",
            r.memory[at], c.memory[at]
        ));
    }
    None
}

/// The arguments that are pointers: those that appear alone, with coefficient ±1, in some
/// access's base address.
fn pointer_args(k: &OffloadKernel) -> Vec<u32> {
    let mut out = Vec::new();
    for a in &k.accesses {
        for (c, vars) in &a.base.terms {
            if let ([Var::Arg(i)], 1 | -1) = (vars.as_slice(), *c)
                && !out.contains(i)
            {
                out.push(*i);
            }
        }
    }
    out
}

/// The arguments that scale some access's stride by a factor that does not keep it aligned
/// by itself (`l8` in a stride `l8`, not `l5` in `4*l5` for 4-byte accesses), with the multiple
/// they must be for the stride to stay aligned.
fn stride_args(k: &OffloadKernel) -> BTreeMap<u32, u32> {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let mut out: BTreeMap<u32, u32> = BTreeMap::new();
    for a in &k.accesses {
        let w = u64::from(a.width.max(1));
        for (_, e) in &a.strides {
            for (c, vars) in &e.terms {
                if let [Var::Arg(i)] = vars.as_slice() {
                    let need = (w / gcd(c.unsigned_abs(), w)) as u32;
                    if need > 1 {
                        let m = out.entry(*i).or_insert(1);
                        *m = (*m).max(need);
                    }
                }
            }
        }
    }
    out
}

fn describe(params: &[Val]) -> String {
    params
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Val::I32(x) => format!("l{i}={x}"),
            Val::I64(x) => format!("l{i}={x}"),
            Val::F32(x) => format!("l{i}={:?}", f32::from_bits(*x)),
            Val::F64(x) => format!("l{i}={:?}", f64::from_bits(*x)),
            _ => format!("l{i}=?"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How many cases to run, from which seed, and whether a kernel's run stops early at
/// [`ITERATION_BUDGET`] (the build's does; `tensorwasm oracle` runs every case it is asked for).
#[derive(Debug, Clone, Copy)]
pub struct Cases {
    /// Cases per kernel.
    pub count: u32,
    /// Seed of the cases.
    pub seed: u64,
    /// Whether the run stops at [`ITERATION_BUDGET`].
    pub budget: bool,
}

/// Checks every kernel of `table` with `cases`. `outlined` is
/// [`tensorwasm_offload::outline`]'s module for the same kernels, `locals[k]` the local types of
/// kernel `k`'s function and `constants[k]` the locals constant on entry to its nest.
pub fn check_kernels(
    outlined: &[u8],
    table: &OffloadTable,
    locals: &[Vec<WasmTy>],
    constants: &[BTreeMap<u32, i64>],
    cases: Cases,
    backend: BackendKind,
) -> Result<Vec<NestReport>, String> {
    let mut config = tensorwasmd::engine::base_config();
    config.consume_fuel(true).epoch_interruption(false);
    let engine = Engine::new(&config).map_err(|e| format!("cannot create an engine: {e}"))?;
    let module = Module::new(&engine, outlined).map_err(|e| format!("the nest module: {e:#}"))?;
    let kernels = Arc::new(Kernels::new(table.clone()));
    let link = |host: Host| -> Result<InstancePre<State>, String> {
        let mut linker: Linker<State> = Linker::new(&engine);
        offload::define(&mut linker, &module, kernels.clone(), Arc::new(host))
            .map_err(|e| e.to_string())?;
        linker
            .define_unknown_imports_as_traps(&module)
            .map_err(|e| format!("{e:#}"))?;
        linker
            .instantiate_pre(&module)
            .map_err(|e| format!("cannot link the nest module: {e:#}"))
    };
    let reference = link(Host::none())?;
    let candidate = link(Host::new(backend, Some(1)).map_err(|e| e.to_string())?)?;
    let mut reports = Vec::new();
    for (k, kern) in table.kernels.iter().enumerate() {
        let bench = Bench {
            engine: &engine,
            reference: reference.clone(),
            candidate: candidate.clone(),
            kernel: kern,
            index: k,
            export: tensorwasm_offload::outlined_export(kern),
            locals: &locals[k],
            constants: &constants[k],
            pointers: pointer_args(kern),
            strides: stride_args(kern),
        };
        let mut report = check_one(&bench, cases)?;
        if backend == BackendKind::Cuda {
            report.backend = "cuda".into();
        }
        reports.push(report);
    }
    Ok(reports)
}

fn check_one(bench: &Bench<'_>, cases: Cases) -> Result<NestReport, String> {
    let Cases {
        count: cases,
        seed,
        budget,
    } = cases;
    let kern = bench.kernel;
    let mut report = NestReport {
        kernel: kern.name.clone(),
        cases: 0,
        dispatched: 0,
        declined: BTreeMap::new(),
        inconclusive: 0,
        budget_exhausted: false,
        instructions: 0,
        backend: "interpreter".into(),
        seed,
        failure: None,
    };
    let memory_len = bench.memory_len()?;
    // Draw every case first (cheap: the host's check only), up to the iteration budget, so
    // the set of cases is fixed before any runs; then run them on every core; then read the
    // outcomes in case order, stopping at the first failure.
    let mut planned = Vec::new();
    let mut spent: i128 = 0;
    for i in 0..cases {
        if budget && spent > ITERATION_BUDGET {
            report.budget_exhausted = true;
            break;
        }
        let cs = case_seed(seed, i);
        let mut rng = Rng::new(cs);
        // Redraw inputs the host would refuse, or that run too many iterations for the
        // interpreter, a few times, so most cases run the kernel; one case in five keeps a
        // draw the host declines (overlaps, ranges outside memory), which is compared too.
        // The last draws use tiny sizes.
        let keep_declined = rng.percent(20);
        let mut params = Vec::new();
        let mut window = None;
        let mut iterations = 0;
        for d in 0..DRAWS {
            params = bench.draw(&mut rng, memory_len, d + 4 >= DRAWS);
            match tensorwasm_guard::check(
                kern,
                &offload::guard_values(&bench.dispatch_args(&params)),
                memory_len,
                Some(1),
            ) {
                Ok(c) if c.iterations() <= MAX_ITERATIONS || d + 1 == DRAWS => {
                    window = Some(c.window);
                    iterations = c.iterations();
                    break;
                }
                Err(_) if keep_declined => break,
                _ => {}
            }
        }
        spent = spent.saturating_add(iterations);
        planned.push(Case {
            seed: cs,
            params,
            memory_seed: rng.next_u64(),
            window,
        });
    }
    'chunks: for chunk in planned.chunks(CHUNK) {
        if budget && report.instructions > INSTRUCTION_BUDGET {
            report.budget_exhausted = true;
            break;
        }
        for (case, outcome) in chunk.iter().zip(run_cases(bench, chunk)) {
            let (failure, ran) = outcome?;
            report.cases += 1;
            report.instructions = report.instructions.saturating_add(ran.instructions);
            if ran.out_of_fuel {
                report.inconclusive += 1;
            } else if ran.dispatched {
                report.dispatched += 1;
            } else if let Some((reason, _)) = &ran.declined {
                *report.declined.entry(reason.to_string()).or_default() += 1;
            }
            if let Some(what) = failure {
                let (params, what) = shrink(
                    bench,
                    case.params.clone(),
                    case.memory_seed,
                    case.window,
                    what,
                );
                report.failure = Some(NestFailure {
                    case_seed: case.seed,
                    locals: describe(&params),
                    what,
                });
                break 'chunks;
            }
        }
    }
    Ok(report)
}

/// One drawn case.
struct Case {
    seed: u64,
    params: Vec<Val>,
    memory_seed: u64,
    window: Option<(usize, usize)>,
}

type CaseOutcome = Result<(Option<String>, Ran), String>;

/// Runs every case, on as many threads as the machine has cores, and returns the outcomes in
/// case order. Each case is independent (its own stores, its own memory from its own seed), so
/// the outcomes do not depend on the number of threads.
fn run_cases(bench: &Bench<'_>, cases: &[Case]) -> Vec<CaseOutcome> {
    // Only the verdict is kept: the memory images go as soon as the case is compared.
    let run = |c: &Case| {
        bench
            .case(&c.params, c.memory_seed, c.window)
            .map(|(failure, mut ran)| {
                ran.memory = Vec::new();
                (failure, ran)
            })
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(cases.len());
    if workers <= 1 {
        return cases.iter().map(run).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<Option<CaseOutcome>> = (0..cases.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(c) = cases.get(i) else { break };
                        mine.push((i, run(c)));
                    }
                    mine
                })
            })
            .collect();
        for h in handles {
            // A worker that panicked leaves its cases unanswered: reported below.
            for (i, r) in h.join().unwrap_or_default() {
                out[i] = Some(r);
            }
        }
    });
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err("an oracle worker thread panicked".into())))
        .collect()
}

/// Shrinks a failing case: each size argument toward 0 while the case still fails.
fn shrink(
    bench: &Bench<'_>,
    mut params: Vec<Val>,
    memory_seed: u64,
    window: Option<(usize, usize)>,
    mut what: String,
) -> (Vec<Val>, String) {
    let sizes: Vec<usize> = bench
        .kernel
        .args
        .iter()
        .enumerate()
        .filter(|(i, _)| !bench.pointers.contains(&(*i as u32)))
        .filter_map(|(_, a)| match a.source {
            ArgSource::Local(l) if !bench.constants.contains_key(&l) => Some(l as usize),
            _ => None,
        })
        .collect();
    for l in sizes {
        loop {
            let cur = match params.get(l) {
                Some(Val::I32(x)) => i64::from(*x),
                Some(Val::I64(x)) => *x,
                _ => break,
            };
            let mut improved = false;
            for smaller in [0, 1, cur / 2, cur - 1] {
                if smaller < 0 || smaller >= cur {
                    continue;
                }
                let mut trial = params.clone();
                trial[l] = match params[l] {
                    Val::I64(_) => Val::I64(smaller),
                    _ => Val::I32(smaller as i32),
                };
                if let Ok((Some(w), _)) = bench.case(&trial, memory_seed, window) {
                    params = trial;
                    what = w;
                    improved = true;
                    break;
                }
            }
            if !improved {
                break;
            }
        }
    }
    (params, what)
}
