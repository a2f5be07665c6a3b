//! The verifier accepts the samples and rejects each broken invariant with a message naming it;
//! launch plans follow from kernels. All through `rejects(kernel, needle)`.

use tensorwasm_blueprints::kernel_ir::{
    Addr, Affine, BinOp, Expr, ForLoop, Kernel, KernelBuilder, LoadOp, LocalId, Start, Stmt,
    StoreOp, UnOp, ValType, verify,
};
use tensorwasm_blueprints::{Access, Error, LaunchPlan, samples};

fn rejects(k: Kernel, needle: &str) {
    match verify(&k) {
        Err(Error::Verify { message, .. }) => {
            assert!(
                message.contains(needle),
                "expected `{needle}` in `{message}`\n{k}"
            )
        }
        other => panic!("expected a verify error containing `{needle}`, got {other:?}\n{k}"),
    }
}

/// A 1-D kernel with pointers `x`, `y`, an i32 `n`, counter `i`, and `body` built by `f`.
fn kernel(f: impl FnOnce(&mut KernelBuilder, Ctx)) -> Kernel {
    let mut k = KernelBuilder::new("t");
    let (x, y) = (k.ptr("x"), k.ptr("y"));
    let n = k.scalar("n", ValType::I32);
    let i = k.grid(ValType::I32, Start::Const(0), 1, n);
    f(&mut k, Ctx { x, y, n, i });
    k.finish()
}

#[derive(Clone, Copy)]
struct Ctx {
    x: tensorwasm_blueprints::kernel_ir::ParamId,
    y: tensorwasm_blueprints::kernel_ir::ParamId,
    n: tensorwasm_blueprints::kernel_ir::ParamId,
    i: tensorwasm_blueprints::kernel_ir::LoopId,
}

fn at(p: tensorwasm_blueprints::kernel_ir::ParamId, c: Ctx) -> Addr {
    Addr::new(p, Affine::constant(0).plus(4, c.i))
}

#[test]
fn samples_verify() {
    for k in samples::all().expect("samples") {
        verify(&k).expect("sample verifies");
    }
}

#[test]
fn type_mismatch() {
    rejects(
        kernel(|k, c| {
            k.push(Stmt::Store(StoreOp::F32Store, at(c.y, c), Expr::i32(1)));
        }),
        "expected f32, found i32",
    );
    rejects(
        kernel(|k, c| {
            let v = Expr::binary(BinOp::I64Add, Expr::counter(c.i), Expr::i64(1));
            k.push(Stmt::Store(StoreOp::I64Store, at(c.y, c), v));
        }),
        "expected i64, found i32",
    );
    rejects(
        kernel(|k, c| {
            let v = Expr::select(Expr::f32(1.0), Expr::i32(1), Expr::i32(2));
            k.push(Stmt::Store(StoreOp::I32Store, at(c.y, c), v));
        }),
        "expected i32, found f32",
    );
}

#[test]
fn locals_must_be_assigned_on_every_path() {
    rejects(
        kernel(|k, c| {
            let l = k.local(ValType::I32);
            k.push(Stmt::If {
                cond: Expr::counter(c.i),
                then: vec![Stmt::Set(l, Expr::i32(1))],
                els: vec![],
            });
            k.push(Stmt::Store(StoreOp::I32Store, at(c.y, c), Expr::local(l)));
        }),
        "read before it is assigned",
    );
    rejects(
        kernel(|k, c| {
            let l = k.local(ValType::I32);
            let j = k.loop_id();
            k.push(Stmt::For(ForLoop {
                counter: j,
                ty: ValType::I32,
                start: Expr::i32(0),
                bound: Expr::param(c.n),
                step: 1,
                signed: true,
                body: vec![Stmt::Set(l, Expr::counter(j))],
            }));
            k.push(Stmt::Store(StoreOp::I32Store, at(c.y, c), Expr::local(l)));
        }),
        "read before it is assigned",
    );
    rejects(
        kernel(|k, c| {
            k.push(Stmt::Set(LocalId(7), Expr::counter(c.i)));
        }),
        "not declared",
    );
}

#[test]
fn memory_only_through_pointer_params() {
    rejects(
        kernel(|k, c| {
            k.push(Stmt::Store(StoreOp::I32Store, at(c.n, c), Expr::i32(0)));
        }),
        "not a pointer param",
    );
    rejects(
        kernel(|k, c| {
            let t = k.trap_flag();
            k.push(Stmt::Store(StoreOp::I32Store, at(t, c), Expr::i32(0)));
        }),
        "through the trap flag",
    );
    rejects(
        kernel(|k, c| {
            let a = Addr::new(c.x, Affine::constant(0).plus(4, c.y));
            k.push(Stmt::Store(StoreOp::I32Store, a, Expr::i32(0)));
        }),
        "not an integer scalar",
    );
    rejects(
        kernel(|k, c| {
            k.push(Stmt::Store(StoreOp::I64Store, at(c.y, c), Expr::param(c.x)));
        }),
        "is a pointer, not a value",
    );
}

