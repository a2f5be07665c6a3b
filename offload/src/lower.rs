//! Lowering: an offloadable loop nest (an analysis [`Candidate`]) becomes a KernelIR [`Kernel`]
//! that replays, per thread, exactly the Wasm instructions of one iteration of the grid loops.
//!
//! **Threads.** Each grid loop's iteration number `k` is a grid counter (`0 <= k < T`, the trip
//! count a kernel parameter). The thread runs the blocks of the grid loops' bodies that lead to
//! the innermost grid loop, then that loop's whole body; sequential loops inside become `for`
//! loops over their iteration number with the trip count the analysis proved. Everything after
//! an inner grid loop in its parent (the induction updates) is left out: it stores nothing (the
//! detector made sure) and the guard sets the live-outs from their closed forms.
//!
//! **Control flow by predication.** Instead of rebuilding `if`/`else` from the CFG (Wasm `br` to
//! outer labels makes that shape-dependent), each block gets an `i32` flag "control reached this
//! block in this iteration": the region's head sets nothing (it runs), every edge ORs its branch
//! condition into its target's flag, and each block's statements run under `if flag`. Blocks are
//! visited in topological order, nested loops as single nodes. This is exact for any reducible
//! acyclic body and costs a few predicate instructions.
//!
//! **Values.** An integer value the analysis knows as a polynomial is rebuilt from counters and
//! parameters (wrapping arithmetic, so equal to the Wasm value); any other value is computed by
//! its own operator into a kernel local at its definition, in Wasm order, so loads, traps and
//! float rounding happen exactly as on the CPU. Wasm locals the polynomials do not cover (an
//! accumulator, a counter kept after an unrolled loop) become kernel locals written where Wasm
//! writes them.
//!
//! **Memory.** Every access goes through one pointer parameter, the *memory window*: the host
//! copies the bytes the kernel may touch (the union of the analysis's access ranges) and passes a
//! pointer biased by the window's start, so every address in the kernel is the Wasm effective
//! address itself. Addresses are affine in the counters and parameters; a product of live-ins
//! (`l4*l5`) is a parameter the host computes; a counter clang keeps after an unrolled loop is a
//! local term (see `AffineVar::Local`).

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;
use tensorwasm_analysis::NestVerdict;
use tensorwasm_analysis::candidate::Candidate;
use tensorwasm_analysis::ir::{
    Block, BlockCall, FunctionIr, Imm, Inst, Loop, OpClass, Opcode, Terminator, ValType as WasmTy,
    Value,
};
use tensorwasm_analysis::loops::{FuncInfo, analyze_function};
use tensorwasm_analysis::poly::{Poly, Sym};
use tensorwasm_analysis::symbolic::{NestEval, evaluate_nest, region_order};
use tensorwasm_blueprints::kernel_ir::{
    Addr, Affine, AffineTerm, AffineVar, BinOp, Const, Expr, Ext, ForLoop, GridDim, Kernel, LoadOp,
    LocalId, LoopId, Param, ParamId, ParamKind, Start, Stmt, StoreOp, UnOp, ValType,
};

/// What the host passes for a kernel parameter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ParamSource {
    /// The memory window: a device copy of the bytes the kernel may touch, biased so that the
    /// kernel indexes it with Wasm addresses.
    Memory,
    /// The value of a local on entry to the nest.
    Local(u32),
    /// The value of a global.
    Global(u32),
    /// The trip count of a loop of the nest (by loop index in the function).
    Trip(u32),
    /// The wrapping product of live-ins and trip counts.
    Product(Vec<Sym>),
    /// The trap flag: a `u32` in device memory, 0 before the launch.
    TrapFlag,
}

/// A lowered kernel and what its parameters are.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Lowered {
    /// The kernel.
    pub kernel: Kernel,
    /// One source per kernel parameter, in order.
    pub sources: Vec<ParamSource>,
}

/// Why a nest could not be lowered (it stays on the CPU).
pub type LowerError = String;

