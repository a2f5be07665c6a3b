//! The accepted subset is real PTX: every hand-written test kernel, and a one-instruction kernel
//! for every instruction form the semantics tests use, assembles with `ptxas -arch=sm_80`.
//! Skipped with a note when `ptxas` is not on PATH, unless TENSORWASM_REQUIRE_PTXAS=1.

mod common;

use std::process::Command;

use common::kernels::ALL;
use common::op_kernel;

/// Instruction forms used by tests/ops.rs, with destination and source register types.
const OPS: &[(&str, &str, &[&str])] = &[
    ("min.f32 %dst, %s0, %s1", "f32", &["f32", "f32"]),
    ("max.NaN.f32 %dst, %s0, %s1", "f32", &["f32", "f32"]),
    ("min.f64 %dst, %s0, %s1", "f64", &["f64", "f64"]),
    ("add.rn.ftz.f32 %dst, %s0, %s1", "f32", &["f32", "f32"]),
    ("mul.rn.ftz.f32 %dst, %s0, %s1", "f32", &["f32", "f32"]),
    ("min.ftz.f32 %dst, %s0, %s1", "f32", &["f32", "f32"]),
    ("setp.eq.ftz.f32 %dst, %s0, %s1", "pred", &["f32", "f32"]),
    (
        "fma.rn.f32 %dst, %s0, %s1, %s2",
        "f32",
        &["f32", "f32", "f32"],
    ),
    (
        "mad.rn.f32 %dst, %s0, %s1, %s2",
        "f32",
        &["f32", "f32", "f32"],
    ),
    (
        "fma.rz.f32 %dst, %s0, %s1, %s2",
        "f32",
        &["f32", "f32", "f32"],
    ),
    (
        "fma.rn.f64 %dst, %s0, %s1, %s2",
        "f64",
        &["f64", "f64", "f64"],
    ),
    ("add.rz.f32 %dst, %s0, %s1", "f32", &["f32", "f32"]),
    ("add.rm.f32 %dst, %s0, %s1", "f32", &["f32", "f32"]),
    ("sub.rp.f32 %dst, %s0, %s1", "f32", &["f32", "f32"]),
    ("div.rz.f32 %dst, %s0, %s1", "f32", &["f32", "f32"]),
    ("div.rn.f64 %dst, %s0, %s1", "f64", &["f64", "f64"]),
    ("sqrt.rp.f32 %dst, %s0", "f32", &["f32"]),
    ("rcp.rn.f32 %dst, %s0", "f32", &["f32"]),
    ("add.rn.sat.f32 %dst, %s0, %s1", "f32", &["f32", "f32"]),
    ("abs.f32 %dst, %s0", "f32", &["f32"]),
    ("neg.f32 %dst, %s0", "f32", &["f32"]),
    ("copysign.f32 %dst, %s0, %s1", "f32", &["f32", "f32"]),
    ("setp.neu.f32 %dst, %s0, %s1", "pred", &["f32", "f32"]),
    (
        "setp.lt.and.s32 %dst, %s0, %s1, !%s2",
        "pred",
        &["s32", "s32", "pred"],
    ),
    ("setp.hi.u32 %dst, %s0, %s1", "pred", &["u32", "u32"]),
    ("testp.subnormal.f32 %dst, %s0", "pred", &["f32"]),
    (
        "selp.u32 %dst, %s0, %s1, %s2",
        "u32",
        &["u32", "u32", "pred"],
    ),
    (
        "slct.u32.s32 %dst, %s0, %s1, %s2",
        "u32",
        &["u32", "u32", "s32"],
    ),
    (
        "slct.u32.f32 %dst, %s0, %s1, %s2",
        "u32",
        &["u32", "u32", "f32"],
    ),
    ("cvt.rzi.s32.f32 %dst, %s0", "s32", &["f32"]),
    ("cvt.rzi.s32.f64 %dst, %s0", "s32", &["f64"]),
    ("cvt.rzi.s64.f32 %dst, %s0", "s64", &["f32"]),
    ("cvt.rni.s32.f32 %dst, %s0", "s32", &["f32"]),
    ("cvt.rni.f32.f32 %dst, %s0", "f32", &["f32"]),
    ("cvt.rz.f32.s32 %dst, %s0", "f32", &["s32"]),
    ("cvt.rz.f32.u64 %dst, %s0", "f32", &["u64"]),
    ("cvt.rz.f32.f64 %dst, %s0", "f32", &["f64"]),
    ("cvt.f64.f32 %dst, %s0", "f64", &["f32"]),
    ("cvt.ftz.f32.f32 %dst, %s0", "f32", &["f32"]),
    ("cvt.sat.f32.f32 %dst, %s0", "f32", &["f32"]),
    ("cvt.s32.s8 %dst, %s0", "s32", &["s32"]),
    ("cvt.sat.u8.s32 %dst, %s0", "u32", &["s32"]),
    ("cvt.sat.s32.s64 %dst, %s0", "s32", &["s64"]),
    ("cvt.u32.u64 %dst, %s0", "u32", &["u64"]),
    ("shl.b32 %dst, %s0, %s1", "b32", &["b32", "u32"]),
    ("shr.s32 %dst, %s0, %s1", "s32", &["s32", "u32"]),
    ("shl.b64 %dst, %s0, %s1", "b64", &["b64", "u32"]),
    ("mul.hi.s32 %dst, %s0, %s1", "s32", &["s32", "s32"]),
    ("mul.hi.u64 %dst, %s0, %s1", "u64", &["u64", "u64"]),
    ("mul.wide.s32 %dst, %s0, %s1", "s64", &["s32", "s32"]),
    (
        "mad.hi.u32 %dst, %s0, %s1, %s2",
        "u32",
        &["u32", "u32", "u32"],
    ),
    (
        "mad.wide.s32 %dst, %s0, %s1, %s2",
        "s64",
        &["s32", "s32", "s64"],
    ),
    ("brev.b64 %dst, %s0", "b64", &["b64"]),
    ("clz.b64 %dst, %s0", "u32", &["b64"]),
    ("popc.b32 %dst, %s0", "u32", &["b32"]),
    ("bfind.shiftamt.u32 %dst, %s0", "u32", &["u32"]),
    ("bfind.s32 %dst, %s0", "u32", &["s32"]),
    ("div.s32 %dst, %s0, %s1", "s32", &["s32", "s32"]),
    ("rem.s32 %dst, %s0, %s1", "s32", &["s32", "s32"]),
    ("div.u64 %dst, %s0, %s1", "u64", &["u64", "u64"]),
    ("abs.s32 %dst, %s0", "s32", &["s32"]),
    ("add.sat.s32 %dst, %s0, %s1", "s32", &["s32", "s32"]),
    ("add.rn.f32 %dst, %s0, 0f3F800000", "f32", &["f32"]),
    ("add.rn.f64 %dst, %s0, 0d3FF0000000000000", "f64", &["f64"]),
];

