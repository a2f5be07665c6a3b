//! The differential harness through its public API, with references written in Rust (the
//! Wasmtime reference lives in the compiler and is tested there): passing kernels pass, each
//! kind of failure is found and shrunk, a case seed replays its counterexample, NaN lanes
//! compare as a class only in float buffers, and every plan or kernel problem is an error that
//! names its field or line.

mod common;

use common::kernels;
use tensorwasm_oracle::Interpreter;
use tensorwasm_oracle::harness::{
    Addressing, Candidate, Config, ElemType, Failure, HarnessError, KernelArg, Outcome, ParamKind,
    Plan, PlanParam, Reference, SizeExpr, Verdict, WasmType, WasmValue, check,
};

type Body = fn(&mut [u8], &[WasmValue]) -> Outcome;

/// A reference function written in Rust.
struct Native {
    params: Vec<WasmType>,
    memory: usize,
    body: Body,
}

impl Reference for Native {
    fn name(&self) -> &str {
        "native"
    }
    fn param_types(&self) -> Vec<WasmType> {
        self.params.clone()
    }
    fn memory_size(&self) -> usize {
        self.memory
    }
    fn run(&mut self, memory: &mut [u8], args: &[WasmValue]) -> Result<Outcome, String> {
        Ok((self.body)(memory, args))
    }
}

fn i32_arg(v: WasmValue) -> i32 {
    match v {
        WasmValue::I32(x) => x,
        other => panic!("expected i32, got {other:?}"),
    }
}

fn ld_f32(m: &[u8], a: usize) -> f32 {
    f32::from_le_bytes(m[a..a + 4].try_into().unwrap())
}

fn st_f32(m: &mut [u8], a: usize, v: f32) {
    m[a..a + 4].copy_from_slice(&v.to_le_bytes());
}

fn ld_i32(m: &[u8], a: usize) -> i32 {
    i32::from_le_bytes(m[a..a + 4].try_into().unwrap())
}

fn e(s: &str) -> SizeExpr {
    SizeExpr::parse(s).unwrap()
}

fn size(name: &str, min: i64, max: i64) -> PlanParam {
    PlanParam {
        name: name.into(),
        ty: WasmType::I32,
        kind: ParamKind::Size { min, max },
    }
}

fn buffer(name: &str, elem: ElemType, len: &str) -> PlanParam {
    PlanParam {
        name: name.into(),
        ty: WasmType::I32,
        kind: ParamKind::Buffer {
            elem,
            len: e(len),
            align: elem.size() as u32,
        },
    }
}

fn buf(name: &str) -> KernelArg {
    KernelArg::Buffer {
        name: name.into(),
        addressing: Addressing::Start,
    }
}

fn run(
    reference: &mut Native,
    ptx: &str,
    entry: &str,
    plan: &Plan,
    cases: u32,
    seed: u64,
) -> Result<tensorwasm_oracle::harness::Report, HarnessError> {
    check(
        reference,
        &mut Interpreter::new(),
        Candidate { ptx, entry },
        plan,
        &Config {
            cases,
            seed,
            ..Config::default()
        },
    )
}

/// `vadd(a, b, out, n)`: out[i] = a[i] + b[i] over f32.
fn vadd_reference() -> Native {
    Native {
        params: vec![WasmType::I32; 4],
        memory: 4096,
        body: |m, args| {
            let [a, b, out, n] = [0, 1, 2, 3].map(|i| i32_arg(args[i]) as usize);
            for i in 0..n {
                let v = ld_f32(m, a + 4 * i) + ld_f32(m, b + 4 * i);
                st_f32(m, out + 4 * i, v);
            }
            Outcome::Returned
        },
    }
}

fn vadd_plan(out_elem: ElemType) -> Plan {
    Plan::new(
        vec![
            buffer("a", ElemType::F32, "n"),
            buffer("b", ElemType::F32, "n"),
            buffer("out", out_elem, "n"),
            size("n", 0, 300),
        ],
        vec![buf("a"), buf("b"), buf("out"), KernelArg::Param("n".into())],
        [e("cdiv(n, 256)"), e("1"), e("1")],
        [e("256"), e("1"), e("1")],
        None,
    )
    .unwrap()
}