/// Lowers the candidate `cand` for `nest` of `func` into a kernel named `name`.
pub fn lower(
    func: &FunctionIr,
    nest: &NestVerdict,
    cand: &Candidate,
    name: &str,
) -> Result<Lowered, LowerError> {
    let info = FuncInfo::new(func);
    let facts = analyze_function(&info);
    let eval = evaluate_nest(&info, &facts, nest.root);
    let mut lw = Lowerer {
        info: &info,
        eval: &eval,
        cand,
        kernel: Kernel {
            name: name.to_string(),
            params: Vec::new(),
            trap_flag: None,
            grid: Vec::new(),
            locals: Vec::new(),
            body: Vec::new(),
        },
        sources: Vec::new(),
        param_of: HashMap::new(),
        counters: HashMap::new(),
        next_loop: 0,
        val_expr: HashMap::new(),
        wasm_local: HashMap::new(),
        preds: HashMap::new(),
        always: HashSet::new(),
        block_params: HashMap::new(),
        types: HashMap::new(),
    };
    lw.run()?;
    let Lowerer {
        mut kernel,
        mut sources,
        ..
    } = lw;
    if kernel.can_trap() {
        let id = ParamId(kernel.params.len() as u32);
        kernel.params.push(Param {
            name: "trap".into(),
            kind: ParamKind::Ptr,
        });
        kernel.trap_flag = Some(id);
        sources.push(ParamSource::TrapFlag);
    }
    tensorwasm_blueprints::kernel_ir::verify(&kernel)
        .map_err(|e| format!("lowering produced an invalid kernel: {e}"))?;
    Ok(Lowered { kernel, sources })
}

struct Lowerer<'a, 'f> {
    info: &'a FuncInfo<'f>,
    eval: &'a NestEval,
    cand: &'a Candidate,
    kernel: Kernel,
    sources: Vec<ParamSource>,
    param_of: HashMap<ParamSource, ParamId>,
    counters: HashMap<Loop, LoopId>,
    next_loop: u32,
    /// The expression for an SSA value that is not rebuilt from its polynomial.
    val_expr: HashMap<Value, Expr>,
    /// Kernel locals for the Wasm locals that are written where Wasm writes them.
    wasm_local: HashMap<u32, LocalId>,
    /// Per block: its "reached" flag.
    preds: HashMap<Block, LocalId>,
    /// Blocks (not loop headers) that every iteration of their loop reaches: a predecessor
    /// that every iteration reaches (or the header) goes to them unconditionally. They need
    /// no flag test.
    always: HashSet<Block>,
    /// Per block parameter: its kernel local.
    block_params: HashMap<Value, LocalId>,
    /// Types of SSA values.
    types: HashMap<Value, ValType>,
}

fn kty(t: WasmTy) -> Result<ValType, LowerError> {
    match t {
        WasmTy::I32 => Ok(ValType::I32),
        WasmTy::I64 => Ok(ValType::I64),
        WasmTy::F32 => Ok(ValType::F32),
        WasmTy::F64 => Ok(ValType::F64),
        other => Err(format!("values of type {other} cannot be offloaded")),
    }
}

fn unop(name: &str) -> Option<UnOp> {
    UnOp::ALL.iter().copied().find(|o| o.name() == name)
}

fn binop(name: &str) -> Option<BinOp> {
    BinOp::ALL.iter().copied().find(|o| o.name() == name)
}

fn loadop(name: &str) -> Option<LoadOp> {
    LoadOp::ALL.iter().copied().find(|o| o.name() == name)
}

fn storeop(name: &str) -> Option<StoreOp> {
    StoreOp::ALL.iter().copied().find(|o| o.name() == name)
}

fn i32c(v: i32) -> Expr {
    Expr::Const(Const::I32(v))
}

impl Lowerer<'_, '_> {
    fn func(&self) -> &FunctionIr {
        self.info.func
    }

    fn local(&mut self, ty: ValType) -> LocalId {
        let id = LocalId(self.kernel.locals.len() as u32);
        self.kernel.locals.push(ty);
        id
    }

    fn param(&mut self, src: ParamSource, kind: ParamKind, name: String) -> ParamId {
        if let Some(&p) = self.param_of.get(&src) {
            return p;
        }
        let id = ParamId(self.kernel.params.len() as u32);
        self.kernel.params.push(Param { name, kind });
        self.sources.push(src.clone());
        self.param_of.insert(src, id);
        id
    }

    fn memory(&mut self) -> ParamId {
        self.param(ParamSource::Memory, ParamKind::Ptr, "memory".into())
    }

