//! Every supported operator, load, store and control construct, and the sample kernels, pass
//! `ptxas -v` for sm_75, sm_80, sm_90 and sm_100 with no spills.

mod common;

use common::{check_ptxas, coverage_kernels, memory_kernel, ptxas_available};
use tensorwasm_blueprints::kernel_ir::{
    Addr, Affine, BinOp, Expr, ForLoop, KernelBuilder, LoadOp, Start, Stmt, StoreOp, UnOp, ValType,
};
use tensorwasm_blueprints::samples;

#[test]
fn every_operator_class_assembles() {
    if !ptxas_available("every_operator_class_assembles") {
        return;
    }
    for (k, ops) in coverage_kernels() {
        let regs = check_ptxas(&k);
        eprintln!("{} ({} ops): registers {regs:?}", k.name, ops.len());
    }
}

#[test]
fn every_load_and_store_assembles() {
    if !ptxas_available("every_load_and_store_assembles") {
        return;
    }
    for aligned in [true, false] {
        let k = memory_kernel(aligned);
        eprintln!("{}: registers {:?}", k.name, check_ptxas(&k));
    }
}

#[test]
fn samples_assemble() {
    if !ptxas_available("samples_assemble") {
        return;
    }
    for k in samples::all().expect("samples verify") {
        eprintln!("{}: registers {:?}", k.name, check_ptxas(&k));
    }
    // The tiled stencil's and conv2d's batched and 64-bit forms (the property tests' kernels).
    for ty in [ValType::I32, ValType::I64] {
        let k = samples::batched_stencil2d(ty).expect("batched stencil verifies");
        assert_eq!(
            tensorwasm_blueprints::choose(&k),
            tensorwasm_blueprints::Blueprint::TiledStencil([16, 16, 1])
        );
        eprintln!("{}: registers {:?}", k.name, check_ptxas(&k));
        let k = samples::batched_conv2d(ty).expect("batched conv2d verifies");
        assert_eq!(
            tensorwasm_blueprints::choose(&k),
            tensorwasm_blueprints::Blueprint::TiledConv2d([16, 16, 1])
        );
        eprintln!("{}: registers {:?}", k.name, check_ptxas(&k));
    }
}

/// Control flow the samples do not reach: a 3-D grid with i64 and param-started counters,
/// nested `for` loops counting down and unsigned, `if` without `else`, `select`, and locals
/// carried across iterations.
#[test]
fn control_flow_assembles() {
    if !ptxas_available("control_flow_assembles") {
        return;
    }
    let mut k = KernelBuilder::new("control");
    let (x, y) = (k.ptr("x"), k.ptr("y"));
    let (nx, ny, nz) = (
        k.scalar("nx", ValType::I64),
        k.scalar("ny", ValType::I32),
        k.scalar("nz", ValType::I32),
    );
    let s = k.scalar("s", ValType::I32);
    k.trap_flag();
    let gx = k.grid(ValType::I64, Start::Const(-3), 2, nx);
    let gy = k.grid(ValType::I32, Start::Param(s), -1, ny);
    let gz = k.grid(ValType::I32, Start::Const(0), 1, nz);
    let acc = k.local(ValType::I64);
    let (outer, inner) = (k.loop_id(), k.loop_id());
    let out = Affine::constant(8).plus(8, gx).plus(64, gy).plus(512, gz);
    let at = out.clone().plus_strided(4, inner, ny);
    let load = Expr::load(LoadOp::I64Load32S, Addr::new(x, at));
    let body = vec![Stmt::For(ForLoop {
        counter: inner,
        ty: ValType::I32,
        start: Expr::counter(outer),
        bound: Expr::i32(0),
        step: -1,
        signed: true,
        body: vec![
            Stmt::If {
                cond: Expr::binary(BinOp::I32LtU, Expr::counter(inner), Expr::counter(gy)),
                then: vec![Stmt::Set(
                    acc,
                    Expr::binary(BinOp::I64Add, Expr::local(acc), load.clone()),
                )],
                els: vec![],
            },
            Stmt::Set(
                acc,
                Expr::select(
                    Expr::unary(UnOp::I64Eqz, Expr::local(acc)),
                    Expr::binary(BinOp::I64RemS, Expr::i64(7), Expr::local(acc)),
                    Expr::binary(BinOp::I64Rotl, Expr::local(acc), Expr::counter(gx)),
                ),
            ),
        ],
    })];
    k.push(Stmt::Set(acc, Expr::i64(1)));
    k.push(Stmt::For(ForLoop {
        counter: outer,
        ty: ValType::I32,
        start: Expr::i32(0),
        bound: Expr::param(nz),
        step: 3,
        signed: false,
        body,
    }));
    k.push(Stmt::Store(
        StoreOp::I64Store,
        Addr::new(y, out),
        Expr::local(acc),
    ));
    let k = k.build().expect("control kernel verifies");
    eprintln!("control: registers {:?}", check_ptxas(&k));
}
