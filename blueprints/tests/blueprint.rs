//! Which kernels the tiled-matmul blueprint takes, and which it must leave to the generic
//! lowering (each condition in `blueprint.rs`'s docs, broken one at a time).

use tensorwasm_blueprints::kernel_ir::{
    Addr, Affine, BinOp, Expr, Kernel, ParamId, Stmt, StoreOp, UnOp,
};
use tensorwasm_blueprints::{Blueprint, EmitOptions, LaunchPlan, choose, emit_ptx, samples};

fn matmul() -> Kernel {
    samples::matmul().expect("matmul")
}

/// The matmul sample's `k` loop (body index 1) and the params `n`, `k`.
fn k_loop(k: &mut Kernel) -> &mut tensorwasm_blueprints::kernel_ir::ForLoop {
    match &mut k.body[1] {
        Stmt::For(f) => f,
        other => panic!("not the k loop: {other:?}"),
    }
}

const N: ParamId = ParamId(4);

#[test]
fn the_matmul_samples_are_tiled_and_the_others_are_not() {
    assert_eq!(choose(&matmul()), Blueprint::TiledMatmul([16, 16, 1]));
    for k in samples::all().expect("samples") {
        let want = if k.name.ends_with("matmul") {
            Blueprint::TiledMatmul([16, 16, 1])
        } else {
            Blueprint::Generic
        };
        assert_eq!(choose(&k), want, "{}", k.name);
    }
}

#[test]
fn the_tiled_ptx_demands_its_block_and_has_two_barriers() {
    let k = matmul();
    let ptx = emit_ptx(&k, &EmitOptions::default()).expect("emit");
    assert!(ptx.contains(".reqntid 16, 16, 1"), "{ptx}");
    assert_eq!(ptx.matches("bar.sync").count(), 2, "{ptx}");
    assert_eq!(
        ptx.matches(".shared .align 8 .b8 tw_tile").count(),
        2,
        "{ptx}"
    );
    assert_eq!(
        LaunchPlan::for_kernel(&k, None).expect("plan").block,
        [16, 16, 1]
    );
    let generic = emit_ptx(
        &k,
        &EmitOptions {
            generic_only: true,
            ..EmitOptions::default()
        },
    )
    .expect("emit");
    assert!(!generic.contains("bar.sync") && !generic.contains(".reqntid"));
}

#[test]
fn a_store_before_or_inside_the_loop_keeps_it_generic() {
    let c_at = Addr::new(ParamId(2), Affine::constant(0));
    let mut before = matmul();
    before.body.insert(
        0,
        Stmt::Store(StoreOp::F32Store, c_at.clone(), Expr::f32(0.0)),
    );
    assert_eq!(choose(&before), Blueprint::Generic);
    let mut inside = matmul();
    k_loop(&mut inside)
        .body
        .push(Stmt::Store(StoreOp::F32Store, c_at, Expr::f32(0.0)));
    assert_eq!(choose(&inside), Blueprint::Generic);
}

#[test]
fn a_bound_or_an_if_that_differs_between_threads_keeps_it_generic() {
    let (j, i) = (matmul().grid[0].counter, matmul().grid[1].counter);
    // A triangular loop: k < i.
    let mut tri = matmul();
    k_loop(&mut tri).bound = Expr::counter(i);
    assert_eq!(choose(&tri), Blueprint::Generic);
    // The loop under `if j < n` (differs between threads) and under `if n != 0` (does not).
    for (cond, want) in [
        (
            Expr::binary(BinOp::I32LtS, Expr::counter(j), Expr::param(N)),
            Blueprint::Generic,
        ),
        (
            Expr::unary(UnOp::I32Eqz, Expr::unary(UnOp::I32Eqz, Expr::param(N))),
            Blueprint::TiledMatmul([16, 16, 1]),
        ),
    ] {
        let mut k = matmul();
        let f = k.body.remove(1);
        k.body.insert(
            1,
            Stmt::If {
                cond,
                then: vec![f],
                els: vec![],
            },
        );
        assert_eq!(choose(&k), want);
    }
    // A local that is assigned a thread's counter is not uniform, so an `if` on it is not.
    let mut k = matmul();
    let flag = tensorwasm_blueprints::kernel_ir::LocalId(k.locals.len() as u32);
    k.locals
        .push(tensorwasm_blueprints::kernel_ir::ValType::I32);
    let f = k.body.remove(1);
    k.body.insert(1, Stmt::Set(flag, Expr::counter(j)));
    k.body.insert(
        2,
        Stmt::If {
            cond: Expr::local(flag),
            then: vec![f],
            els: vec![],
        },
    );
    assert_eq!(choose(&k), Blueprint::Generic);
}

#[test]
fn a_step_other_than_one_keeps_it_generic() {
    let mut k = matmul();
    k_loop(&mut k).step = 2;
    assert_eq!(choose(&k), Blueprint::Generic);
}
