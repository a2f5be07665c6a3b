//! Test helpers shared by the oracle's integration tests: one `check` helper that runs a kernel
//! through the public `Backend` API, one `eval` helper that runs a single instruction, and the
//! hand-written kernels (also assembled by `ptxas` in `tests/ptxas.rs`).
#![allow(dead_code)]

pub mod kernels;

use tensorwasm_oracle::{Backend, DeviceMemory, Error, Interpreter, Launch, ParamValue};

/// Whether the environment switch `name` is on: set to anything but empty or `0`
/// (docs/TESTING.md, "Environment switches").
pub fn switch(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// A kernel argument: a scalar, or the index of an input buffer.
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    Buf(usize),
    U32(u32),
    S32(i32),
    U64(u64),
    F32(f32),
    F64(f64),
}

pub fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn to_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn to_u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Runs `entry` of `ptx` on `backend` with `inputs` as device buffers; returns the buffers after
/// the launch.
pub fn run_on(
    backend: &mut dyn Backend,
    ptx: &str,
    entry: &str,
    grid: [u32; 3],
    block: [u32; 3],
    inputs: &[Vec<u8>],
    args: &[Arg],
) -> Result<Vec<Vec<u8>>, Error> {
    let mut mem = DeviceMemory::new();
    let ids: Vec<_> = inputs.iter().map(|b| mem.alloc(b.clone())).collect();
    let params = args
        .iter()
        .map(|a| match *a {
            Arg::Buf(i) => ParamValue::Ptr(ids[i]),
            Arg::U32(v) => ParamValue::U32(v),
            Arg::S32(v) => ParamValue::S32(v),
            Arg::U64(v) => ParamValue::U64(v),
            Arg::F32(v) => ParamValue::F32(v),
            Arg::F64(v) => ParamValue::F64(v),
        })
        .collect();
    backend.launch(
        ptx,
        entry,
        &Launch {
            grid,
            block,
            params,
        },
        &mut mem,
    )?;
    ids.iter()
        .map(|id| mem.read(*id).map(<[u8]>::to_vec))
        .collect()
}

/// Runs on the interpreter. With `TENSORWASM_ORACLE_BACKEND=cuda` (tests built with
/// `--features cuda`), every launch the interpreter completes also runs on the GPU and must leave
/// every buffer byte-identical: each expected value these tests hold for the interpreter is then
/// checked against the hardware too. Launches the interpreter refuses (faults, division by zero,
/// uninitialized registers) never reach the GPU.
pub fn run(
    ptx: &str,
    entry: &str,
    grid: [u32; 3],
    block: [u32; 3],
    inputs: &[Vec<u8>],
    args: &[Arg],
) -> Result<Vec<Vec<u8>>, Error> {
    let out = run_interpreter(ptx, entry, grid, block, inputs, args)?;
    match std::env::var("TENSORWASM_ORACLE_BACKEND").as_deref() {
        Ok("cuda") => {
            let gpu = run_cuda(ptx, entry, grid, block, inputs, args)
                .unwrap_or_else(|e| panic!("GPU launch of `{entry}` failed: {e}"));
            for (i, (a, b)) in out.iter().zip(&gpu).enumerate() {
                if let Some(at) = a.iter().zip(b).position(|(x, y)| x != y) {
                    panic!(
                        "`{entry}`: buffer {i} differs at byte {at}: interpreter {:02x?}, GPU {:02x?}\n{ptx}",
                        &a[at..(at + 8).min(a.len())],
                        &b[at..(at + 8).min(b.len())]
                    );
                }
            }
        }
        Ok("interpreter") | Err(_) => {}
        Ok(other) => panic!("TENSORWASM_ORACLE_BACKEND={other}: expected interpreter or cuda"),
    }
    Ok(out)
}