#[test]
fn counters_are_scoped_and_bound_once() {
    rejects(
        kernel(|k, c| {
            let j = k.loop_id();
            k.push(Stmt::For(ForLoop {
                counter: j,
                ty: ValType::I32,
                start: Expr::i32(0),
                bound: Expr::i32(4),
                step: 1,
                signed: true,
                body: vec![],
            }));
            k.push(Stmt::Store(StoreOp::I32Store, at(c.y, c), Expr::counter(j)));
        }),
        "out of scope",
    );
    rejects(
        kernel(|k, c| {
            k.push(Stmt::For(ForLoop {
                counter: c.i,
                ty: ValType::I32,
                start: Expr::i32(0),
                bound: Expr::i32(4),
                step: 1,
                signed: true,
                body: vec![],
            }));
        }),
        "bound twice",
    );
    rejects(
        kernel(|k, _| {
            let j = k.loop_id();
            k.push(Stmt::For(ForLoop {
                counter: j,
                ty: ValType::I32,
                start: Expr::i32(0),
                bound: Expr::i32(4),
                step: 0,
                signed: true,
                body: vec![],
            }));
        }),
        "step 0",
    );
}

#[test]
fn trapping_ops_need_a_trap_flag() {
    rejects(
        kernel(|k, c| {
            let v = Expr::binary(BinOp::I32DivU, Expr::i32(1), Expr::counter(c.i));
            k.push(Stmt::Store(StoreOp::I32Store, at(c.y, c), v));
        }),
        "no trap flag",
    );
    rejects(
        kernel(|k, c| {
            let v = Expr::unary(UnOp::I32TruncF32S, Expr::load(LoadOp::F32Load, at(c.x, c)));
            k.push(Stmt::Store(StoreOp::I32Store, at(c.y, c), v));
        }),
        "no trap flag",
    );
    let ok = kernel(|k, c| {
        k.trap_flag();
        let v = Expr::unary(
            UnOp::I32TruncSatF32S,
            Expr::load(LoadOp::F32Load, at(c.x, c)),
        );
        k.push(Stmt::Store(StoreOp::I32Store, at(c.y, c), v));
    });
    verify(&ok).expect("trunc_sat does not trap");
}

#[test]
fn grid_and_name() {
    let mut k = kernel(|_, _| {});
    k.grid.clear();
    rejects(k, "0 grid dimensions");
    let mut k = kernel(|_, _| {});
    k.name = "has space".into();
    rejects(k, "not a PTX identifier");
    let mut k = kernel(|_, _| {});
    k.grid[0].start = Start::Const(1 << 40);
    rejects(k, "does not fit");
}

#[test]
fn deep_nesting_is_an_impl_limit_not_a_crash() {
    let mut e = Expr::i32(0);
    for _ in 0..100_000 {
        e = Expr::unary(UnOp::I32Clz, e);
    }
    let k = kernel(|k, c| {
        k.push(Stmt::Store(StoreOp::I32Store, at(c.y, c), e));
    });
    assert!(matches!(verify(&k), Err(Error::ImplLimit(_))));
    // Dropping a 100k-deep Box chain recursively would overflow the stack; leak it instead.
    std::mem::forget(k);
}

#[test]
fn launch_plans() {
    let plan = LaunchPlan::for_kernel(&samples::saxpy().expect("saxpy"), None).expect("plan");
    assert_eq!(plan.block, [256, 1, 1]);
    let acc: Vec<_> = plan.buffers.iter().map(|b| (b.param.0, b.access)).collect();
    assert_eq!(acc, vec![(0, Access::In), (1, Access::InOut)]);
    assert_eq!(plan.grid_dims(&[1000]).expect("fits"), [4, 1, 1]);
    assert_eq!(plan.grid_dims(&[0]).expect("fits"), [1, 1, 1]);
    assert!(plan.grid_dims(&[1, 2]).is_err());

    let mm = LaunchPlan::for_kernel(&samples::matmul().expect("matmul"), None).expect("plan");
    assert_eq!(mm.trips.len(), 2);
    // The tiled-matmul blueprint's block, which its PTX demands with `.reqntid`.
    assert_eq!(mm.block, [16, 16, 1]);
    assert_eq!(mm.grid_dims(&[100, 64]).expect("fits"), [7, 4, 1]);
    assert!(matches!(
        mm.grid_dims(&[1, 1 << 30]),
        Err(Error::ImplLimit(_))
    ));
    assert_eq!(
        mm.buffers.iter().map(|b| b.access).collect::<Vec<_>>(),
        [Access::In, Access::In, Access::Out]
    );
    assert!(LaunchPlan::for_kernel(&samples::vadd().expect("vadd"), Some([64, 32, 1])).is_err());
    let idiv = LaunchPlan::for_kernel(&samples::idiv().expect("idiv"), None).expect("plan");
    assert!(idiv.trap_flag.is_some());
}