    /// The scalar parameter for an invariant symbol (or product of them), with its type (the
    /// type of the first use for globals and trip counts).
    fn sym_param(&mut self, syms: &[Sym], want: ValType) -> Result<(ParamId, ValType), LowerError> {
        let p = match syms {
            [Sym::Local(l)] => {
                let ty = self
                    .func()
                    .local_type(*l)
                    .ok_or_else(|| format!("local {l} does not exist"))
                    .and_then(kty)?;
                self.param(
                    ParamSource::Local(*l),
                    ParamKind::Scalar(ty),
                    format!("l{l}"),
                )
            }
            [Sym::Global(g)] => self.param(
                ParamSource::Global(*g),
                ParamKind::Scalar(want),
                format!("g{g}"),
            ),
            [Sym::Trip(lp)] => self.param(
                ParamSource::Trip(lp.0),
                ParamKind::Scalar(want),
                format!("T{}", lp.0),
            ),
            _ if syms.iter().all(|s| s.is_invariant()) => {
                let name = syms
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("*");
                self.param(
                    ParamSource::Product(syms.to_vec()),
                    ParamKind::Scalar(ValType::I64),
                    name,
                )
            }
            _ => return Err(format!("{syms:?} is not fixed for the launch")),
        };
        match self.kernel.params.get(p.0 as usize).map(|x| x.kind) {
            Some(ParamKind::Scalar(t)) => Ok((p, t)),
            _ => Err("internal: a scalar source became a pointer".into()),
        }
    }

    fn counter(&mut self, lp: Loop) -> LoopId {
        if let Some(&c) = self.counters.get(&lp) {
            return c;
        }
        let c = LoopId(self.next_loop);
        self.next_loop += 1;
        self.counters.insert(lp, c);
        c
    }

    fn run(&mut self) -> Result<(), LowerError> {
        self.infer_types();
        self.choose_locals()?;
        // Innermost grid loop first: it becomes grid x, whose index varies fastest between the
        // threads of a warp, so that neighbouring threads touch neighbouring bytes of a
        // row-major array (coalesced accesses). `offload::plan_kernel` lists the trips in the
        // same order.
        let grid = self.cand.grid.clone();
        for &g in grid.iter().rev() {
            let counter = self.counter(g);
            let (trip, _) = self.sym_param(&[Sym::Trip(g)], ValType::I32)?;
            self.kernel.grid.push(GridDim {
                counter,
                ty: ValType::I32,
                start: Start::Const(0),
                step: 1,
                trip,
            });
        }
        let mut body = Vec::new();
        self.grid_region(0, &mut body)?;
        // Every kernel local starts at zero, so the verifier sees it assigned on every path;
        // the predication guarantees Wasm reads only what Wasm wrote.
        let mut init: Vec<Stmt> = self
            .kernel
            .locals
            .iter()
            .enumerate()
            .map(|(i, t)| Stmt::Set(LocalId(i as u32), zero(*t)))
            .collect();
        init.extend(body);
        self.kernel.body = init;
        Ok(())
    }

    /// The region of grid loop number `d`: its blocks up to the next grid loop, or all of them
    /// for the innermost one.
    fn grid_region(&mut self, d: usize, out: &mut Vec<Stmt>) -> Result<(), LowerError> {
        let lp = self.cand.grid[d];
        let next = self.cand.grid.get(d + 1).copied();
        self.region(lp, next, out)
    }

    /// Emits the blocks of `lp`'s body (one iteration). With `stop`, the nested grid loop
    /// `stop` is emitted inline (one iteration of it) and nothing after it.
    fn region(
        &mut self,
        lp: Loop,
        stop: Option<Loop>,
        out: &mut Vec<Stmt>,
    ) -> Result<(), LowerError> {
        let func = self.info.func;
        let header = func
            .loop_data(lp)
            .map(|d| d.header)
            .ok_or("loop without a header")?;
        let order = region_order(self.info, lp);
        // Reset the flags of this region's blocks.
        for &n in &order {
            if n != header {
                let p = self.pred_local(n);
                out.push(Stmt::Set(p, i32c(0)));
            }
        }
        for node in order {
            let child = func
                .block(node)
                .and_then(|b| b.innermost_loop)
                .filter(|&c| c != lp && func.loop_data(c).is_some_and(|d| d.header == node));
            let mut stmts = Vec::new();
            match child {
                Some(c) if Some(c) == stop => {
                    let d = self.cand.grid.iter().position(|&g| g == c).unwrap_or(0);
                    self.grid_region(d, &mut stmts)?;
                    self.wrap(node, header, stmts, out);
                    return Ok(());
                }
                Some(c) => {
                    self.seq_loop(c, lp, &mut stmts)?;
                }
                None => {
                    self.block(node, lp, &mut stmts)?;
                }
            }
            self.wrap(node, header, stmts, out);
        }
        Ok(())
    }

    fn wrap(&mut self, node: Block, header: Block, stmts: Vec<Stmt>, out: &mut Vec<Stmt>) {
        if node == header || self.always.contains(&node) {
            out.extend(stmts);
        } else if !stmts.is_empty() {
            let p = self.pred_local(node);
            out.push(Stmt::If {
                cond: Expr::Local(p),
                then: stmts,
                els: Vec::new(),
            });
        }
    }