/// Runs on the interpreter, whatever the backend under test.
pub fn run_interpreter(
    ptx: &str,
    entry: &str,
    grid: [u32; 3],
    block: [u32; 3],
    inputs: &[Vec<u8>],
    args: &[Arg],
) -> Result<Vec<Vec<u8>>, Error> {
    run_on(
        &mut Interpreter::new(),
        ptx,
        entry,
        grid,
        block,
        inputs,
        args,
    )
}

/// Runs on GPU 0 (one backend per test thread).
#[cfg(feature = "cuda")]
pub fn run_cuda(
    ptx: &str,
    entry: &str,
    grid: [u32; 3],
    block: [u32; 3],
    inputs: &[Vec<u8>],
    args: &[Arg],
) -> Result<Vec<Vec<u8>>, Error> {
    use std::cell::RefCell;
    use tensorwasm_oracle::CudaBackend;
    thread_local! {
        static GPU: RefCell<Option<CudaBackend>> = const { RefCell::new(None) };
    }
    GPU.with(|gpu| {
        let mut gpu = gpu.borrow_mut();
        if gpu.is_none() {
            let backend = CudaBackend::new(0).unwrap_or_else(|e| panic!("no GPU: {e}"));
            if let Ok(info) = backend.info() {
                eprintln!("cross-checking on {info:?}");
            }
            *gpu = Some(backend);
        }
        let backend = gpu.as_mut().expect("just set");
        run_on(backend, ptx, entry, grid, block, inputs, args)
    })
}

/// Without the CUDA runner: a panic naming the missing feature.
#[cfg(not(feature = "cuda"))]
pub fn run_cuda(
    _: &str,
    _: &str,
    _: [u32; 3],
    _: [u32; 3],
    _: &[Vec<u8>],
    _: &[Arg],
) -> Result<Vec<Vec<u8>>, Error> {
    panic!("TENSORWASM_ORACLE_BACKEND=cuda needs the tests built with --features cuda")
}

/// The one check helper: runs the kernel and compares the listed buffers byte for byte.
#[allow(clippy::too_many_arguments)]
pub fn check(
    ptx: &str,
    entry: &str,
    grid: [u32; 3],
    block: [u32; 3],
    inputs: &[Vec<u8>],
    args: &[Arg],
    expect: &[(usize, Vec<u8>)],
) {
    let out = match run(ptx, entry, grid, block, inputs, args) {
        Ok(o) => o,
        Err(e) => panic!("launch failed: {e}"),
    };
    for (i, want) in expect {
        assert_eq!(&out[*i], want, "buffer {i} differs");
    }
}

/// Expects the launch to fail and returns the error message.
pub fn check_err(
    ptx: &str,
    entry: &str,
    grid: [u32; 3],
    block: [u32; 3],
    inputs: &[Vec<u8>],
    args: &[Arg],
) -> String {
    match run(ptx, entry, grid, block, inputs, args) {
        Ok(_) => panic!("launch unexpectedly succeeded"),
        Err(e) => e.to_string(),
    }
}

