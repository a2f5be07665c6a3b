//! Shared test helpers: the one place tests run ptxas, and the operator-coverage kernels.
#![allow(dead_code)]

use tensorwasm_blueprints::kernel_ir::{
    Addr, Affine, BinKind, BinOp, Expr, Kernel, KernelBuilder, LoadOp, ParamId, Start, Stmt,
    StoreOp, UnKind, UnOp, ValType,
};
use tensorwasm_blueprints::{EmitOptions, Target, emit_ptx, ptxas};

/// The architectures every kernel is assembled for.
pub const ARCHS: [&str; 4] = ["sm_75", "sm_80", "sm_90", "sm_100"];

/// Whether the environment switch `name` is on: set to anything but empty or `0`
/// (docs/TESTING.md, "Environment switches").
pub fn switch(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether ptxas can run. Without it, prints a skip line and returns false, unless
/// `TENSORWASM_REQUIRE_PTXAS` is on, in which case it fails the test.
pub fn ptxas_available(test: &str) -> bool {
    if ptxas::find_ptxas().is_some() {
        return true;
    }
    if switch("TENSORWASM_REQUIRE_PTXAS") {
        panic!("{test}: ptxas not found and TENSORWASM_REQUIRE_PTXAS is set");
    }
    eprintln!("{test}: skipped: ptxas not found (run scripts/cuda-tools and put it on PATH)");
    false
}

/// Emits `kernel` for every arch in [`ARCHS`], assembles it with `ptxas -v`, and asserts
/// success with no spills. Returns `(arch, registers)` per arch.
pub fn check_ptxas(kernel: &Kernel) -> Vec<(String, u32)> {
    let mut regs = Vec::new();
    for arch in ARCHS {
        let target = Target::parse(arch).expect("known target");
        let ptx = emit_ptx(kernel, &EmitOptions::for_target(target))
            .unwrap_or_else(|e| panic!("{}: emit for {arch}: {e}", kernel.name));
        let report = ptxas::assemble(&ptx, arch)
            .unwrap_or_else(|e| panic!("{} for {arch}: {e}\n{ptx}", kernel.name));
        assert_eq!(
            report.spill_stores(),
            0,
            "{} spills on {arch}: {}",
            kernel.name,
            report.log
        );
        assert_eq!(
            report.spill_loads(),
            0,
            "{} spills on {arch}: {}",
            kernel.name,
            report.log
        );
        assert!(
            !report.cubin.is_empty(),
            "{}: empty cubin for {arch}",
            kernel.name
        );
        regs.push((arch.to_string(), report.max_registers()));
    }
    regs
}

fn load_for(t: ValType) -> LoadOp {
    match t {
        ValType::I32 => LoadOp::I32Load,
        ValType::I64 => LoadOp::I64Load,
        ValType::F32 => LoadOp::F32Load,
        ValType::F64 => LoadOp::F64Load,
    }
}

fn store_for(t: ValType) -> StoreOp {
    match t {
        ValType::I32 => StoreOp::I32Store,
        ValType::I64 => StoreOp::I64Store,
        ValType::F32 => StoreOp::F32Store,
        ValType::F64 => StoreOp::F64Store,
    }
}

/// One operator application in a coverage kernel.
#[derive(Clone, Copy, Debug)]
pub enum AnyOp {
    Un(UnOp),
    Bin(BinOp),
}

impl AnyOp {
    fn operands(self) -> Vec<ValType> {
        match self {
            AnyOp::Un(op) => vec![op.operand()],
            AnyOp::Bin(op) => vec![op.operand(), op.operand()],
        }
    }
    fn result(self) -> ValType {
        match self {
            AnyOp::Un(op) => op.result(),
            AnyOp::Bin(op) => op.result(),
        }
    }
    fn name(self) -> &'static str {
        match self {
            AnyOp::Un(op) => op.name(),
            AnyOp::Bin(op) => op.name(),
        }
    }
}