    fn pred_local(&mut self, b: Block) -> LocalId {
        if let Some(&p) = self.preds.get(&b) {
            return p;
        }
        let p = self.local(ValType::I32);
        self.preds.insert(b, p);
        p
    }

    /// A sequential loop `c` nested in `parent`: a `for` over its iteration number.
    fn seq_loop(&mut self, c: Loop, parent: Loop, out: &mut Vec<Stmt>) -> Result<(), LowerError> {
        let counter = self.counter(c);
        let (trip, _) = self.sym_param(&[Sym::Trip(c)], ValType::I32)?;
        let mut body = Vec::new();
        self.region(c, None, &mut body)?;
        out.push(Stmt::For(ForLoop {
            counter,
            ty: ValType::I32,
            start: i32c(0),
            bound: Expr::Param(trip),
            step: 1,
            signed: false,
            body,
        }));
        // The one exit edge is taken after the last iteration.
        let func = self.info.func;
        let data = func.loop_data(c).ok_or("loop without data")?;
        let exits = self.exit_edges(c);
        let [exit] = &exits[..] else {
            return Err(format!("{c} has {} exit edges", exits.len()));
        };
        if !exit.args.is_empty() {
            return Err(format!("{c} passes values out on the stack"));
        }
        if self.info.in_loop(parent, exit.block) {
            let p = self.pred_local(exit.block);
            out.push(Stmt::Set(p, i32c(1)));
            // The loop runs to its exit whenever it is reached.
            if self.always.contains(&data.header) {
                self.always.insert(exit.block);
            }
        }
        Ok(())
    }

    /// The edges that leave loop `lp`.
    fn exit_edges(&self, lp: Loop) -> Vec<BlockCall> {
        let func = self.info.func;
        let mut exits = Vec::new();
        for &b in func.loop_data(lp).map(|d| &d.blocks[..]).unwrap_or(&[]) {
            let Some(bd) = func.block(b) else { continue };
            for s in bd.term.successors() {
                if !self.info.in_loop(lp, s.block) {
                    exits.push(s.clone());
                }
            }
        }
        exits
    }

    /// One block's instructions and its outgoing edges (inside `lp`).
    fn block(&mut self, b: Block, lp: Loop, out: &mut Vec<Stmt>) -> Result<(), LowerError> {
        let func = self.info.func;
        let bd = func.block(b).ok_or("missing block")?;
        for (i, inst) in bd.insts.iter().enumerate() {
            self.inst(b, i, inst, out)?;
        }
        let header = func.loop_data(lp).map(|d| d.header);
        let mut edges: Vec<(Block, Expr, &Vec<Value>)> = Vec::new();
        match &bd.term {
            Terminator::Jump(c) => edges.push((c.block, i32c(1), &c.args)),
            Terminator::BrIf {
                cond,
                then,
                otherwise,
            } => {
                let c = self.val(*cond)?;
                edges.push((
                    then.block,
                    Expr::binary(BinOp::I32Ne, c.clone(), i32c(0)),
                    &then.args,
                ));
                edges.push((
                    otherwise.block,
                    Expr::unary(UnOp::I32Eqz, c),
                    &otherwise.args,
                ));
            }
            Terminator::BrTable {
                index,
                targets,
                default,
            } => {
                let ix = self.val(*index)?;
                for (n, t) in targets.iter().enumerate() {
                    let n = i32::try_from(n).map_err(|_| "br_table too large")?;
                    edges.push((
                        t.block,
                        Expr::binary(BinOp::I32Eq, ix.clone(), i32c(n)),
                        &t.args,
                    ));
                }
                let n = i32::try_from(targets.len()).map_err(|_| "br_table too large")?;
                edges.push((
                    default.block,
                    Expr::binary(BinOp::I32GeU, ix, i32c(n)),
                    &default.args,
                ));
            }
            Terminator::Return(_) => return Err("returns from inside the nest".into()),
            Terminator::Unreachable => return Ok(()),
        }
        // A conditional branch whose other way leaves the loop: it is the loop's exit test (a
        // loop has one exit edge, taken after its last iteration), so within the counted
        // iterations it always goes on inside. (The trip count is exact: a run in which the
        // exit came early would have had another trip count.)
        let exits_here = |t: Block| Some(t) != header && !self.info.in_loop(lp, t);
        let stays = matches!(&bd.term, Terminator::BrIf { then, otherwise, .. }
            if exits_here(then.block) != exits_here(otherwise.block))
            && self.exit_edges(lp).len() == 1;
        let reached = Some(b) == header || self.always.contains(&b);
        for (target, mut cond, args) in edges {
            // Back edges and exits are the loop's business (counted iterations).
            if Some(target) == header || !self.info.in_loop(lp, target) {
                continue;
            }
            if stays {
                cond = i32c(1);
            }
            if reached && matches!(cond, Expr::Const(Const::I32(1))) {
                self.always.insert(target);
            }
            let params: Vec<Value> = func
                .block(target)
                .map(|t| t.params.clone())
                .unwrap_or_default();
            let mut sets = Vec::new();
            for (p, a) in params.iter().zip(args) {
                let l = self.block_param(*p)?;
                let v = self.val(*a)?;
                sets.push(Stmt::Set(l, v));
            }
            let flag = self.pred_local(target);
            if !sets.is_empty() {
                out.push(Stmt::If {
                    cond: cond.clone(),
                    then: sets,
                    els: Vec::new(),
                });
            }
            out.push(Stmt::Set(
                flag,
                Expr::binary(BinOp::I32Or, Expr::Local(flag), cond),
            ));
        }
        Ok(())
    }

