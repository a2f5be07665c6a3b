//! Property test: random well-typed expression trees over every operator verify, emit for
//! sm_75 and sm_80, and (when ptxas is present) assemble.

use proptest::prelude::*;
use proptest::sample::select;
use tensorwasm_blueprints::kernel_ir::{
    Addr, Affine, BinOp, Expr, Kernel, KernelBuilder, LoadOp, LoopId, ParamId, Start, Stmt,
    StoreOp, UnOp, ValType,
};
use tensorwasm_blueprints::{EmitOptions, Target, emit_ptx, ptxas, verify};

const X: ParamId = ParamId(0);
const I: LoopId = LoopId(0);

fn leaf(t: ValType) -> BoxedStrategy<Expr> {
    let load =
        |op: LoadOp, off: i64| Expr::load(op, Addr::new(X, Affine::constant(off).plus(8, I)));
    match t {
        ValType::I32 => prop_oneof![
            any::<i32>().prop_map(Expr::i32),
            Just(Expr::counter(I)),
            Just(load(LoadOp::I32Load8S, 3)),
            Just(load(LoadOp::I32Load, 0)),
        ]
        .boxed(),
        ValType::I64 => prop_oneof![
            any::<i64>().prop_map(Expr::i64),
            Just(load(LoadOp::I64Load, 8)),
            Just(load(LoadOp::I64Load32S, 4)),
        ]
        .boxed(),
        ValType::F32 => prop_oneof![
            any::<u32>().prop_map(|b| Expr::f32(f32::from_bits(b))),
            Just(load(LoadOp::F32Load, 16)),
        ]
        .boxed(),
        ValType::F64 => prop_oneof![
            any::<u64>().prop_map(|b| Expr::f64(f64::from_bits(b))),
            Just(load(LoadOp::F64Load, 24)),
        ]
        .boxed(),
    }
}

fn expr(t: ValType, depth: u32) -> BoxedStrategy<Expr> {
    if depth == 0 {
        return leaf(t);
    }
    let un: Vec<UnOp> = UnOp::ALL
        .iter()
        .copied()
        .filter(|o| o.result() == t)
        .collect();
    let bin: Vec<BinOp> = BinOp::ALL
        .iter()
        .copied()
        .filter(|o| o.result() == t)
        .collect();
    let unary = select(un).prop_flat_map(move |op| {
        expr(op.operand(), depth - 1).prop_map(move |a| Expr::unary(op, a))
    });
    let binary = select(bin).prop_flat_map(move |op| {
        (expr(op.operand(), depth - 1), expr(op.operand(), depth - 1))
            .prop_map(move |(a, b)| Expr::binary(op, a, b))
    });
    let sel = (
        expr(ValType::I32, depth - 1),
        expr(t, depth - 1),
        expr(t, depth - 1),
    )
        .prop_map(|(c, a, b)| Expr::select(c, a, b));
    prop_oneof![1 => leaf(t), 3 => unary, 3 => binary, 1 => sel].boxed()
}

fn kernel(e: Expr, t: ValType) -> Kernel {
    let mut k = KernelBuilder::new("random");
    let x = k.ptr("x");
    let y = k.ptr("y");
    let n = k.scalar("n", ValType::I32);
    k.trap_flag();
    let i = k.grid(ValType::I32, Start::Const(0), 1, n);
    assert_eq!((x, i), (X, I));
    let op = match t {
        ValType::I32 => StoreOp::I32Store,
        ValType::I64 => StoreOp::I64Store,
        ValType::F32 => StoreOp::F32Store,
        ValType::F64 => StoreOp::F64Store,
    };
    k.push(Stmt::Store(
        op,
        Addr::new(y, Affine::constant(0).plus(8, i)),
        e,
    ));
    k.finish()
}

fn typed_expr() -> impl Strategy<Value = (Expr, ValType)> {
    select(vec![ValType::I32, ValType::I64, ValType::F32, ValType::F64])
        .prop_flat_map(|t| expr(t, 4).prop_map(move |e| (e, t)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_expressions_emit_and_assemble((e, t) in typed_expr()) {
        let k = kernel(e, t);
        verify(&k).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for target in [Target::SM_75, Target::SM_80] {
            let ptx = emit_ptx(&k, &EmitOptions::for_target(target))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            if ptxas::find_ptxas().is_some() {
                let r = ptxas::assemble(&ptx, &target.to_string())
                    .map_err(|e| TestCaseError::fail(format!("{e}\n{k}")))?;
                prop_assert_eq!(r.spill_stores() + r.spill_loads(), 0);
            }
        }
    }
}
