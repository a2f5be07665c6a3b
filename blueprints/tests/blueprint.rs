//! Which kernels the tiled-matmul, tiled-stencil and tiled-conv2d blueprints take, and which they
//! must leave to the generic lowering (each condition in the docs of `src/blueprint/`'s modules,
//! broken one at a time).

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
        } else if k.name == "stencil2d" {
            Blueprint::TiledStencil([16, 16, 1])
        } else if k.name == "conv2d" {
            Blueprint::TiledConv2d([16, 16, 1])
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
fn loads_under_an_if_inside_the_loop_are_not_staged() {
    // `for k { if n { acc += a[i][k] * b[k][j] } }`: the `if` may skip some `k` (and a
    // condition on a live-in lets the host leave those loads out of its checks), so neither
    // load is staged and nothing is left to tile.
    let mut k = matmul();
    let body = std::mem::take(&mut k_loop(&mut k).body);
    k_loop(&mut k).body.push(Stmt::If {
        cond: Expr::param(N),
        then: body,
        els: vec![],
    });
    assert_eq!(choose(&k), Blueprint::Generic);
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

fn stencil() -> Kernel {
    samples::stencil2d().expect("stencil2d")
}

/// The stencil sample's one statement: `out[i][j] = 0.25 * (sum of four loads)`.
fn stencil_store(k: &mut Kernel) -> (&mut Addr, &mut Expr) {
    match &mut k.body[0] {
        Stmt::Store(_, a, e) => (a, e),
        other => panic!("not the store: {other:?}"),
    }
}

#[test]
fn the_tiled_stencil_ptx_demands_its_block_and_has_one_barrier() {
    let k = stencil();
    let ptx = emit_ptx(&k, &EmitOptions::default()).expect("emit");
    assert!(ptx.contains(".reqntid 16, 16, 1"), "{ptx}");
    assert_eq!(ptx.matches("bar.sync").count(), 1, "{ptx}");
    // One tile for the four loads of `in`.
    assert_eq!(ptx.matches(".shared .align").count(), 1, "{ptx}");
    assert_eq!(ptx.matches("ld.shared").count(), 4, "{ptx}");
    assert_eq!(
        LaunchPlan::for_kernel(&k, None).expect("plan").block,
        [16, 16, 1]
    );
}

#[test]
fn a_stencil_that_could_not_reuse_or_whose_offsets_are_not_fixed_stays_generic() {
    // Only one load of an array: nothing to share.
    let mut one = stencil();
    *stencil_store(&mut one).1 = Expr::load(
        tensorwasm_blueprints::kernel_ir::LoadOp::F32Load,
        stencil_store(&mut stencil()).0.clone(),
    );
    assert_eq!(choose(&one), Blueprint::Generic);
    // A halo wider than 8 elements: the loads reach 5 rows up and down.
    let mut wide = stencil();
    let w = ParamId(2);
    fn shift_rows(e: &mut Expr, w: ParamId, by: i64) {
        match e {
            Expr::Load(_, a) => {
                for t in &mut a.offset.terms {
                    if t.var == tensorwasm_blueprints::kernel_ir::AffineVar::Param(w) && t.coef != 0
                    {
                        t.coef *= by;
                    }
                }
            }
            Expr::Binary(_, a, b) => {
                shift_rows(a, w, by);
                shift_rows(b, w, by);
            }
            Expr::Unary(_, a) => shift_rows(a, w, by),
            _ => {}
        }
    }
    shift_rows(stencil_store(&mut wide).1, w, 5);
    assert_eq!(choose(&wide), Blueprint::Generic);
    // Shifted by 4 rows each way (a halo of 8) it still matches.
    let mut four = stencil();
    shift_rows(stencil_store(&mut four).1, w, 4);
    assert_eq!(choose(&four), Blueprint::TiledStencil([16, 16, 1]));
    // A grid counter that starts at a run-time value could wrap: generic.
    let mut start = stencil();
    start.grid[0].start = tensorwasm_blueprints::kernel_ir::Start::Param(ParamId(3));
    assert_eq!(choose(&start), Blueprint::Generic);
    // A step of 2 along x: neighbouring threads are not neighbouring elements.
    let mut step = stencil();
    step.grid[0].step = 2;
    assert_eq!(choose(&step), Blueprint::Generic);
}

#[test]
fn a_store_before_the_stencil_loads_or_a_branch_that_differs_keeps_it_generic() {
    let (j, _) = (stencil().grid[0].counter, stencil().grid[1].counter);
    let out_at = stencil_store(&mut stencil()).0.clone();
    // A store first: it could change a value before another thread's staged load of it.
    let mut before = stencil();
    before
        .body
        .insert(0, Stmt::Store(StoreOp::F32Store, out_at, Expr::f32(0.0)));
    assert_eq!(choose(&before), Blueprint::Generic);
    // Under `if j < w` (differs between threads): generic; under `if w != 0`: tiled.
    for (cond, want) in [
        (
            Expr::binary(BinOp::I32LtS, Expr::counter(j), Expr::param(ParamId(2))),
            Blueprint::Generic,
        ),
        (
            Expr::unary(
                UnOp::I32Eqz,
                Expr::unary(UnOp::I32Eqz, Expr::param(ParamId(2))),
            ),
            Blueprint::TiledStencil([16, 16, 1]),
        ),
    ] {
        let mut k = stencil();
        let s = k.body.remove(0);
        k.body.push(Stmt::If {
            cond,
            then: vec![s],
            els: vec![],
        });
        assert_eq!(choose(&k), want);
    }
}

fn conv2d() -> Kernel {
    samples::conv2d().expect("conv2d")
}

/// The conv2d sample's `ky` loop (body index 1).
fn ky_loop(k: &mut Kernel) -> &mut tensorwasm_blueprints::kernel_ir::ForLoop {
    match &mut k.body[1] {
        Stmt::For(f) => f,
        other => panic!("not the ky loop: {other:?}"),
    }
}

/// The conv2d sample's `kx` loop, in the `ky` loop.
fn kx_loop(k: &mut Kernel) -> &mut tensorwasm_blueprints::kernel_ir::ForLoop {
    match &mut ky_loop(k).body[0] {
        Stmt::For(f) => f,
        other => panic!("not the kx loop: {other:?}"),
    }
}

#[test]
fn the_conv2d_ptx_fills_one_window_and_keeps_the_direct_loops() {
    let k = conv2d();
    let ptx = emit_ptx(&k, &EmitOptions::default()).expect("emit");
    assert!(ptx.contains(".reqntid 16, 16, 1"), "{ptx}");
    assert_eq!(ptx.matches("bar.sync").count(), 1, "{ptx}");
    assert_eq!(ptx.matches(".shared .align").count(), 1, "{ptx}");
    // The input is read from the window; the filter, and the input on the direct way (a filter
    // larger than the window), from global memory.
    assert!(ptx.contains("ld.shared.f32"), "{ptx}");
    assert!(ptx.matches("ld.global.f32").count() >= 3, "{ptx}");
    assert_eq!(
        LaunchPlan::for_kernel(&k, None).expect("plan").block,
        [16, 16, 1]
    );
}

#[test]
fn a_conv2d_whose_filter_loops_break_a_rule_stays_generic() {
    let tiled = Blueprint::TiledConv2d([16, 16, 1]);
    assert_eq!(choose(&conv2d()), tiled);
    // A filter loop that starts at 1, or steps by 2.
    let mut start = conv2d();
    kx_loop(&mut start).start = Expr::i32(1);
    assert_eq!(choose(&start), Blueprint::Generic);
    let mut step = conv2d();
    ky_loop(&mut step).step = 2;
    assert_eq!(choose(&step), Blueprint::Generic);
    // A bound that differs between threads (a triangular filter: kx < x).
    let x = conv2d().grid[0].counter;
    let mut tri = conv2d();
    kx_loop(&mut tri).bound = Expr::counter(x);
    assert_eq!(choose(&tri), Blueprint::Generic);
    // A store inside the filter loops.
    let out_at = match &conv2d().body[2] {
        Stmt::Store(_, a, _) => a.clone(),
        other => panic!("not the store: {other:?}"),
    };
    let mut store = conv2d();
    kx_loop(&mut store)
        .body
        .push(Stmt::Store(StoreOp::F32Store, out_at, Expr::f32(0.0)));
    assert_eq!(choose(&store), Blueprint::Generic);
    // The load under an `if` in the kx loop: not every (ky, kx) runs it.
    let mut under = conv2d();
    let body = std::mem::take(&mut kx_loop(&mut under).body);
    kx_loop(&mut under).body.push(Stmt::If {
        cond: Expr::counter(x),
        then: body,
        els: vec![],
    });
    assert_eq!(choose(&under), Blueprint::Generic);
    // The kx loop under an `if` in the ky loop: the same.
    let mut nested = conv2d();
    let inner = ky_loop(&mut nested).body.remove(0);
    ky_loop(&mut nested).body.push(Stmt::If {
        cond: Expr::param(ParamId(4)),
        then: vec![inner],
        els: vec![],
    });
    assert_eq!(choose(&nested), Blueprint::Generic);
}

#[test]
fn a_conv2d_load_that_does_not_move_with_the_filter_as_with_the_grid_stays_generic() {
    // `in[(y + ky)·w + x + 2·kx]`: kx moves the address twice as far as x.
    fn scale(e: &mut Expr, by: i64, cols: tensorwasm_blueprints::kernel_ir::LoopId) {
        match e {
            Expr::Load(_, a) => {
                for t in &mut a.offset.terms {
                    if t.var == tensorwasm_blueprints::kernel_ir::AffineVar::Counter(cols)
                        && t.stride.is_none()
                        && a.base == ParamId(0)
                    {
                        t.coef *= by;
                    }
                }
            }
            Expr::Binary(_, a, b) => {
                scale(a, by, cols);
                scale(b, by, cols);
            }
            Expr::Unary(_, a) => scale(a, by, cols),
            _ => {}
        }
    }
    let mut k = conv2d();
    let cols = kx_loop(&mut k).counter;
    let Stmt::Set(_, e) = &mut kx_loop(&mut k).body[0] else {
        panic!("not the accumulation");
    };
    scale(e, 2, cols);
    assert_eq!(choose(&k), Blueprint::Generic);
}
