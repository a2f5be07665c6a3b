//! The build's oracle step: every kernel against the loop nest it replaces, on random inputs.
//!
//! The module under test is [`tensorwasm_offload::outline`]'s: the input module plus, per kernel,
//! an exported function that takes every local of the nest's function as a parameter, runs the
//! guard and the nest's loop exactly as the rewritten module does, and returns the live-outs.
//! The *reference* instance links a dispatch host that declines every call, so the original
//! loop runs under Wasmtime; the *candidate* instance links the host on the PTX interpreter with
//! no launch threshold, so the kernel runs whenever the host's checks pass.
//!
//! Each case draws the locals (small trip counts including 0 and 1; floats and integers
//! biased to NaN, ±0, ±inf, subnormals, extremes and integer edges; locals the analysis found
//! constant on entry keep their constant), then builds them to meet the host's checks: trip
//! formulas with a free argument are solved for a drawn count, and the access groups are placed
//! in memory apart from each other ([`Bench::solve_trips`], [`Bench::place`]); one case in ten
//! keeps its raw draw so that declines are compared too. Three more cases per kernel run at the
//! size the host launches (at least its threshold of grid threads). Each fills the bytes the
//! kernel may touch, runs both, and compares: the same trap or none, the same live-outs, and
//! memory equal by [`tensorwasm_oracle::compare`] (exact, but for NaN against NaN in the lanes
//! of the kernel's float stores). A kernel that raises its trap flag where the CPU does not
//! trap, or fails on the interpreter, fails too. A failure is shrunk (sizes toward 0) and
//! reported with the seed that replays it; the build then leaves the kernel out of the bundle,
//! as it does one that ran in fewer than half its cases.

use std::collections::BTreeMap;
use std::sync::Arc;

use tensorwasm_analysis::ir::ValType as WasmTy;
use tensorwasm_guard::{ArgSource, ArgType, OffloadKernel, OffloadTable, Var};
use tensorwasm_oracle::compare::{FloatLanes, differences, hex};
use tensorwasm_oracle::harness::{
    Floats, Rng, case_seed, f32_bits, f64_bits, int_bits, shrink_size,
};
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

/// Cases per kernel at launch size: at least the kernel's launch threshold of grid threads
/// (4096), with its real block shape, so that the host's grid arithmetic and a tiled kernel's
/// multi-block paths run. They run before the others, outside the budgets.
const LARGE_CASES: u32 = 3;

/// Draws per case at launch size before the kernel goes without it.
const LARGE_DRAWS: u32 = 256;

/// Most loop iterations (all loops of the nest) of a case at launch size.
const LARGE_MAX_ITERATIONS: i128 = 1 << 19;

/// Memory the cases at launch size may use: the module's memory grown up to this, where its
/// maximum allows (each case grows it only as far as its window reaches).
const LARGE_MEMORY: usize = 16 << 20;

/// Most addresses of one float store whose lanes a case marks (see [`float_lanes`]).
const LANE_CAP: usize = 1 << 22;

struct State {
    off: OffloadState,
}

impl HasOffload for State {
    fn offload(&mut self) -> &mut OffloadState {
        &mut self.off
    }
}

