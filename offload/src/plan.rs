//! Planning: from a lowered kernel to its kernel-table entry ([`plan_kernel`]).
//!
//! The analysis describes a nest with polynomials over the nest's live-ins and its loops'
//! iteration numbers; the table speaks of dispatch arguments and trip counts. This module
//! picks the dispatch arguments (the live-in locals and globals a polynomial needs), and turns
//! every trip count, kernel parameter, access range, runtime condition and live-out into an
//! [`Expr`] the guard evaluates exactly (`tensorwasm_guard::check`).

use std::collections::{BTreeMap, HashMap};

use tensorwasm_analysis::candidate::{Candidate, Condition};
use tensorwasm_analysis::ir::{FunctionIr, Imm, Loop, ValType as WasmTy};
use tensorwasm_analysis::poly::{Poly, Sym};
use tensorwasm_guard::{
    AccessGuard, AccessRange, Arg, ArgSource, ArgType, Check, Expr, LiveOut, OffloadKernel,
    ParamValue, Trip, Var, WrapCheck,
};

use crate::lower::{Lowered, ParamSource};

/// Builds [`Expr`]s from polynomials, collecting the dispatch arguments they need.
struct Exprs<'a> {
    func: &'a FunctionIr,
    globals: &'a [WasmTy],
    trip_of: BTreeMap<Loop, u32>,
    args: Vec<Arg>,
    arg_of: HashMap<ArgSource, u32>,
}

fn arg_type(t: WasmTy) -> Result<ArgType, String> {
    match t {
        WasmTy::I32 => Ok(ArgType::I32),
        WasmTy::I64 => Ok(ArgType::I64),
        WasmTy::F32 => Ok(ArgType::F32),
        WasmTy::F64 => Ok(ArgType::F64),
        other => Err(format!(
            "a live-in of type {other} cannot be passed to the host"
        )),
    }
}

impl Exprs<'_> {
    fn arg(&mut self, source: ArgSource) -> Result<u32, String> {
        if let Some(&i) = self.arg_of.get(&source) {
            return Ok(i);
        }
        let ty = match source {
            ArgSource::Local(l) => self.func.local_type(l),
            ArgSource::Global(g) => self.globals.get(g as usize).copied(),
        }
        .ok_or_else(|| format!("{source:?} does not exist"))?;
        let i = self.args.len() as u32;
        self.args.push(Arg {
            source,
            ty: arg_type(ty)?,
        });
        self.arg_of.insert(source, i);
        Ok(i)
    }

    fn var(&mut self, s: Sym) -> Result<Var, String> {
        let v = match s {
            Sym::Local(l) => Var::Arg(self.arg(ArgSource::Local(l))?),
            Sym::Global(g) => Var::Arg(self.arg(ArgSource::Global(g))?),
            Sym::Trip(lp) => Var::Trip(
                *self
                    .trip_of
                    .get(&lp)
                    .ok_or_else(|| format!("trip count of {lp} is not known"))?,
            ),
            Sym::Iter(_) | Sym::Head(..) => {
                return Err(format!("{s} is not fixed for the whole nest"));
            }
        };
        if let Var::Arg(i) = v
            && matches!(self.args[i as usize].ty, ArgType::F32 | ArgType::F64)
        {
            return Err(format!("{s} is a float used as an integer"));
        }
        Ok(v)
    }

    /// `p` as `base + Σ stride·k` over the nest's iteration numbers.
    fn affine(&mut self, p: &Poly) -> Result<(Expr, Vec<(u32, Expr)>), String> {
        let mut rest = p.clone();
        let mut strides = Vec::new();
        for lp in self.trip_of.clone().keys() {
            let (r, coef) = rest
                .split_linear(Sym::Iter(*lp))
                .ok_or("not affine in the iteration numbers")?;
            rest = r;
            if coef != Poly::default() {
                strides.push((self.trip_of[lp], self.expr(&coef)?));
            }
        }
        Ok((self.expr(&rest)?, strides))
    }

    fn expr(&mut self, p: &Poly) -> Result<Expr, String> {
        let mut terms = Vec::new();
        for (m, c) in p.terms() {
            let vars = m
                .iter()
                .map(|&s| self.var(s))
                .collect::<Result<Vec<_>, _>>()?;
            terms.push((c, vars));
        }
        Ok(Expr { terms })
    }
}