    fn block_param(&mut self, p: Value) -> Result<LocalId, LowerError> {
        if let Some(&l) = self.block_params.get(&p) {
            return Ok(l);
        }
        let ty = *self
            .types
            .get(&p)
            .ok_or_else(|| format!("block parameter {p} has no known type"))?;
        let l = self.local(ty);
        self.block_params.insert(p, l);
        self.val_expr.insert(p, Expr::Local(l));
        Ok(l)
    }

    /// The expression for SSA value `v` at a use.
    fn val(&mut self, v: Value) -> Result<Expr, LowerError> {
        if let Some(e) = self.val_expr.get(&v) {
            return Ok(e.clone());
        }
        let ty = self.types.get(&v).copied();
        if let Some(ty @ (ValType::I32 | ValType::I64)) = ty
            && let Some(p) = self.poly(v)
        {
            return self.poly_expr(&p, ty);
        }
        if let Some(&l) = self.block_params.get(&v) {
            return Ok(Expr::Local(l));
        }
        Err(format!("value {v} is not available to the kernel"))
    }

    fn poly(&self, v: Value) -> Option<Poly> {
        self.eval.values.get(&v)?.as_ref()?.single().cloned()
    }

    /// `p` in wrapping `ty` arithmetic.
    fn poly_expr(&mut self, p: &Poly, ty: ValType) -> Result<Expr, LowerError> {
        let (add, mul) = match ty {
            ValType::I32 => (BinOp::I32Add, BinOp::I32Mul),
            _ => (BinOp::I64Add, BinOp::I64Mul),
        };
        let konst = |c: i64| match ty {
            ValType::I32 => Expr::Const(Const::I32(c as i32)),
            _ => Expr::Const(Const::I64(c)),
        };
        let mut sum: Option<Expr> = None;
        for (m, c) in p.terms() {
            let mut term: Option<Expr> = if c == 1 && !m.is_empty() {
                None
            } else {
                Some(konst(c))
            };
            for &s in m {
                let f = self.sym_expr(s, ty)?;
                term = Some(match term {
                    None => f,
                    Some(t) => Expr::binary(mul, t, f),
                });
            }
            let term = term.unwrap_or_else(|| konst(1));
            sum = Some(match sum {
                None => term,
                Some(acc) => Expr::binary(add, acc, term),
            });
        }
        Ok(sum.unwrap_or_else(|| konst(0)))
    }

    fn sym_expr(&mut self, s: Sym, ty: ValType) -> Result<Expr, LowerError> {
        let (e, et) = match s {
            Sym::Iter(lp) => (Expr::Counter(self.counter(lp)), ValType::I32),
            Sym::Local(_) | Sym::Global(_) | Sym::Trip(_) => {
                let (p, pt) = self.sym_param(&[s], ty)?;
                (Expr::Param(p), pt)
            }
            Sym::Head(..) => return Err("internal: head symbol in the last pass".into()),
        };
        Ok(match (et, ty) {
            (a, b) if a == b => e,
            (ValType::I32, ValType::I64) => Expr::unary(UnOp::I64ExtendI32U, e),
            (ValType::I64, ValType::I32) => Expr::unary(UnOp::I32WrapI64, e),
            _ => return Err(format!("{s} is not an integer")),
        })
    }

