//! Every failure is an error naming the PTX line (and thread for run-time faults), never a panic.

mod common;

use common::*;
use tensorwasm_oracle::{
    Backend, DeviceMemory, Error, FaultKind, Interpreter, Launch, ParamValue, parse_module,
};

fn kernel(body: &str) -> String {
    format!(
        ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry k(.param .u64 buf)\n{{\n    .reg .pred %p<4>;\n    .reg .b32 %r<8>;\n    .reg .f32 %f<4>;\n    .reg .b64 %rd<8>;\n    ld.param.u64 %rd1, [buf];\n{body}\n    ret;\n}}\n"
    )
}

/// Line 11 is the first line of `body`.
const FIRST_BODY_LINE: u32 = 11;

fn run_k(body: &str, block: u32) -> Result<Vec<Vec<u8>>, Error> {
    run(
        &kernel(body),
        "k",
        [1, 1, 1],
        [block, 1, 1],
        &[vec![0; 16]],
        &[Arg::Buf(0)],
    )
}

#[test]
fn out_of_bounds_load_names_line_and_thread() {
    let e = run_k("    mov.u32 %r1, %tid.x;\n    mul.wide.u32 %rd2, %r1, 8;\n    add.s64 %rd3, %rd1, %rd2;\n    ld.global.u64 %rd4, [%rd3];", 4).unwrap_err();
    match &e {
        Error::Fault {
            kind:
                FaultKind::OutOfBounds {
                    space: "global",
                    size: 8,
                    ..
                },
            site,
        } => {
            assert_eq!(site.line, FIRST_BODY_LINE + 3);
            assert_eq!(site.thread, [2, 0, 0]);
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("out-of-bounds global access of 8 bytes")
            && msg.contains("line 14")
            && msg.contains("thread (2,0,0)"),
        "{msg}"
    );
}

#[test]
fn one_past_the_end_and_misaligned_and_store_fault() {
    let e = run_k("    ld.global.u32 %r1, [%rd1+16];", 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("out-of-bounds") && e.contains("line 11"), "{e}");
    let e = run_k("    ld.global.u32 %r1, [%rd1+2];", 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("misaligned global access of 4 bytes") && e.contains("line 11"),
        "{e}"
    );
    let e = run_k("    mov.u32 %r1, 1;\n    st.global.u32 [%rd1+-4], %r1;", 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("out-of-bounds") && e.contains("line 12"), "{e}");
    // A null pointer faults too: nothing is mapped at 0.
    let e = run_k("    mov.u64 %rd2, 0;\n    ld.global.u32 %r1, [%rd2];", 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("address 0x0"), "{e}");
}

#[test]
fn shared_access_outside_variables_faults() {
    let src = ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry k()\n{\n.shared .align 4 .b32 s[4];\n.reg .b32 %r<3>;\nmov.u32 %r1, s;\nld.shared.u32 %r2, [%r1+16];\nret;\n}\n";
    let e = run(src, "k", [1, 1, 1], [1, 1, 1], &[], &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("out-of-bounds shared access") && e.contains("line 9"),
        "{e}"
    );
}

#[test]
fn unsupported_instructions_name_the_line() {
    for (instr, what) in [
        ("sin.approx.f32 %f1, %f2;", "sin.approx.f32"),
        ("div.approx.f32 %f1, %f2, %f3;", "not bit-reproducible"),
        ("div.full.f32 %f1, %f2, %f3;", "not bit-reproducible"),
        ("rcp.approx.f32 %f1, %f2;", "not bit-reproducible"),
        ("sqrt.approx.f32 %f1, %f2;", "not bit-reproducible"),
        ("add.rz.f64 %rd2, %rd3, %rd4;", "directed rounding"),
        ("ld.u32 %r1, [%rd1];", "generic addressing"),
        ("ld.global.v2.u32 %r1, [%rd1];", "vector"),
        ("add.f32 %f1, %f2, %f3;", "contracted"),
        ("mul.f32 %f1, %f2, %f3;", "contracted"),
        ("add.rn.xyz.f32 %f1, %f2, %f3;", "modifier `.xyz`"),
        ("bar.sync 1;", "barrier other than"),
        ("cvt.f32.s32 %f1, %r1;", "need `.rn/.rz/.rm/.rp`"),
    ] {
        let e = run_k(&format!("    {instr}"), 1).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, Error::Unsupported { line: 11, .. }),
            "{instr}: {msg}"
        );
        assert!(msg.contains(what), "{instr}: {msg}");
    }
}

#[test]
fn implicit_rounding_can_be_allowed() {
    let src = kernel(
        "    mov.f32 %f2, 0f3F800000;\n    add.f32 %f1, %f2, %f2;\n    st.global.f32 [%rd1], %f1;",
    );
    let mut mem = DeviceMemory::new();
    let b = mem.alloc(vec![0; 16]);
    let launch = Launch {
        grid: [1, 1, 1],
        block: [1, 1, 1],
        params: vec![ParamValue::Ptr(b)],
    };
    assert!(
        Interpreter::new()
            .launch(&src, "k", &launch, &mut mem)
            .is_err()
    );
    Interpreter::new()
        .allow_implicit_rounding(true)
        .launch(&src, "k", &launch, &mut mem)
        .unwrap();
    assert_eq!(to_f32s(mem.read(b).unwrap())[0], 2.0);
}