/// The kernel-table entry for a lowered candidate, or why the nest cannot be offloaded.
pub fn plan_kernel(
    func: &FunctionIr,
    globals: &[WasmTy],
    offset: u32,
    cand: &Candidate,
    lowered: &Lowered,
    ptx: String,
    block: [u32; 3],
) -> Result<OffloadKernel, String> {
    let trip_of: BTreeMap<Loop, u32> = cand
        .trips
        .keys()
        .enumerate()
        .map(|(i, lp)| (*lp, i as u32))
        .collect();
    let mut ex = Exprs {
        func,
        globals,
        trip_of,
        args: Vec::new(),
        arg_of: HashMap::new(),
    };
    let mut trips = Vec::new();
    for (lp, t) in &cand.trips {
        if t.unguarded {
            return Err(format!(
                "the trip count of {lp} comes from an ordered compare whose operands are not \
                 known, so the guard cannot check that they do not wrap"
            ));
        }
        let mut wrap = Vec::new();
        for w in &t.wrap {
            let (base, strides) = ex.affine(&w.value)?;
            wrap.push(WrapCheck {
                base,
                strides,
                signed: w.signed,
                bits: w.bits,
                top: w.top,
            });
        }
        trips.push(Trip {
            lp: lp.0,
            num: ex.expr(&t.num)?,
            div: t.div,
            exact: t.exact,
            add: t.add,
            wrap,
        });
    }
    // In the kernel's order: innermost grid loop first (grid x), see `lower`.
    let grid = cand
        .grid
        .iter()
        .rev()
        .map(|lp| ex.trip_of.get(lp).copied().ok_or("grid loop without trip"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut params = Vec::new();
    for (src, p) in lowered.sources.iter().zip(&lowered.kernel.params) {
        let bits = match p.kind {
            tensorwasm_blueprints::kernel_ir::ParamKind::Scalar(
                tensorwasm_blueprints::kernel_ir::ValType::I64,
            ) => 64,
            _ => 32,
        };
        params.push(match src {
            ParamSource::Memory => ParamValue::Memory,
            ParamSource::TrapFlag => ParamValue::TrapFlag,
            ParamSource::Local(l) => ParamValue::Arg(ex.arg(ArgSource::Local(*l))?),
            ParamSource::Global(g) => ParamValue::Arg(ex.arg(ArgSource::Global(*g))?),
            ParamSource::Trip(lp) => ParamValue::Int {
                expr: ex.expr(&Poly::sym(Sym::Trip(Loop(*lp))))?,
                bits,
            },
            ParamSource::Product(syms) => {
                let mut prod = Poly::constant(1);
                for s in syms {
                    prod = prod
                        .mul(&Poly::sym(*s))
                        .ok_or("a parameter product is too large")?;
                }
                ParamValue::Int {
                    expr: ex.expr(&prod)?,
                    bits,
                }
            }
        });
    }
    let imm_at = |off: u32| -> u64 {
        func.blocks
            .iter()
            .flat_map(|b| &b.insts)
            .find(|i| i.offset == off)
            .and_then(|i| match &i.imm {
                Imm::Mem(m) | Imm::MemLane(m, _) => Some(m.offset),
                _ => None,
            })
            .unwrap_or(0)
    };
    let mut accesses = Vec::new();
    for a in &cand.accesses {
        let (base, strides) = ex
            .affine(&a.addr)
            .map_err(|e| format!("the address at {:#x}: {e}", a.offset))?;
        // A guard the host cannot evaluate is left out: the access then always counts.
        let when = a
            .when
            .iter()
            .filter_map(|g| {
                Some(AccessGuard {
                    expr: ex.expr(&g.value).ok()?,
                    bits: g.bits,
                    nonzero: g.nonzero,
                })
            })
            .collect();
        accesses.push(AccessRange {
            base,
            strides,
            width: a.width,
            imm: imm_at(a.offset),
            group: a.group as u32,
            constant: a.constant,
            store: a.store,
            float: a.store && (a.op.starts_with("f32.") || a.op.starts_with("f64.")),
            when,
        });
    }
    let mut checks = Vec::new();
    for c in &cand.conditions {
        match c {
            Condition::AtLeastOnce { lp } => {
                checks.push(Check::AtLeastOnce(ex.trip_of[lp]));
            }
            // An inexact division makes the host's trip count evaluation decline.
            Condition::ExactTrip { .. } => {}
            Condition::NoOverlap { a, b } => checks.push(Check::NoOverlap(*a as u32, *b as u32)),
            Condition::DisjointThreads { group } => {
                checks.push(Check::DisjointThreads(*group as u32));
            }
        }
    }
    let mut live_outs = Vec::new();
    for (l, p) in &cand.live_outs {
        let ty = func
            .local_type(*l)
            .ok_or_else(|| format!("live-out l{l} does not exist"))?;
        let ty = match ty {
            WasmTy::I32 => ArgType::I32,
            WasmTy::I64 => ArgType::I64,
            other => return Err(format!("live-out l{l} has type {other}")),
        };
        live_outs.push(LiveOut {
            local: *l,
            ty,
            value: ex.expr(p)?,
        });
    }
    Ok(OffloadKernel {
        name: lowered.kernel.name.clone(),
        function: func.index,
        offset,
        ptx,
        block,
        args: ex.args,
        trips,
        grid,
        params,
        accesses,
        checks,
        min_threads: tensorwasm_analysis::candidate::MIN_THREADS,
        live_outs,
        oracle: None,
        entry_constants: Some(cand.entry_constants.clone()),
        cubins: Vec::new(),
    })
}

/// The types of the module's globals (imported first), from its binary.
pub fn global_types(wasm: &[u8]) -> Result<Vec<WasmTy>, String> {
    let mut out = Vec::new();
    let conv = WasmTy::from;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| e.to_string())? {
            wasmparser::Payload::ImportSection(s) => {
                for imp in s.into_imports() {
                    let imp = imp.map_err(|e| e.to_string())?;
                    if let wasmparser::TypeRef::Global(g) = imp.ty {
                        out.push(conv(g.content_type));
                    }
                }
            }
            wasmparser::Payload::GlobalSection(s) => {
                for g in s {
                    out.push(conv(g.map_err(|e| e.to_string())?.ty.content_type));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}