fn ptxas() -> Option<String> {
    let ok = Command::new("ptxas")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| "ptxas".to_string())
}

#[test]
fn test_kernels_assemble_with_ptxas() {
    let Some(ptxas) = ptxas() else {
        if common::switch("TENSORWASM_REQUIRE_PTXAS") {
            panic!("ptxas not found on PATH and TENSORWASM_REQUIRE_PTXAS=1");
        }
        eprintln!("note: ptxas not on PATH; skipping (export PATH=$(scripts/cuda-tools):$PATH)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("tw-oracle-ptxas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut sources: Vec<(String, String)> = ALL
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    for (i, (instr, dty, srcs)) in OPS.iter().enumerate() {
        sources.push((format!("op{i}"), op_kernel(instr, dty, srcs)));
    }
    let mut failures = Vec::new();
    for (name, src) in &sources {
        let path = dir.join(format!("{name}.ptx"));
        std::fs::write(&path, src).unwrap();
        let out = Command::new(&ptxas)
            .arg("-arch=sm_80")
            .arg(&path)
            .arg("-o")
            .arg(dir.join(format!("{name}.cubin")))
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{name}:\n{}\n{src}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // Every kernel ptxas accepts must also be accepted by the interpreter's decoder.
        let m = tensorwasm_oracle::parse_module(src).unwrap();
        for e in &m.entries {
            tensorwasm_oracle::Interpreter::new()
                .check(&m, &e.name)
                .unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "ptxas rejected:\n{}",
        failures.join("\n")
    );
}