/// The class a coverage kernel groups an operator under (with its operand type).
pub fn class_of(op: AnyOp) -> String {
    let (ty, class) = match op {
        AnyOp::Un(u) => {
            use UnKind::*;
            let c = match u.kind() {
                Eqz | Clz | Ctz | Popcnt | Extend8S | Extend16S | Extend32S => "bits",
                Abs | Neg | Sqrt | Ceil | Floor | Trunc | Nearest => "funary",
                TruncS | TruncU | TruncSatS | TruncSatU => "trunc",
                _ => "convert",
            };
            (u.operand(), c)
        }
        AnyOp::Bin(b) => {
            use BinKind::*;
            let c = if b.is_comparison() {
                "compare"
            } else {
                match b.kind() {
                    Add | Sub | Mul | DivS | DivU | RemS | RemU | FDiv => "arith",
                    Min | Max | Copysign => "minmax",
                    _ => "bitwise",
                }
            };
            (b.operand(), c)
        }
    };
    format!("{c}_{ty}", c = class)
}

/// Every unary and binary operator.
pub fn all_ops() -> Vec<AnyOp> {
    let mut v: Vec<AnyOp> = UnOp::ALL.iter().map(|o| AnyOp::Un(*o)).collect();
    v.extend(BinOp::ALL.iter().map(|o| AnyOp::Bin(*o)));
    v
}

/// A kernel applying each of `ops` to operands loaded from `x` and storing to `y`, per thread
/// `i`: operand `j` of op `m` at `x + 4096*i + 16*m + 8*j`, its result at `y + 4096*i + 8*m`.
pub fn op_kernel(name: &str, ops: &[AnyOp]) -> Kernel {
    let mut k = KernelBuilder::new(name);
    let (x, y) = (k.ptr("x"), k.ptr("y"));
    let n = k.scalar("n", ValType::I32);
    k.trap_flag();
    let i = k.grid(ValType::I32, Start::Const(0), 1, n);
    let at = |p: ParamId, off: i64| Addr::new(p, Affine::constant(off).plus(4096, i));
    for (m, op) in ops.iter().enumerate() {
        let m = m as i64;
        let args: Vec<Expr> = op
            .operands()
            .iter()
            .enumerate()
            .map(|(j, t)| Expr::load(load_for(*t), at(x, 16 * m + 8 * j as i64)))
            .collect();
        let mut args = args.into_iter();
        let v = match (*op, args.next(), args.next()) {
            (AnyOp::Un(u), Some(a), _) => Expr::unary(u, a),
            (AnyOp::Bin(b), Some(a), Some(c)) => Expr::binary(b, a, c),
            _ => panic!("bad arity for {}", op.name()),
        };
        k.push(Stmt::Store(store_for(op.result()), at(y, 8 * m), v));
    }
    k.build().unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Coverage kernels: one per operator class and operand type.
pub fn coverage_kernels() -> Vec<(Kernel, Vec<AnyOp>)> {
    let mut groups: Vec<(String, Vec<AnyOp>)> = Vec::new();
    for op in all_ops() {
        let c = class_of(op);
        match groups.iter_mut().find(|g| g.0 == c) {
            Some(g) => g.1.push(op),
            None => groups.push((c, vec![op])),
        }
    }
    groups
        .into_iter()
        .map(|(name, ops)| (op_kernel(&format!("ops_{name}"), &ops), ops))
        .collect()
}

/// Every load and store, aligned or byte-wise: `y[i] <- op(x[i])` pairs by width.
pub fn memory_kernel(aligned: bool) -> Kernel {
    let name = if aligned {
        "mem_aligned"
    } else {
        "mem_unaligned"
    };
    let mut k = KernelBuilder::new(name);
    let (x, y) = (k.ptr("x"), k.ptr("y"));
    let n = k.scalar("n", ValType::I32);
    let i = k.grid(ValType::I32, Start::Const(0), 1, n);
    let at = |p: ParamId, off: i64| {
        let a = Addr::new(p, Affine::constant(off).plus(256, i));
        if aligned { a } else { a.unaligned() }
    };
    for (m, op) in LoadOp::ALL.iter().enumerate() {
        let v = Expr::load(*op, at(x, 16 * m as i64 + if aligned { 0 } else { 1 }));
        k.push(Stmt::Store(
            store_for(op.value_type()),
            at(y, 8 * m as i64),
            v,
        ));
    }
    for (m, op) in StoreOp::ALL.iter().enumerate() {
        let off = 16 * m as i64;
        let v = Expr::load(load_for(op.value_type()), at(x, 2048 + off));
        k.push(Stmt::Store(
            *op,
            at(y, 2048 + off + if aligned { 0 } else { 3 }),
            v,
        ));
    }
    k.build().unwrap_or_else(|e| panic!("{name}: {e}"))
}