#[test]
fn parse_errors_name_line_and_column() {
    let e = parse_module(
        ".version 8.0\n.target sm_80\n.visible .entry k()\n{\n  add.s32 %r1, %r2 %r3;\n}\n",
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::Parse {
            line: 5,
            col: 20,
            msg: "expected `,`, found `%r3`".into()
        }
    );
    let e = parse_module(".version 8.0\n.visible .entry k()\n{\n  mov.u32 %r1, #;\n}").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Parse {
                line: 4,
                col: 16,
                ..
            }
        ),
        "{e}"
    );
    let e = parse_module("/* never closed").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Parse {
                line: 1,
                col: 1,
                ..
            }
        ),
        "{e}"
    );
    let e = parse_module(".visible .entry k(.param .u64 a\n{\n}")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("parse error at line 2, column 1"), "{e}");
    let e = run_k("    bra NOWHERE;", 1).unwrap_err().to_string();
    assert!(
        e.contains("line 11") && e.contains("unknown label `NOWHERE`"),
        "{e}"
    );
    let e = run_k("    mov.u32 %q1, 0;", 1).unwrap_err().to_string();
    assert!(e.contains("undeclared register `%q1`"), "{e}");
}

#[test]
fn step_limit_stops_infinite_loops() {
    let src = kernel("LOOP:\n    bra.uni LOOP;");
    let mut mem = DeviceMemory::new();
    let b = mem.alloc(vec![0; 16]);
    let launch = Launch {
        grid: [1, 1, 1],
        block: [2, 1, 1],
        params: vec![ParamValue::Ptr(b)],
    };
    let e = Interpreter::new()
        .with_step_limit(1000)
        .launch(&src, "k", &launch, &mut mem)
        .unwrap_err();
    match e {
        Error::Fault {
            kind: FaultKind::StepLimit(1000),
            site,
        } => assert_eq!((site.line, site.thread), (12, [0, 0, 0])),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn divergent_barrier_is_an_error() {
    let body = "    mov.u32 %r1, %tid.x;\n    setp.eq.u32 %p1, %r1, 0;\n    @%p1 bra A;\n    bar.sync 0;\n    bra.uni B;\nA:\n    bar.sync 0;\nB:";
    let e = run_k(body, 4).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            Error::DivergentBarrier {
                block: [0, 0, 0],
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("line 17") && msg.contains("line 14"), "{msg}");
}

#[test]
fn exited_threads_do_not_block_a_barrier() {
    // Thread 0 returns early; the others still synchronise and then write.
    let body = "    mov.u32 %r1, %tid.x;\n    setp.eq.u32 %p1, %r1, 0;\n    @%p1 ret;\n    bar.sync 0;\n    mul.wide.u32 %rd2, %r1, 4;\n    add.s64 %rd2, %rd1, %rd2;\n    st.global.u32 [%rd2], %r1;";
    let out = run_k(body, 4).unwrap();
    assert_eq!(to_u32s(&out[0]), vec![0, 1, 2, 3]);
}

#[test]
fn uninitialized_register_read_is_an_error() {
    let e = run_k("    add.s32 %r1, %r2, 1;", 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("uninitialized register %r2") && e.contains("line 11"),
        "{e}"
    );
}

#[test]
fn launch_mismatches_are_errors() {
    let src = kernel("");
    let mut mem = DeviceMemory::new();
    let b = mem.alloc(vec![0; 16]);
    let mut interp = Interpreter::new();
    let mut launch = Launch {
        grid: [1, 1, 1],
        block: [1, 1, 1],
        params: vec![],
    };
    assert!(matches!(
        interp.launch(&src, "k", &launch, &mut mem),
        Err(Error::Launch(_))
    ));
    launch.params = vec![ParamValue::F32(1.0)];
    let e = interp
        .launch(&src, "k", &launch, &mut mem)
        .unwrap_err()
        .to_string();
    assert!(e.contains("parameter 1 `buf` has type .u64"), "{e}");
    launch.params = vec![ParamValue::Ptr(b)];
    assert!(matches!(
        interp.launch(&src, "nope", &launch, &mut mem),
        Err(Error::UnknownEntry(_))
    ));
    launch.block = [1025, 1, 1];
    assert!(matches!(
        interp.launch(&src, "k", &launch, &mut mem),
        Err(Error::Launch(_))
    ));
    launch.block = [0, 1, 1];
    assert!(matches!(
        interp.launch(&src, "k", &launch, &mut mem),
        Err(Error::Launch(_))
    ));
    let other = DeviceMemory::new();
    assert!(matches!(other.read(b), Err(Error::UnknownBuffer(0))));
}

#[test]
fn reqntid_is_enforced_and_checked_when_parsed() {
    let src = kernel("").replacen(")\n{", ")\n.reqntid 4, 2\n{", 1);
    let mut mem = DeviceMemory::new();
    let b = mem.alloc(vec![0; 16]);
    let mut interp = Interpreter::new();
    let mut launch = Launch {
        grid: [1, 1, 1],
        block: [4, 2, 1],
        params: vec![ParamValue::Ptr(b)],
    };
    // Missing dimensions are 1: `4, 2` is the block [4, 2, 1].
    interp
        .launch(&src, "k", &launch, &mut mem)
        .expect("the declared block");
    launch.block = [8, 1, 1];
    let e = interp.launch(&src, "k", &launch, &mut mem).unwrap_err();
    assert!(
        matches!(&e, Error::Launch(m) if m.contains(".reqntid 4, 2, 1")),
        "{e}"
    );
    let four = kernel("").replacen(")\n{", ")\n.reqntid 1, 1, 1, 1\n{", 1);
    let e = parse_module(&four).unwrap_err().to_string();
    assert!(
        e.contains("`.reqntid` takes at most three dimensions"),
        "{e}"
    );
}