/// How large a case's sizes are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sizes {
    /// Small, with 0 and 1 often.
    Normal,
    /// Below 4 (the last draws of a case).
    Tiny,
    /// At the host's launch threshold ([`LARGE_CASES`]), sequential loops 16 to 48 times (a
    /// tiled kernel's full-tile path needs 16 `k` per tile).
    Large,
    /// At the launch threshold, sequential loops 1 to 4 times (the later draws of a case at
    /// launch size, for nests whose sequential loops would run too long).
    LargeShort,
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
    /// Per access group, the pointer argument the oracle may move to place the group in
    /// memory ([`movable_groups`]).
    movable: BTreeMap<u32, u32>,
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
        memory_len: usize,
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
        let have = mem.data_size(&store);
        if memory_len > have {
            let pages = (memory_len - have).div_ceil(65536) as u64;
            mem.grow(&mut store, pages)
                .map_err(|e| format!("cannot grow the nest's memory to {memory_len} bytes: {e}"))?;
        }
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

    /// The size of the memory the nest sees (the module's memory after instantiation), and
    /// the size the cases at launch size get: [`LARGE_MEMORY`] where the memory's maximum
    /// allows, else the most it allows.
    fn memory_lens(&self) -> Result<(usize, usize), String> {
        let mut store = self.store();
        let (_, mem) = instantiate(&self.reference, &mut store)?;
        let have = mem.data_size(&store);
        let most = mem.ty(&store).maximum().map_or(usize::MAX, |pages| {
            usize::try_from(pages.saturating_mul(65536)).unwrap_or(usize::MAX)
        });
        Ok((have, have.max(LARGE_MEMORY.min(most))))
    }

    /// The parameters of the outlined nest for a case.
    fn draw(&self, rng: &mut Rng, memory_len: usize, sizes: Sizes) -> Vec<Val> {
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
                        if sizes == Sizes::Tiny {
                            return rng.below(4);
                        }
                        if matches!(sizes, Sizes::Large | Sizes::LargeShort) {
                            // Log-uniform in [64, 65536), a multiple of 16: row lengths and
                            // pitches of every scale (a pitch must exceed a row of 4096 threads
                            // for some nests), aligned as real byte offsets are.
                            let base = 1u64 << (6 + rng.below(10));
                            let v = base + rng.below(base);
                            return v - v % 16;
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

    /// Sets each trip count to a drawn target by construction, where its formula is linear in
    /// the arguments and one of them is free to choose: an integer argument that is no pointer,
    /// no entry constant, and in no other loop's formula (the end of a `while (p < end)` loop,
    /// a row length). The target is drawn as sizes are (small, 0 and 1 often; below 4 when
    /// `Tiny`; at launch size, grid loops so that the grid reaches the kernel's launch
    /// threshold and sequential ones 16 to 48 times, or 1 to 4 for `LargeShort`), at least 1 where the kernel needs the loop to run. The
    /// formula's numerator is
    /// then set to a value that rounds to the target, divisible where the division must be
    /// exact. Trip counts that are not linear or have no free argument keep their drawn values.
    fn solve_trips(&self, rng: &mut Rng, params: &mut [Val], sizes: Sizes) {
        let k = self.kernel;
        let mut solved: Vec<u32> = Vec::new();
        for (ti, t) in k.trips.iter().enumerate() {
            let linear = t
                .num
                .terms
                .iter()
                .all(|(_, v)| matches!(v.as_slice(), [] | [Var::Arg(_)]));
            if !linear {
                continue;
            }
            // Another loop's formula that names the argument and is not this one's (sibling
            // loops of one formula, an unrolled loop's halves, are set together).
            let in_other = |i: u32| {
                k.trips.iter().enumerate().any(|(tj, u)| {
                    tj != ti
                        && u.num.terms.iter().any(|(_, v)| v.contains(&Var::Arg(i)))
                        && (u.num != t.num || u.div != t.div || u.exact != t.exact)
                })
            };
            let local_of = |i: u32| match k.args.get(i as usize) {
                Some(a) if matches!(a.ty, ArgType::I32 | ArgType::I64) => match a.source {
                    ArgSource::Local(l) if !self.constants.contains_key(&l) => Some(l),
                    _ => None,
                },
                _ => None,
            };
            let free = t.num.terms.iter().find_map(|(c, v)| match v.as_slice() {
                [Var::Arg(i)]
                    if *c != 0
                        && !self.pointers.contains(i)
                        && !solved.contains(i)
                        && !in_other(*i)
                        && local_of(*i).is_some() =>
                {
                    Some((*i, i128::from(*c)))
                }
                _ => None,
            });
            let Some((e, coef)) = free else { continue };
            // The rest of the numerator, with every other argument as drawn.
            let mut rest: i128 = 0;
            let mut known = true;
            for (c, v) in &t.num.terms {
                match v.as_slice() {
                    [] => rest += i128::from(*c),
                    [Var::Arg(i)] if *i == e => {}
                    [Var::Arg(i)] => match self.arg_value(params, *i) {
                        Some(x) => rest += i128::from(*c) * x,
                        None => known = false,
                    },
                    _ => known = false,
                }
            }
            if !known {
                continue;
            }
            let must_run = k
                .checks
                .iter()
                .any(|c| matches!(c, tensorwasm_guard::Check::AtLeastOnce(j) if *j as usize == ti));
            let target = match sizes {
                Sizes::Tiny => rng.below(4) as i128,
                Sizes::Large | Sizes::LargeShort if k.grid.contains(&(ti as u32)) => {
                    // The d-th root of the threshold, rounded up, and a little more.
                    let dims = k.grid.len().max(1) as u32;
                    let min = self.kernel.min_threads.max(1) as f64;
                    min.powf(1.0 / f64::from(dims)).ceil() as i128 + rng.below(9) as i128
                }
                Sizes::Large => 16 + rng.below(33) as i128,
                Sizes::LargeShort => 1 + rng.below(4) as i128,
                Sizes::Normal => match rng.below(10) {
                    0 => 0,
                    1 => 1,
                    2 => 2,
                    3..8 => rng.below(40) as i128,
                    _ => rng.below(300) as i128,
                },
            };
            let target = if must_run { target.max(1) } else { target };
            let div = i128::from(t.div.max(1));
            let whole = target - i128::from(t.add);
            if whole < 0 {
                continue;
            }
            // num in ((whole - 1)·div, whole·div] rounds up to `whole`; exactly whole·div when
            // the division must be exact.
            let mut candidates = vec![whole * div];
            if !t.exact && whole > 0 {
                candidates.insert(0, whole * div - rng.below(div as u64) as i128);
            }
            let Some(l) = local_of(e) else { continue };
            for num in candidates {
                let diff = num - rest;
                if diff % coef != 0 {
                    continue;
                }
                let x = diff / coef;
                let fits = match params.get(l as usize) {
                    Some(Val::I32(_)) => (0..1i128 << 32).contains(&x),
                    Some(Val::I64(_)) => (0..1i128 << 64).contains(&x),
                    _ => false,
                };
                if fits {
                    self.set_arg(params, e, x);
                    solved.push(e);
                    break;
                }
            }
        }
    }

    /// Places the case's access groups in memory by construction: each group whose base
    /// moves with a pointer argument alone ([`Bench::movable`]) gets that pointer moved, by a
    /// multiple of 16 bytes, so that the group's bytes lie inside memory and apart from every
    /// other group's (the host's bounds and no-overlap checks then hold, and alignment is what
    /// it was). Groups on the same pointer move together; the others stay where they are.
    /// Nothing changes when the host cannot evaluate the case's trip counts.
    fn place(&self, rng: &mut Rng, params: &mut [Val], memory_len: usize, compact: bool) {
        let Ok(spans) = tensorwasm_guard::check::spans(
            self.kernel,
            &offload::guard_values(&self.dispatch_args(params)),
        ) else {
            return;
        };
        // Each movable pointer's bytes relative to its value, and the fixed groups' bytes.
        let mut moving: BTreeMap<u32, (i128, i128)> = BTreeMap::new();
        let mut taken: Vec<(i128, i128)> = Vec::new();
        for (g, &(lo, hi)) in &spans {
            match self
                .movable
                .get(g)
                .and_then(|p| Some((*p, self.arg_value(params, *p)?)))
            {
                Some((p, v)) => {
                    let e = moving.entry(p).or_insert((lo - v, hi - v));
                    e.0 = e.0.min(lo - v);
                    e.1 = e.1.max(hi - v);
                }
                None => taken.push((lo, hi)),
            }
        }
        let end = memory_len as i128;
        let mut order: Vec<u32> = moving.keys().copied().collect();
        // A random order, so that no pointer always gets the low addresses.
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for p in order {
            let (Some(&(rlo, rhi)), Some(v)) = (moving.get(&p), self.arg_value(params, p)) else {
                continue;
            };
            // P ≡ v (mod 16), P + rlo >= 0, P + rhi <= end, and no overlap with `taken`.
            let residue = v.rem_euclid(16);
            let first = align_up(-rlo, residue);
            let last = end - rhi;
            if first > last {
                continue;
            }
            let free = |at: i128| taken.iter().all(|&(a, b)| at + rhi <= a || b <= at + rlo);
            let slots = (last - first) / 16 + 1;
            let mut chosen = None;
            // `compact`: low addresses first (a case at launch size then needs only as much
            // memory as its groups take).
            let tries = if compact { 0 } else { 8 };
            for _ in 0..tries {
                let at = first + 16 * (rng.below(slots.min(u64::MAX as i128) as u64) as i128);
                if free(at) {
                    chosen = Some(at);
                    break;
                }
            }
            if chosen.is_none() {
                // Just after each taken range, or at the start: the first that fits.
                let mut starts: Vec<i128> = vec![first];
                starts.extend(taken.iter().map(|&(_, b)| align_up(b - rlo, residue)));
                starts.sort_unstable();
                chosen = starts
                    .into_iter()
                    .find(|&at| at >= first && at <= last && free(at));
            }
            let Some(at) = chosen else { continue };
            taken.push((at + rlo, at + rhi));
            self.set_arg(params, p, at);
        }
    }

    /// Dispatch argument `arg` in `params` (the outlined nest's locals), read unsigned as
    /// the host reads it; `None` for a global or a float.
    fn arg_value(&self, params: &[Val], arg: u32) -> Option<i128> {
        let ArgSource::Local(l) = self.kernel.args.get(arg as usize)?.source else {
            return None;
        };
        match params.get(l as usize)? {
            Val::I32(x) => Some(i128::from(*x as u32)),
            Val::I64(x) => Some(i128::from(*x as u64)),
            _ => None,
        }
    }

    /// Sets dispatch argument `arg`'s local in `params` to `v`, reduced to the local's width.
    fn set_arg(&self, params: &mut [Val], arg: u32, v: i128) {
        let Some(ArgSource::Local(l)) = self.kernel.args.get(arg as usize).map(|a| a.source) else {
            return;
        };
        if let Some(slot) = params.get_mut(l as usize) {
            *slot = match slot {
                Val::I64(_) => Val::I64(v as u64 as i64),
                _ => Val::I32(v as u32 as i32),
            };
        }
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
        lanes: &FloatLanes,
        memory_len: usize,
        plain: bool,
    ) -> Result<(Option<String>, Ran), String> {
        // `plain` (the cases at launch size): ordinary floats in every lane, no integer edges.
        // A long sum over edge values is NaN or infinite on both sides, which would hide
        // what a large case is for.
        let fill = |mem: &mut [u8]| {
            let Some((lo, hi)) = window else { return };
            let mut rng = Rng::new(memory_seed);
            let floats = if plain {
                Floats::Plain
            } else {
                Floats::of_case(memory_seed)
            };
            let hi = hi.min(mem.len());
            let mut at = lo & !3;
            while at + 4 <= hi {
                if at % 8 == 0 && at + 8 <= hi && rng.percent(20) {
                    mem[at..at + 8].copy_from_slice(&floats.f64(&mut rng).to_le_bytes());
                    at += 8;
                    continue;
                }
                let w = if plain || rng.percent(60) {
                    floats.f32(&mut rng)
                } else {
                    int_bits(&mut rng, 4) as u32
                };
                mem[at..at + 4].copy_from_slice(&w.to_le_bytes());
                at += 4;
            }
        };
        let r = self.run(false, params, memory_len, &fill)?;
        let c = self.run(true, params, memory_len, &fill)?;
        Ok((compare(&r, &c, lanes), c))
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

/// `None` when the candidate run matches the reference run: the same trap or none, the same
/// live-outs, and memory equal by [`tensorwasm_oracle::compare`] with `lanes` as the float
/// lanes.
fn compare(r: &Ran, c: &Ran, lanes: &FloatLanes) -> Option<String> {
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
    let diffs = differences(&r.memory, &c.memory, lanes);
    let d = diffs.first()?;
    let show = |m: &[u8]| {
        m.get(d.at..d.at + d.len)
            .map(hex)
            .unwrap_or_else(|| "(past the end)".into())
    };
    Some(format!(
        "memory differs at address {:#x} ({}): CPU [{}], kernel [{}]; {} difference{} in all",
        d.at,
        if d.len == 1 {
            "a byte no float store writes".to_string()
        } else {
            format!("an f{} lane", d.len * 8)
        },
        show(&r.memory),
        show(&c.memory),
        diffs.len(),
        if diffs.len() == 1 { "" } else { "s" }
    ))
}

/// The float lanes of a case that passed the host's checks: every position and width where a
/// float store of the kernel may write with these values ([`tensorwasm_oracle::compare`]). An
/// access with more than [`LANE_CAP`] addresses adds none (compared exactly, byte for byte).
fn float_lanes(kern: &OffloadKernel, checked: &tensorwasm_guard::Checked) -> FloatLanes {
    let mut lanes = FloatLanes::none();
    for (i, a) in kern.accesses.iter().enumerate().filter(|(_, a)| a.float) {
        for at in checked.addresses(kern, i, LANE_CAP).unwrap_or_default() {
            if let Ok(at) = usize::try_from(at) {
                lanes.add(at, a.width);
            }
        }
    }
    lanes.seal();
    lanes
}

/// The float lanes of `params`' case (none when the host declines it: then both runs are the
/// CPU loop's).
fn lanes_of(bench: &Bench<'_>, params: &[Val], memory_len: usize) -> FloatLanes {
    match tensorwasm_guard::check(
        bench.kernel,
        &offload::guard_values(&bench.dispatch_args(params)),
        memory_len,
        Some(1),
    ) {
        Ok(c) => float_lanes(bench.kernel, &c),
        Err(_) => FloatLanes::none(),
    }
}

/// The arguments that are pointers: those that are, with coefficient ±1, the whole variable
/// part of some access's base address (`l8` in `l8 + 4`; not `l5` in `l1 + l5`, a width added
/// to a pointer).
fn pointer_args(k: &OffloadKernel) -> Vec<u32> {
    let mut out = Vec::new();
    for a in &k.accesses {
        let vars: Vec<&(i64, Vec<Var>)> =
            a.base.terms.iter().filter(|(_, v)| !v.is_empty()).collect();
        if let [(1 | -1, v)] = vars.as_slice()
            && let [Var::Arg(i)] = v.as_slice()
            && !out.contains(i)
        {
            out.push(*i);
        }
    }
    out
}

/// The smallest `x >= at` with `x ≡ residue (mod 16)`.
fn align_up(at: i128, residue: i128) -> i128 {
    at + (residue - at).rem_euclid(16)
}

/// Per access group, the pointer argument that moves it alone: the group's base holds it with
/// coefficient 1, and nothing but addresses mentions it (no trip count, exit compare, stride,
/// access condition or other group's base), so moving it moves the group's bytes and nothing
/// else about the case.
fn movable_groups(k: &OffloadKernel, pointers: &[u32]) -> BTreeMap<u32, u32> {
    let mentions = |e: &tensorwasm_guard::Expr, p: u32| {
        e.terms.iter().any(|(_, vars)| vars.contains(&Var::Arg(p)))
    };
    let elsewhere = |p: u32| {
        k.trips.iter().any(|t| {
            mentions(&t.num, p)
                || t.wrap
                    .iter()
                    .any(|w| mentions(&w.base, p) || w.strides.iter().any(|(_, s)| mentions(s, p)))
        }) || k.accesses.iter().any(|a| {
            a.strides.iter().any(|(_, s)| mentions(s, p))
                || a.when.iter().any(|g| mentions(&g.expr, p))
        })
    };
    let mut out = BTreeMap::new();
    let mut shared: Vec<u32> = Vec::new();
    for a in &k.accesses {
        let alone: Vec<u32> = a
            .base
            .terms
            .iter()
            .filter_map(|(c, vars)| match (vars.as_slice(), *c) {
                ([Var::Arg(i)], 1) if pointers.contains(i) => Some(*i),
                _ => None,
            })
            .collect();
        // Another pointer in the base, any other way (a product, a second pointer).
        let other_ptr = a.base.terms.iter().any(|(c, vars)| {
            vars.iter().any(|v| {
                matches!(v, Var::Arg(i) if pointers.contains(i)
                    && !(alone.contains(i) && *c == 1 && vars.len() == 1))
            })
        });
        match (alone.as_slice(), other_ptr) {
            ([p], false)
                if !elsewhere(*p)
                    && matches!(
                        k.args.get(*p as usize).map(|x| x.source),
                        Some(ArgSource::Local(_))
                    ) =>
            {
                if out.get(&a.group).is_some_and(|q| q != p) {
                    shared.push(a.group);
                }
                out.insert(a.group, *p);
            }
            _ => shared.push(a.group),
        }
    }
    for g in shared {
        out.remove(&g);
    }
    out
}

/// The arguments that scale some access's stride, or offset its base, by a factor that does
/// not keep it aligned by itself (`l8` in a stride `l8` or a base `l1 + l8`, not `l5` in
/// `4*l5` for 4-byte accesses), with the multiple they must be for the access to stay aligned.
/// Pointers are left out: they are placed aligned.
fn stride_args(k: &OffloadKernel, pointers: &[u32]) -> BTreeMap<u32, u32> {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let mut out: BTreeMap<u32, u32> = BTreeMap::new();
    for a in &k.accesses {
        let w = u64::from(a.width.max(1));
        for e in a.strides.iter().map(|(_, e)| e).chain([&a.base]) {
            for (c, vars) in &e.terms {
                if let [Var::Arg(i)] = vars.as_slice()
                    && !pointers.contains(i)
                {
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
        let pointers = pointer_args(kern);
        let bench = Bench {
            engine: &engine,
            reference: reference.clone(),
            candidate: candidate.clone(),
            kernel: kern,
            index: k,
            export: tensorwasm_offload::outlined_export(kern),
            locals: &locals[k],
            constants: &constants[k],
            movable: movable_groups(kern, &pointers),
            strides: stride_args(kern, &pointers),
            pointers,
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
        largest_grid: 0,
        failure: None,
    };
    let (memory_len, large_memory) = bench.memory_lens()?;
    // Draw every case first (cheap: the host's check only), up to the iteration budget, so
    // the set of cases is fixed before any runs; then run them on every core; then read the
    // outcomes in case order, stopping at the first failure. The few cases at launch size come
    // last, outside both budgets, so that every kernel gets them (and a failure the small
    // cases find is shrunk from small sizes).
    let mut planned = Vec::new();
    let mut spent: i128 = 0;
    for i in 0..cases {
        if budget && spent > ITERATION_BUDGET {
            report.budget_exhausted = true;
            break;
        }
        let case = plan_case(
            bench,
            case_seed(seed, i),
            memory_len,
            memory_len,
            Sizes::Normal,
        );
        let Some(case) = case else { continue };
        spent = spent.saturating_add(case.iterations);
        planned.push(case);
    }
    let normal = planned.len();
    for j in 0..LARGE_CASES {
        let seed = case_seed(seed, cases + j);
        if let Some(c) = plan_case(bench, seed, large_memory, memory_len, Sizes::Large) {
            planned.push(c);
        }
    }
    let (small, large) = planned.split_at(normal);
    let mut chunks: Vec<&[Case]> = small.chunks(CHUNK).collect();
    let first_large = chunks.len();
    chunks.push(large);
    'chunks: for (n, chunk) in chunks.into_iter().enumerate() {
        if budget && n < first_large && report.instructions > INSTRUCTION_BUDGET {
            report.budget_exhausted = true;
            continue;
        }
        for (case, outcome) in chunk.iter().zip(run_cases(bench, chunk)) {
            let (failure, ran) = outcome?;
            report.cases += 1;
            report.instructions = report.instructions.saturating_add(ran.instructions);
            if ran.out_of_fuel {
                report.inconclusive += 1;
            } else if ran.dispatched {
                report.dispatched += 1;
                report.largest_grid = report.largest_grid.max(case.threads);
            } else if let Some((reason, _)) = &ran.declined {
                *report.declined.entry(reason.to_string()).or_default() += 1;
            }
            if let Some(what) = failure {
                let (params, what) = shrink(
                    bench,
                    case.params.clone(),
                    case.memory_seed,
                    case.window,
                    case.memory_len,
                    case.plain,
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

/// Draws one case from `seed` for a memory of `memory_len` bytes. Each draw's trip counts
/// and groups are set by construction (`Bench::solve_trips`, `Bench::place`). Inputs the host
/// still refuses (conditions, sizes that do not fit) or that run too many iterations for the
/// interpreter are drawn again a few times, the last draws with tiny sizes. One normal case in
/// ten keeps its first draw as it is, unplaced: pointers anywhere in memory, sometimes on top
/// of each other, which the host mostly declines (the declined path is compared too). A large
/// case is kept only when the host accepts it with at least the kernel's launch threshold of
/// grid threads (`None` otherwise).
fn plan_case(
    bench: &Bench<'_>,
    seed: u64,
    memory_len: usize,
    module_len: usize,
    sizes: Sizes,
) -> Option<Case> {
    let kern = bench.kernel;
    let mut rng = Rng::new(seed);
    let large = sizes == Sizes::Large;
    let keep_declined = !large && rng.percent(10);
    let most = if large {
        LARGE_MAX_ITERATIONS
    } else {
        MAX_ITERATIONS
    };
    let mut params = Vec::new();
    let mut accepted = None;
    // Launch-size draws are cheap (the host's check only) and meet every condition less
    // often: more of them.
    let draws = if large { LARGE_DRAWS } else { DRAWS };
    for d in 0..draws {
        let sizes = if !large && d + 4 >= DRAWS {
            Sizes::Tiny
        } else if large && d >= LARGE_DRAWS / 2 {
            Sizes::LargeShort
        } else {
            sizes
        };
        params = bench.draw(&mut rng, memory_len, sizes);
        if !keep_declined {
            bench.solve_trips(&mut rng, &mut params, sizes);
            bench.place(&mut rng, &mut params, memory_len, large);
        }
        match tensorwasm_guard::check(
            kern,
            &offload::guard_values(&bench.dispatch_args(&params)),
            memory_len,
            Some(1),
        ) {
            Ok(c)
                if large
                    && c.grid_threads(kern) >= i128::from(kern.min_threads)
                    && c.iterations() <= most =>
            {
                accepted = Some(c);
                break;
            }
            Ok(_) if large => {}
            Ok(c) if c.iterations() <= most || d + 1 == draws => {
                accepted = Some(c);
                break;
            }
            Err(_) if keep_declined => break,
            _ => {}
        }
    }
    if large && accepted.is_none() {
        return None;
    }
    Some(Case {
        seed,
        memory_seed: rng.next_u64(),
        window: accepted.as_ref().map(|c| c.window),
        lanes: accepted
            .as_ref()
            .map_or_else(FloatLanes::none, |c| float_lanes(kern, c)),
        iterations: accepted.as_ref().map_or(0, |c| c.iterations()),
        threads: accepted.as_ref().map_or(0, |c| {
            u64::try_from(c.grid_threads(kern)).unwrap_or(u64::MAX)
        }),
        // A case at launch size runs in as much memory as its window needs (its groups are
        // placed from low addresses), not the whole of `memory_len`: copying and comparing
        // megabytes nobody touches is most of what such a case would cost.
        memory_len: match (&accepted, large) {
            (Some(c), true) => module_len.max(c.window.1.div_ceil(65536) * 65536),
            _ => memory_len,
        },
        plain: large,
        params,
    })
}

/// One drawn case.
struct Case {
    seed: u64,
    params: Vec<Val>,
    memory_seed: u64,
    window: Option<(usize, usize)>,
    lanes: FloatLanes,
    /// Grid threads of the launch, when the host accepts the case.
    threads: u64,
    /// Loop iterations of the launch, when the host accepts the case.
    iterations: i128,
    /// The memory the case runs in (grown to it from the module's own size).
    memory_len: usize,
    /// Ordinary floats only in its memory (the cases at launch size).
    plain: bool,
}

type CaseOutcome = Result<(Option<String>, Ran), String>;

/// Runs every case, on as many threads as the machine has cores, and returns the outcomes in
/// case order. Each case is independent (its own stores, its own memory from its own seed), so
/// the outcomes do not depend on the number of threads.
fn run_cases(bench: &Bench<'_>, cases: &[Case]) -> Vec<CaseOutcome> {
    // Only the verdict is kept: the memory images go as soon as the case is compared.
    let run = |c: &Case| {
        bench
            .case(
                &c.params,
                c.memory_seed,
                c.window,
                &c.lanes,
                c.memory_len,
                c.plain,
            )
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

/// Shrinks a failing case: each size argument toward 0 while the case still fails, with the
/// harness's size shrinker ([`shrink_size`]). The float lanes are those of each
/// trial's own iterations; memory is filled as in the failing case.
fn shrink(
    bench: &Bench<'_>,
    mut params: Vec<Val>,
    memory_seed: u64,
    window: Option<(usize, usize)>,
    memory_len: usize,
    plain: bool,
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
        // Sizes are read unsigned: an i32 as its u32, a negative i64 as the largest.
        let cur = match params.get(l) {
            Some(Val::I32(x)) => i64::from(*x as u32),
            Some(Val::I64(x)) => {
                if *x < 0 {
                    i64::MAX
                } else {
                    *x
                }
            }
            _ => continue,
        };
        let _ = shrink_size(
            cur,
            0,
            |smaller| -> Result<bool, std::convert::Infallible> {
                let mut trial = params.clone();
                trial[l] = match params[l] {
                    Val::I64(_) => Val::I64(smaller),
                    _ => Val::I32(smaller as u32 as i32),
                };
                let lanes = lanes_of(bench, &trial, memory_len);
                match bench.case(&trial, memory_seed, window, &lanes, memory_len, plain) {
                    Ok((Some(w), _)) => {
                        params = trial;
                        what = w;
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            },
        );
    }
    (params, what)
}