#[test]
fn a_correct_kernel_passes_every_case() {
    let report = run(
        &mut vadd_reference(),
        kernels::VECADD,
        "vecadd",
        &vadd_plan(ElemType::F32),
        300,
        7,
    )
    .unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(report.cases_run, 300);
    assert!(report.empty_launches > 0, "n = 0 is drawn");
    assert!(report.instructions > 0);
    assert_eq!((report.backend.as_str(), report.seed), ("interpreter", 7));
}

#[test]
fn nan_lanes_compare_as_a_class_only_in_float_buffers() {
    // The interpreter's NaN results are 0x7fffffff; Rust's x86 NaNs keep an operand's payload.
    // Declared as i32 lanes, the same bytes must be compared exactly and the check fails.
    let report = run(
        &mut vadd_reference(),
        kernels::VECADD,
        "vecadd",
        &vadd_plan(ElemType::I32),
        300,
        7,
    )
    .unwrap();
    let Verdict::Fail(c) = &report.verdict else {
        panic!("NaN payloads in an i32 buffer must differ: {report}");
    };
    let Failure::Mismatch(m) = &c.failure else {
        panic!("{c}")
    };
    assert!(m.location.starts_with("out["), "{c}");
    assert_eq!(m.elem, "i32");
}

/// `saxpy(alpha, x, y, out, n)` rounding twice; the kernel under test fuses (`fma.rn`).
fn saxpy_reference() -> Native {
    Native {
        params: vec![
            WasmType::F32,
            WasmType::I32,
            WasmType::I32,
            WasmType::I32,
            WasmType::I32,
        ],
        memory: 4096,
        body: |m, args| {
            let WasmValue::F32(alpha) = args[0] else {
                panic!()
            };
            let alpha = f32::from_bits(alpha);
            let [x, y, out, n] = [1, 2, 3, 4].map(|i| i32_arg(args[i]) as usize);
            for i in 0..n {
                let v = alpha * ld_f32(m, x + 4 * i) + ld_f32(m, y + 4 * i);
                st_f32(m, out + 4 * i, v);
            }
            Outcome::Returned
        },
    }
}

fn saxpy_plan() -> Plan {
    Plan::new(
        vec![
            PlanParam {
                name: "alpha".into(),
                ty: WasmType::F32,
                kind: ParamKind::Scalar,
            },
            buffer("x", ElemType::F32, "n"),
            buffer("y", ElemType::F32, "n"),
            buffer("out", ElemType::F32, "n"),
            size("n", 0, 64),
        ],
        vec![
            KernelArg::Param("alpha".into()),
            buf("x"),
            buf("y"),
            buf("out"),
        ],
        // No bound check in this kernel: one block of exactly n threads.
        [e("min(n, 1)"), e("1"), e("1")],
        [e("max(n, 1)"), e("1"), e("1")],
        None,
    )
    .unwrap()
}

#[test]
fn a_fused_multiply_add_is_caught_shrunk_and_replayed() {
    let plan = saxpy_plan();
    let mut reference = saxpy_reference();
    let report = run(&mut reference, kernels::SAXPY, "saxpy_fma", &plan, 1000, 42).unwrap();
    let Verdict::Fail(c) = &report.verdict else {
        panic!("fma must be caught: {report}");
    };
    // Shrunk to one element, with everything irrelevant zeroed.
    assert_eq!(c.args[4].value, "1", "{c}");
    assert_eq!(c.buffers[2].lanes, vec!["0.0 (0x00000000)"], "{c}");
    assert!(!c.random_background, "{c}");
    let Failure::Mismatch(m) = &c.failure else {
        panic!("{c}")
    };
    assert_eq!(m.location, "out[0]");
    assert_eq!(m.differing_lanes, 1);
    let text = report.to_string();
    assert!(text.contains("replay: --seed"), "{text}");

    // The case seed replays the same counterexample as case 0.
    let replay = run(
        &mut reference,
        kernels::SAXPY,
        "saxpy_fma",
        &plan,
        1,
        c.case_seed,
    )
    .unwrap();
    let Verdict::Fail(r) = &replay.verdict else {
        panic!("replay must fail: {replay}");
    };
    assert_eq!(
        (r.case_index, &r.args, &r.buffers),
        (0, &c.args, &c.buffers)
    );
    assert_eq!(r.failure, c.failure);

    // The same plan passes with two roundings.
    let ok = run(
        &mut reference,
        kernels::SAXPY,
        "saxpy_two_roundings",
        &plan,
        1000,
        42,
    )
    .unwrap();
    assert!(ok.passed(), "{ok}");
}