/// A source operand for `eval`: PTX register type and value bits.
#[derive(Debug, Clone, Copy)]
pub struct V(pub &'static str, pub u64);

pub fn f(x: f32) -> V {
    V("f32", u64::from(x.to_bits()))
}
pub fn fb(bits: u32) -> V {
    V("f32", u64::from(bits))
}
pub fn d(x: f64) -> V {
    V("f64", x.to_bits())
}
pub fn s32(x: i32) -> V {
    V("s32", u64::from(x as u32))
}
pub fn u32v(x: u32) -> V {
    V("u32", u64::from(x))
}
pub fn s64(x: i64) -> V {
    V("s64", x as u64)
}
pub fn u64v(x: u64) -> V {
    V("u64", x)
}
pub fn b32(x: u32) -> V {
    V("b32", u64::from(x))
}
pub fn b64(x: u64) -> V {
    V("b64", x)
}
pub fn pred(x: bool) -> V {
    V("pred", u64::from(x))
}

/// A one-thread kernel running `instr` (with `%dst`, `%s0`, `%s1`, ... as operands) whose result
/// register has type `dty` and is stored to the output buffer.
pub fn op_kernel(instr: &str, dty: &str, srcs: &[&str]) -> String {
    let mut params = String::from(".param .u64 out");
    let mut decls = String::from("    .reg .b64 %addr;\n");
    let mut loads = String::new();
    for (i, ty) in srcs.iter().enumerate() {
        if *ty == "pred" {
            params.push_str(&format!(", .param .u32 p{i}"));
            decls.push_str(&format!("    .reg .pred %s{i};\n    .reg .u32 %t{i};\n"));
            loads.push_str(&format!(
                "    ld.param.u32 %t{i}, [p{i}];\n    setp.ne.u32 %s{i}, %t{i}, 0;\n"
            ));
        } else {
            params.push_str(&format!(", .param .{ty} p{i}"));
            decls.push_str(&format!("    .reg .{ty} %s{i};\n"));
            loads.push_str(&format!("    ld.param.{ty} %s{i}, [p{i}];\n"));
        }
    }
    let store = if dty == "pred" {
        decls.push_str("    .reg .pred %dst;\n    .reg .u32 %dv;\n");
        "    selp.u32 %dv, 1, 0, %dst;\n    st.global.u32 [%addr], %dv;\n".to_string()
    } else {
        decls.push_str(&format!("    .reg .{dty} %dst;\n"));
        format!("    st.global.{dty} [%addr], %dst;\n")
    };
    format!(
        ".version 8.0\n.target sm_80\n.address_size 64\n\n.visible .entry op({params})\n{{\n{decls}    ld.param.u64 %addr, [out];\n    cvta.to.global.u64 %addr, %addr;\n{loads}    {instr};\n{store}    ret;\n}}\n"
    )
}

/// Runs one instruction on the interpreter and returns the result bits (cross-checked on the
/// GPU like every `run`).
pub fn eval(instr: &str, dty: &str, srcs: &[V]) -> Result<u64, Error> {
    eval_with(run, instr, dty, srcs)
}

/// Runs one instruction with `runner` (`run`, `run_interpreter` or `run_cuda`).
pub fn eval_with(runner: Runner, instr: &str, dty: &str, srcs: &[V]) -> Result<u64, Error> {
    let tys: Vec<&str> = srcs.iter().map(|v| v.0).collect();
    let ptx = op_kernel(instr, dty, &tys);
    let mut args = vec![Arg::Buf(0)];
    for v in srcs {
        args.push(match v.0 {
            "f32" | "b32" | "u32" | "pred" => {
                if v.0 == "f32" {
                    Arg::F32(f32::from_bits(v.1 as u32))
                } else {
                    Arg::U32(v.1 as u32)
                }
            }
            "s32" => Arg::S32(v.1 as u32 as i32),
            "f64" => Arg::F64(f64::from_bits(v.1)),
            _ => Arg::U64(v.1),
        });
    }
    let out = runner(&ptx, "op", [1, 1, 1], [1, 1, 1], &[vec![0u8; 8]], &args)?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&out[0][..8]);
    Ok(u64::from_le_bytes(b))
}

/// A way to run a kernel: `run`, `run_interpreter` or `run_cuda`.
pub type Runner =
    fn(&str, &str, [u32; 3], [u32; 3], &[Vec<u8>], &[Arg]) -> Result<Vec<Vec<u8>>, Error>;

/// `eval` that must succeed.
pub fn ev(instr: &str, dty: &str, srcs: &[V]) -> u64 {
    match eval(instr, dty, srcs) {
        Ok(v) => v,
        Err(e) => panic!("`{instr}` failed: {e}"),
    }
}

pub fn ev32(instr: &str, dty: &str, srcs: &[V]) -> u32 {
    ev(instr, dty, srcs) as u32
}

pub fn evf(instr: &str, srcs: &[V]) -> f32 {
    f32::from_bits(ev(instr, "f32", srcs) as u32)
}