    /// Types of the SSA values of the nest.
    fn infer_types(&mut self) {
        let func = self.info.func;
        for _ in 0..3 {
            for bd in &func.blocks {
                for inst in &bd.insts {
                    if let (Some(&r), Some(t)) = (inst.results.first(), self.result_type(inst)) {
                        self.types.insert(r, t);
                    }
                }
                for call in bd.term.successors() {
                    let Some(target) = func.block(call.block) else {
                        continue;
                    };
                    for (p, a) in target.params.iter().zip(&call.args) {
                        if let Some(&t) = self.types.get(a) {
                            self.types.insert(*p, t);
                        }
                    }
                }
            }
        }
    }

    fn result_type(&self, inst: &Inst) -> Option<ValType> {
        let name = inst.op.name();
        match (inst.op, &inst.imm) {
            (Opcode::Scalar(_), Imm::Local(l)) => kty(self.func().local_type(*l)?).ok(),
            (_, Imm::Int(_)) if name == "i32.const" => Some(ValType::I32),
            (_, Imm::Int(_)) => Some(ValType::I64),
            (_, Imm::FloatBits(_)) if name == "f32.const" => Some(ValType::F32),
            (_, Imm::FloatBits(_)) => Some(ValType::F64),
            _ if name == "select" => inst.args.first().and_then(|a| self.types.get(a).copied()),
            _ if name == "global.get" => Some(ValType::I32),
            _ => {
                if let Some(op) = loadop(&name) {
                    return Some(op.value_type());
                }
                if let Some(op) = unop(&name) {
                    return Some(op.result());
                }
                binop(&name).map(|op| op.result())
            }
        }
    }

    /// Wasm locals that need a kernel local: read somewhere in the nest as a value the
    /// polynomials do not give.
    fn choose_locals(&mut self) -> Result<(), LowerError> {
        let root = self.cand.grid.first().copied().ok_or("no grid")?;
        let written: BTreeSet<u32> = self.info.local_sets(root).into_keys().collect();
        let grid_ivs: BTreeSet<u32> = self
            .cand
            .grid
            .iter()
            .filter_map(|g| self.cand.ivs.get(g))
            .flat_map(|m| m.keys().copied())
            .collect();
        let mut need = BTreeSet::new();
        for (_, _, inst) in self.info.insts_in(root) {
            if let (Opcode::Scalar(_), Imm::Local(l)) = (inst.op, &inst.imm)
                && inst.op.name() == "local.get"
                && written.contains(l)
            {
                let ty = self.func().local_type(*l).ok_or("bad local")?;
                let known = matches!(ty, WasmTy::I32 | WasmTy::I64)
                    && inst.results.first().and_then(|r| self.poly(*r)).is_some();
                if !known {
                    need.insert(*l);
                }
            }
        }
        for l in need {
            if grid_ivs.contains(&l) {
                return Err(format!(
                    "l{l}, an induction variable of a grid loop, has no closed form at every use"
                ));
            }
            let ty = kty(self.func().local_type(l).ok_or("bad local")?)?;
            let kl = self.local(ty);
            self.wasm_local.insert(l, kl);
        }
        Ok(())
    }

    fn fresh(&mut self, v: Value, e: Expr, out: &mut Vec<Stmt>) -> Result<(), LowerError> {
        let ty = *self
            .types
            .get(&v)
            .ok_or_else(|| format!("value {v} has no known type"))?;
        let l = self.local(ty);
        out.push(Stmt::Set(l, e));
        self.val_expr.insert(v, Expr::Local(l));
        Ok(())
    }