#[test]
fn an_off_by_one_bound_is_a_kernel_fault() {
    let ptx = kernels::VECADD.replace("setp.ge.u32", "setp.gt.u32");
    let report = run(
        &mut vadd_reference(),
        &ptx,
        "vecadd",
        &vadd_plan(ElemType::F32),
        1000,
        1,
    )
    .unwrap();
    let Verdict::Fail(c) = &report.verdict else {
        panic!("{report}")
    };
    let Failure::KernelFault { error, cpu } = &c.failure else {
        panic!("{c}")
    };
    assert!(error.contains("out-of-bounds global access"), "{error}");
    assert_eq!(cpu, "returned normally");
    assert_eq!(
        c.args[3].value, "1",
        "n = 0 launches nothing; shrinks to n = 1: {c}"
    );
}

/// `check_nonneg(x, n, flag)`: sets the flag when some x[i] < 0 (i32).
const TRAP_IF_NEGATIVE: &str = r#"
.version 8.0
.target sm_80
.address_size 64
.visible .entry check_nonneg(.param .u64 x, .param .u32 n, .param .u64 flag)
{
    .reg .pred %p<3>;
    .reg .b32 %r<4>;
    .reg .b64 %rd<5>;
    ld.param.u64 %rd1, [x];
    ld.param.u32 %r1, [n];
    ld.param.u64 %rd2, [flag];
    mov.u32 %r2, %tid.x;
    setp.ge.u32 %p1, %r2, %r1;
    @%p1 bra DONE;
    mul.wide.u32 %rd3, %r2, 4;
    add.s64 %rd4, %rd1, %rd3;
    ld.global.s32 %r3, [%rd4];
    setp.lt.s32 %p2, %r3, 0;
    @!%p2 bra DONE;
    st.global.u32 [%rd2], 1;
DONE:
    ret;
}
"#;

fn trap_plan() -> Plan {
    Plan::new(
        vec![buffer("x", ElemType::I32, "n"), size("n", 0, 32)],
        vec![buf("x"), KernelArg::Param("n".into()), KernelArg::TrapFlag],
        [e("1"), e("1"), e("1")],
        [e("32"), e("1"), e("1")],
        None,
    )
    .unwrap()
}

fn trap_reference(body: Body) -> Native {
    Native {
        params: vec![WasmType::I32; 2],
        memory: 1024,
        body,
    }
}

#[test]
fn traps_must_match_the_cpu() {
    let plan = trap_plan();
    let mut exact = trap_reference(|m, args| {
        let (x, n) = (i32_arg(args[0]) as usize, i32_arg(args[1]) as usize);
        match (0..n).find(|i| ld_i32(m, x + 4 * i) < 0) {
            Some(_) => Outcome::Trapped("negative".into()),
            None => Outcome::Returned,
        }
    });
    let report = run(&mut exact, TRAP_IF_NEGATIVE, "check_nonneg", &plan, 500, 3).unwrap();
    assert!(report.passed(), "{report}");
    assert!(report.traps > 0, "traps are drawn: {report}");

    let mut stricter = trap_reference(|m, args| {
        let (x, n) = (i32_arg(args[0]) as usize, i32_arg(args[1]) as usize);
        match (0..n).find(|i| ld_i32(m, x + 4 * i) <= 0) {
            Some(_) => Outcome::Trapped("not positive".into()),
            None => Outcome::Returned,
        }
    });
    let report = run(
        &mut stricter,
        TRAP_IF_NEGATIVE,
        "check_nonneg",
        &plan,
        500,
        3,
    )
    .unwrap();
    let Verdict::Fail(c) = &report.verdict else {
        panic!("{report}")
    };
    assert_eq!(
        c.failure,
        Failure::MissingTrap {
            cpu_trap: "not positive".into()
        }
    );
    assert_eq!(c.args[1].value, "1", "{c}");
    assert_eq!(c.buffers[0].lanes, vec!["0"], "{c}");

    let mut never = trap_reference(|_, _| Outcome::Returned);
    let report = run(&mut never, TRAP_IF_NEGATIVE, "check_nonneg", &plan, 500, 3).unwrap();
    let Verdict::Fail(c) = &report.verdict else {
        panic!("{report}")
    };
    assert_eq!(c.failure, Failure::SpuriousTrap);
    assert_eq!(c.buffers[0].lanes, vec!["-1"], "{c}");
}

fn error_of(plan: &Plan, ptx: &str, entry: &str, reference: &mut Native) -> String {
    run(reference, ptx, entry, plan, 10, 0)
        .map(|r| format!("unexpected report: {r}"))
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn plan_and_kernel_problems_are_errors_naming_the_field_or_line() {
    let plan = vadd_plan(ElemType::F32);
    let mut r = vadd_reference();
    let implicit = kernels::VECADD.replace("add.rn.f32", "add.f32");
    let err = error_of(&plan, &implicit, "vecadd", &mut r);
    assert!(
        err.starts_with("kernel: unsupported at line 38: `add.f32` without"),
        "{err}"
    );
    assert_eq!(
        error_of(&plan, kernels::VECADD, "vecad", &mut r),
        "kernel: no kernel entry named `vecad`"
    );
    let err = error_of(&plan, "garbage {", "vecadd", &mut r);
    assert!(
        err.starts_with("kernel: parse error at line 1, column 1"),
        "{err}"
    );
    assert_eq!(
        error_of(&plan, kernels::SAXPY, "saxpy_fma", &mut r),
        "plan: kernel.args[0]: the address of buffer `a` cannot fill PTX parameter `alpha` of \
         type .f32"
    );
    assert_eq!(
        error_of(&plan, TRAP_IF_NEGATIVE, "check_nonneg", &mut r),
        "plan: kernel.args: 4 arguments, but entry `check_nonneg` takes 3 parameters"
    );
    let mut wrong_types = vadd_reference();
    wrong_types.params[3] = WasmType::I64;
    assert_eq!(
        error_of(&plan, kernels::VECADD, "vecadd", &mut wrong_types),
        "plan: param[3].type: `n` is i32 in the plan but i64 in the reference function"
    );
    wrong_types.params.pop();
    assert_eq!(
        error_of(&plan, kernels::VECADD, "vecadd", &mut wrong_types),
        "plan: param: 4 parameters, but the reference function takes 3"
    );
    let mut tiny = vadd_reference();
    tiny.memory = 8;
    let err = error_of(&plan, kernels::VECADD, "vecadd", &mut tiny);
    assert!(
        err.starts_with("plan: the buffers do not fit in 8 bytes of memory"),
        "{err}"
    );
}

#[test]
fn plans_are_checked_before_anything_runs() {
    let bad = |params: Vec<PlanParam>, args: Vec<KernelArg>| {
        Plan::new(
            params,
            args,
            [e("1"), e("1"), e("1")],
            [e("1"), e("1"), e("1")],
            None,
        )
        .unwrap_err()
    };
    assert_eq!(
        bad(vec![buffer("a", ElemType::F32, "m")], vec![]),
        "param[0].len: unknown size `m` in `m`"
    );
    assert_eq!(
        bad(
            vec![
                size("n", 0, 1),
                PlanParam {
                    name: "s".into(),
                    ty: WasmType::I32,
                    kind: ParamKind::Scalar
                },
                buffer("a", ElemType::F32, "n * s")
            ],
            vec![]
        ),
        "param[2].len: `s` in `n * s` is not a size parameter (only sizes may appear in expressions)"
    );
    assert_eq!(
        bad(vec![size("n", 0, 1), size("n", 0, 1)], vec![]),
        "param[1].name: duplicate name `n`"
    );
    assert_eq!(
        bad(vec![size("n", 5, 1)], vec![]),
        "param[0]: min 5 is greater than max 1"
    );
    assert_eq!(
        bad(vec![size("n", 0, 1 << 40)], vec![]),
        "param[0]: range 0..=1099511627776 does not fit i32"
    );
    assert_eq!(
        bad(vec![size("n", 0, 1)], vec![buf("n")]),
        "kernel.args[0]: `n` is not a buffer"
    );
    assert_eq!(
        bad(
            vec![buffer("a", ElemType::F32, "1")],
            vec![KernelArg::Param("a".into())]
        ),
        "kernel.args[0]: `a` is a buffer; pass it as a buffer address"
    );
    assert_eq!(
        bad(vec![], vec![KernelArg::TrapFlag, KernelArg::TrapFlag]),
        "kernel.args: more than one trap_flag"
    );
    let mut p = buffer("a", ElemType::F64, "1");
    p.ty = WasmType::I64;
    assert_eq!(
        bad(vec![p], vec![]),
        "param[0].type: a buffer is an i32 Wasm address, not i64"
    );
}