    fn inst(
        &mut self,
        b: Block,
        i: usize,
        inst: &Inst,
        out: &mut Vec<Stmt>,
    ) -> Result<(), LowerError> {
        let name = inst.op.name();
        let result = inst.results.first().copied();
        let int_poly = |s: &Self, v: Option<Value>| {
            v.is_some_and(|v| {
                matches!(s.types.get(&v), Some(ValType::I32 | ValType::I64)) && s.poly(v).is_some()
            })
        };
        match (inst.op, &inst.imm) {
            (_, Imm::Local(l)) if name == "local.get" => {
                let Some(r) = result else { return Ok(()) };
                if int_poly(self, result) {
                    return Ok(());
                }
                let e = match self.wasm_local.get(l) {
                    Some(&kl) => Expr::Local(kl),
                    None => {
                        let ty = kty(self.func().local_type(*l).ok_or("bad local")?)?;
                        let (p, _) = self.sym_param(&[Sym::Local(*l)], ty)?;
                        Expr::Param(p)
                    }
                };
                // A copy: Wasm may overwrite the local while this value is still in use.
                self.fresh(r, e, out)
            }
            (_, Imm::Local(l)) => {
                // local.set / local.tee
                let Some(&a) = inst.args.first() else {
                    return Err("local.set without operand".into());
                };
                if let Some(&kl) = self.wasm_local.get(l) {
                    let v = self.val(a)?;
                    out.push(Stmt::Set(kl, v));
                }
                if let Some(r) = result
                    && !int_poly(self, result)
                {
                    let v = self.val(a)?;
                    self.val_expr.insert(r, v);
                }
                Ok(())
            }
            (_, Imm::Int(c)) => {
                if let Some(r) = result {
                    let e = if name == "i32.const" {
                        Expr::Const(Const::I32(*c as i32))
                    } else {
                        Expr::Const(Const::I64(*c))
                    };
                    self.val_expr.insert(r, e);
                }
                Ok(())
            }
            (_, Imm::FloatBits(bits)) => {
                if let Some(r) = result {
                    let e = if name == "f32.const" {
                        Expr::Const(Const::F32(*bits as u32))
                    } else {
                        Expr::Const(Const::F64(*bits))
                    };
                    self.val_expr.insert(r, e);
                }
                Ok(())
            }
            (_, Imm::Global(g)) if name == "global.get" => {
                if int_poly(self, result) {
                    return Ok(());
                }
                Err(format!("reads global {g} as a non-integer"))
            }
            (_, Imm::Mem(_)) if inst.op.class() == OpClass::Load => {
                let op = loadop(&name).ok_or_else(|| format!("{name} is not supported"))?;
                let addr = self.addr(b, i, inst)?;
                let r = result.ok_or("load without result")?;
                self.fresh(r, Expr::Load(op, addr), out)
            }
            (_, Imm::Mem(_)) if inst.op.class() == OpClass::Store => {
                let op = storeop(&name).ok_or_else(|| format!("{name} is not supported"))?;
                let addr = self.addr(b, i, inst)?;
                let v = inst.args.get(1).ok_or("store without value")?;
                let v = self.val(*v)?;
                out.push(Stmt::Store(op, addr, v));
                Ok(())
            }
            _ if name == "drop" || name == "nop" => Ok(()),
            _ if name == "select" => {
                let [a, bb, c] = inst.args[..] else {
                    return Err("select arity".into());
                };
                let r = result.ok_or("select without result")?;
                if int_poly(self, result) {
                    return Ok(());
                }
                let e = Expr::select(self.val(c)?, self.val(a)?, self.val(bb)?);
                self.fresh(r, e, out)
            }
            _ => {
                let r = result.ok_or_else(|| format!("{name} is not supported"))?;
                // Division and remainder must run even when the value is known (they trap).
                let traps = binop(&name).is_some_and(|o| o.can_trap())
                    || unop(&name).is_some_and(|o| o.can_trap());
                if int_poly(self, result) && !traps {
                    return Ok(());
                }
                let e = if let Some(op) = unop(&name) {
                    let [a] = inst.args[..] else {
                        return Err(format!("{name} arity"));
                    };
                    Expr::unary(op, self.val(a)?)
                } else if let Some(op) = binop(&name) {
                    let [a, c] = inst.args[..] else {
                        return Err(format!("{name} arity"));
                    };
                    Expr::binary(op, self.val(a)?, self.val(c)?)
                } else {
                    return Err(format!("{name} is not supported in kernels"));
                };
                self.fresh(r, e, out)
            }
        }
    }

    /// The address of the access at `(b, i)`.
    fn addr(&mut self, b: Block, i: usize, inst: &Inst) -> Result<Addr, LowerError> {
        let memory = self.memory();
        let access = self
            .eval
            .accesses
            .iter()
            .find(|a| a.block == b && a.index == i);
        let single = access
            .and_then(|a| a.addr.as_ref())
            .and_then(|a| a.single().cloned());
        let offset = match single {
            Some(p) => self.poly_affine(&p)?,
            None => {
                let Imm::Mem(m) = &inst.imm else {
                    return Err("access without memarg".into());
                };
                let a = *inst.args.first().ok_or("access without address")?;
                let mut aff = self.value_affine(a, 0)?;
                aff.constant = aff
                    .constant
                    .checked_add(i64::try_from(m.offset).map_err(|_| "offset too large")?)
                    .ok_or("offset overflow")?;
                aff
            }
        };
        // Every access is naturally aligned whenever the kernel runs: the host declines a
        // launch (`misaligned`) unless each access's first address and its stride in every
        // loop that runs more than once are multiples of its width, and it keeps device
        // addresses congruent to Wasm addresses modulo 16 (daemon/src/offload.rs, `check`).
        // So no access needs the emitter's byte-wise form, and the interpreter, which faults
        // on a misaligned access, shows any hole in that argument as an oracle failure.
        let aligned = true;
        Ok(Addr {
            base: memory,
            offset,
            aligned,
        })
    }

    fn poly_affine(&mut self, p: &Poly) -> Result<Affine, LowerError> {
        let mut aff = Affine::constant(p.constant_term());
        for (m, c) in p.terms() {
            if m.is_empty() {
                continue;
            }
            let iters: Vec<Sym> = m
                .iter()
                .copied()
                .filter(|s| matches!(s, Sym::Iter(_)))
                .collect();
            let invs: Vec<Sym> = m
                .iter()
                .copied()
                .filter(|s| !matches!(s, Sym::Iter(_)))
                .collect();
            let term = match (&iters[..], invs.is_empty()) {
                ([Sym::Iter(lp)], true) => AffineTerm {
                    coef: c,
                    var: AffineVar::Counter(self.counter(*lp)),
                    ext: Ext::Signed,
                    stride: None,
                },
                ([Sym::Iter(lp)], false) => {
                    let (s, _) = self.sym_param(&invs, ValType::I32)?;
                    AffineTerm {
                        coef: c,
                        var: AffineVar::Counter(self.counter(*lp)),
                        ext: Ext::Signed,
                        stride: Some((s, Ext::Unsigned)),
                    }
                }
                ([], false) => {
                    let (s, _) = self.sym_param(&invs, ValType::I32)?;
                    AffineTerm {
                        coef: c,
                        var: AffineVar::Param(s),
                        ext: Ext::Unsigned,
                        stride: None,
                    }
                }
                _ => return Err(format!("address term {c}*{m:?} is not affine")),
            };
            aff.terms.push(term);
        }
        Ok(aff)
    }

    /// An address operand that is not a single polynomial, from its instructions: sums,
    /// constant multiples and shifts of polynomials and of locals the thread computes.
    fn value_affine(&mut self, v: Value, depth: u32) -> Result<Affine, LowerError> {
        if depth > 32 {
            return Err("address expression too deep".into());
        }
        if let Some(p) = self.poly(v) {
            return self.poly_affine(&p);
        }
        if let Some(Expr::Local(l)) = self.val_expr.get(&v) {
            let l = *l;
            if self.kernel.locals.get(l.0 as usize) != Some(&ValType::I32) {
                return Err("64-bit address".into());
            }
            return Ok(Affine::constant(0).plus_ext(1, AffineVar::Local(l), Ext::Unsigned));
        }
        let inst = self.info.def(v).ok_or("address from a block parameter")?;
        let name = inst.op.name();
        let args = inst.args.clone();
        let scale = |a: Affine, k: i64| -> Option<Affine> {
            Some(Affine {
                constant: a.constant.checked_mul(k)?,
                terms: a
                    .terms
                    .into_iter()
                    .map(|mut t| {
                        t.coef = t.coef.checked_mul(k)?;
                        Some(t)
                    })
                    .collect::<Option<Vec<_>>>()?,
            })
        };
        match (name.as_str(), &args[..]) {
            ("local.tee", [a]) => self.value_affine(*a, depth + 1),
            ("i32.add", [a, b]) | ("i32.sub", [a, b]) => {
                let x = self.value_affine(*a, depth + 1)?;
                let mut y = self.value_affine(*b, depth + 1)?;
                if name == "i32.sub" {
                    y = scale(y, -1).ok_or("overflow")?;
                }
                let mut out = x;
                out.constant = out.constant.checked_add(y.constant).ok_or("overflow")?;
                out.terms.extend(y.terms);
                Ok(out)
            }
            ("i32.shl", [a, b]) | ("i32.mul", [a, b]) => {
                let k = self
                    .poly(*b)
                    .and_then(|p| p.as_constant())
                    .ok_or("address multiplies two unknowns")?;
                let k = if name == "i32.shl" {
                    1i64.checked_shl(u32::try_from(k & 31).map_err(|_| "bad shift")?)
                        .ok_or("bad shift")?
                } else {
                    k
                };
                let x = self.value_affine(*a, depth + 1)?;
                scale(x, k).ok_or_else(|| "overflow".into())
            }
            _ => Err(format!("address computed by {name} is not affine")),
        }
    }
}

fn zero(t: ValType) -> Expr {
    match t {
        ValType::I32 => Expr::Const(Const::I32(0)),
        ValType::I64 => Expr::Const(Const::I64(0)),
        ValType::F32 => Expr::Const(Const::F32(0)),
        ValType::F64 => Expr::Const(Const::F64(0)),
    }
}
