//! Instructions whose result bits the PTX ISA leaves open to reading — NaN payloads, signed zeros,
//! subnormal classes — run on operands chosen to tell the readings apart. Each row holds the
//! bits an NVIDIA GPU produced; the interpreter must produce the same bits. With
//! `TENSORWASM_ORACLE_BACKEND=cuda` every row also runs on the GPU at hand, and a table of all
//! rows is printed.

mod common;

use common::*;

// .f64 operands.
const D_NAN: u64 = 0x7ff8_0000_0000_0000;
const D_NNAN: u64 = 0xfff8_0000_0000_0000;
const D_PAY: u64 = 0x7ff8_0000_0000_0123;
const D_SNAN: u64 = 0x7ff0_0000_0000_0001;
const D_INF: u64 = 0x7ff0_0000_0000_0000;
const D_NINF: u64 = 0xfff0_0000_0000_0000;
const D_ONE: u64 = 0x3ff0_0000_0000_0000;
const D_MONE: u64 = 0xbff0_0000_0000_0000;
const D_NZERO: u64 = 0x8000_0000_0000_0000;
const D_SUB: u64 = 1;
const D_NSUB: u64 = 0x8000_0000_0000_0001;
// f32 operands.
const F_NAN: u64 = 0x7fc0_0000;
const F_NNAN: u64 = 0xffc0_0000;
const F_PAY: u64 = 0x7fc0_0123;
const F_SNAN: u64 = 0x7f80_0001;
const F_NINF: u64 = 0xff80_0000;
const F_ONE: u64 = 0x3f80_0000;
const F_MONE: u64 = 0xbf80_0000;
const F_NZERO: u64 = 0x8000_0000;
const F_SUB: u64 = 1;
const F_NSUB: u64 = 0x8000_0001;

/// The expected bits of each row: what an NVIDIA H200 (sm_90, driver 580.159, PTX JIT-compiled
/// from `.target sm_80`) produced on 2026-11-29. Every row carries one; a new row gets `None`
/// until a GPU run (`scripts/gpu-check.sh`) shows its bits, and the test fails until then.
type Row = (String, &'static str, Vec<V>, Option<u64>);

fn rows() -> Vec<Row> {
    let dd = |x| V("f64", x);
    let ff = |x| V("f32", x);
    let mut r: Vec<Row> = Vec::new();
    let mut add =
        |i: &str, d: &'static str, s: Vec<V>, e: Option<u64>| r.push((i.to_string(), d, s, e));
    let seen = Some;
    // .f64 arithmetic: a NaN operand propagates quieted; an invalid operation gives -qNaN.
    add(
        "add.rn.f64 %dst, %s0, %s1",
        "f64",
        vec![dd(D_INF), dd(D_NINF)],
        seen(D_NNAN),
    );
    add(
        "add.rn.f64 %dst, %s0, %s1",
        "f64",
        vec![dd(D_PAY), dd(D_ONE)],
        seen(D_PAY),
    );
    add(
        "add.rn.f64 %dst, %s0, %s1",
        "f64",
        vec![dd(D_SNAN), dd(D_ONE)],
        seen(0x7ff8_0000_0000_0001),
    );
    add(
        "add.rn.f64 %dst, %s0, %s1",
        "f64",
        vec![dd(D_NNAN), dd(D_ONE)],
        seen(D_NNAN),
    );
    add(
        "add.rn.f64 %dst, %s0, %s1",
        "f64",
        vec![dd(D_PAY), dd(D_NNAN)],
        seen(D_PAY),
    );
    add(
        "add.rn.f64 %dst, %s0, %s1",
        "f64",
        vec![dd(D_NNAN), dd(D_PAY)],
        seen(D_NNAN),
    );
    add(
        "add.rn.f64 %dst, %s0, %s1",
        "f64",
        vec![dd(D_ONE), dd(D_SNAN)],
        seen(0x7ff8_0000_0000_0001),
    );
    add(
        "mul.rn.f64 %dst, %s0, %s1",
        "f64",
        vec![dd(0), dd(D_INF)],
        seen(D_NNAN),
    );
    add(
        "mul.rn.f64 %dst, %s0, %s1",
        "f64",
        vec![dd(D_PAY), dd(D_NNAN)],
        seen(D_PAY),
    );
    add(
        "div.rn.f64 %dst, %s0, %s1",
        "f64",
        vec![dd(0), dd(0)],
        seen(D_NNAN),
    );
    add(
        "sqrt.rn.f64 %dst, %s0",
        "f64",
        vec![dd(D_MONE)],
        seen(D_NNAN),
    );
    add("sqrt.rn.f64 %dst, %s0", "f64", vec![dd(D_PAY)], seen(D_PAY));
    add(
        "fma.rn.f64 %dst, %s0, %s1, %s2",
        "f64",
        vec![dd(D_INF), dd(0), dd(D_ONE)],
        seen(D_NNAN),
    );
    add(
        "fma.rn.f64 %dst, %s0, %s1, %s2",
        "f64",
        vec![dd(D_PAY), dd(D_ONE), dd(D_ONE)],
        seen(D_PAY),
    );
    add(
        "fma.rn.f64 %dst, %s0, %s1, %s2",
        "f64",
        vec![dd(D_ONE), dd(D_ONE), dd(D_PAY)],
        seen(D_PAY),
    );
    add(
        "fma.rn.f64 %dst, %s0, %s1, %s2",
        "f64",
        vec![dd(D_PAY), dd(D_ONE), dd(D_NNAN)],
        seen(D_PAY),
    );
    add(
        "fma.rn.f64 %dst, %s0, %s1, %s2",
        "f64",
        vec![dd(D_ONE), dd(D_NNAN), dd(D_PAY)],
        seen(D_PAY),
    );
    for op in ["min", "max"] {
        // Both NaN: the second operand, quieted. One NaN: the other operand.
        let i = format!("{op}.f64 %dst, %s0, %s1");
        let z = if op == "min" { D_NZERO } else { 0 };
        for (a, b, e) in [
            (D_NAN, D_NAN, seen(D_NAN)),
            (D_PAY, D_PAY, seen(D_PAY)),
            (D_PAY, D_SNAN, seen(0x7ff8_0000_0000_0001)),
            (D_NNAN, D_NNAN, seen(D_NNAN)),
            (D_PAY, D_ONE, seen(D_ONE)),
            (0, D_NZERO, seen(z)),
            (D_NZERO, 0, seen(z)),
            (D_SNAN, D_PAY, seen(D_PAY)),
            (D_PAY, D_NNAN, seen(D_NNAN)),
            (D_NNAN, D_PAY, seen(D_PAY)),
        ] {
            add(&i, "f64", vec![dd(a), dd(b)], e);
        }
        // .f32: every NaN result is the canonical 0x7fffffff.
        let i = format!("{op}.f32 %dst, %s0, %s1");
        for (a, b, e) in [
            (F_PAY, F_PAY, seen(CANON)),
            (F_NNAN, F_NNAN, seen(CANON)),
            (F_SNAN, F_SNAN, seen(CANON)),
            (F_PAY, F_ONE, seen(F_ONE)),
        ] {
            add(&i, "f32", vec![ff(a), ff(b)], e);
        }
        let i = format!("{op}.NaN.f32 %dst, %s0, %s1");
        add(&i, "f32", vec![ff(F_PAY), ff(F_ONE)], Some(CANON));
    }
    add(
        "add.rn.f32 %dst, %s0, %s1",
        "f32",
        vec![ff(F_PAY), ff(F_ONE)],
        seen(CANON),
    );
    add(
        "add.rn.f32 %dst, %s0, %s1",
        "f32",
        vec![ff(F_SNAN), ff(F_ONE)],
        seen(CANON),
    );
    add(
        "mul.rn.f32 %dst, %s0, %s1",
        "f32",
        vec![ff(F_PAY), ff(F_ONE)],
        seen(CANON),
    );
    add(
        "fma.rn.f32 %dst, %s0, %s1, %s2",
        "f32",
        vec![ff(F_PAY), ff(F_ONE), ff(F_ONE)],
        seen(CANON),
    );
    add(
        "sqrt.rn.f32 %dst, %s0",
        "f32",
        vec![ff(F_MONE)],
        seen(CANON),
    );
    // cvt: to .f32 a quiet NaN without payload; to .f64 the payload widened and quieted.
    add(
        "cvt.rn.f32.f64 %dst, %s0",
        "f32",
        vec![dd(D_PAY)],
        seen(0x7fc0_0000),
    );
    add(
        "cvt.rn.f32.f64 %dst, %s0",
        "f32",
        vec![dd(D_SNAN)],
        seen(0x7fc0_0000),
    );
    add(
        "cvt.rn.f32.f64 %dst, %s0",
        "f32",
        vec![dd(D_NNAN)],
        seen(0xffc0_0000),
    );
    add(
        "cvt.f64.f32 %dst, %s0",
        "f64",
        vec![ff(F_PAY)],
        seen(0x7ff8_0024_6000_0000),
    );
    add(
        "cvt.f64.f32 %dst, %s0",
        "f64",
        vec![ff(F_SNAN)],
        seen(0x7ff8_0000_2000_0000),
    );
    add(
        "cvt.f64.f32 %dst, %s0",
        "f64",
        vec![ff(F_NNAN)],
        seen(D_NNAN),
    );
    add(
        "cvt.rni.f32.f32 %dst, %s0",
        "f32",
        vec![ff(F_PAY)],
        seen(CANON),
    );
    add(
        "cvt.rzi.f32.f32 %dst, %s0",
        "f32",
        vec![ff(F_SNAN)],
        seen(CANON),
    );
    add(
        "cvt.rni.f64.f64 %dst, %s0",
        "f64",
        vec![dd(D_PAY)],
        seen(D_PAY),
    );
    add(
        "cvt.rmi.f64.f64 %dst, %s0",
        "f64",
        vec![dd(D_SNAN)],
        seen(0x7ff8_0000_0000_0001),
    );
    // abs/neg of a NaN: .f64 returns it unchanged, .f32 the canonical NaN.
    add("abs.f64 %dst, %s0", "f64", vec![dd(D_NNAN)], seen(D_NNAN));
    add("neg.f64 %dst, %s0", "f64", vec![dd(D_PAY)], seen(D_PAY));
    add(
        "abs.f64 %dst, %s0",
        "f64",
        vec![dd(D_SNAN)],
        seen(0x7ff8_0000_0000_0001),
    );
    add("abs.f32 %dst, %s0", "f32", vec![ff(F_NNAN)], seen(CANON));
    add("neg.f32 %dst, %s0", "f32", vec![ff(F_PAY)], seen(CANON));
    // testp: zeros are normal, subnormals are not (all 84 rows seen).
    for kind in [
        "normal",
        "subnormal",
        "finite",
        "infinite",
        "number",
        "notanumber",
    ] {
        for x in [0, D_NZERO, D_SUB, D_NSUB, D_ONE, D_INF, D_NAN] {
            let v = f64::from_bits(x);
            let e = class(kind, v.is_nan(), v.is_infinite(), v.is_subnormal());
            add(
                &format!("testp.{kind}.f64 %dst, %s0"),
                "pred",
                vec![dd(x)],
                seen(e),
            );
        }
        for x in [0, F_NZERO, F_SUB, F_NSUB, F_ONE, F_NINF, F_NAN] {
            let v = f32::from_bits(x as u32);
            let e = class(kind, v.is_nan(), v.is_infinite(), v.is_subnormal());
            add(
                &format!("testp.{kind}.f32 %dst, %s0"),
                "pred",
                vec![ff(x)],
                seen(e),
            );
        }
    }
    r
}

const CANON: u64 = 0x7fff_ffff;

fn class(kind: &str, nan: bool, inf: bool, sub: bool) -> u64 {
    u64::from(match kind {
        "normal" => !nan && !inf && !sub,
        "subnormal" => sub,
        "finite" => !nan && !inf,
        "infinite" => inf,
        "number" => !nan,
        _ => nan,
    })
}

fn show(r: &Result<u64, tensorwasm_oracle::Error>) -> String {
    match r {
        Ok(v) => format!("{v:#x}"),
        Err(e) => format!("refused ({e})"),
    }
}

#[test]
fn interpreter_matches_the_hardware_bit_for_bit() {
    let gpu = std::env::var("TENSORWASM_ORACLE_BACKEND").is_ok_and(|v| v == "cuda");
    let mut bad = 0;
    let mut pinned = 0;
    let total = rows().len();
    println!("| instruction | operands | expected (H200) | interpreter | GPU here |");
    println!("|---|---|---|---|---|");
    for (instr, dty, srcs, expect) in rows() {
        let ops: Vec<String> = srcs.iter().map(|v| format!("{}:{:#x}", v.0, v.1)).collect();
        let interp = eval_with(run_interpreter, &instr, dty, &srcs);
        let hw = gpu.then(|| eval_with(run_cuda, &instr, dty, &srcs));
        let mut same = match (&interp, &hw) {
            (Ok(a), Some(Ok(b))) => a == b,
            (_, None) => true,
            _ => false,
        };
        if let Some(e) = expect {
            pinned += 1;
            same &= interp.as_ref().is_ok_and(|v| *v == e);
        }
        if !same {
            bad += 1;
        }
        println!(
            "| `{instr}` | {} | {} | {} | {}{} |",
            ops.join(" "),
            expect.map_or("not seen yet".into(), |e| format!("{e:#x}")),
            show(&interp),
            hw.as_ref().map(show).unwrap_or_else(|| "—".into()),
            if same { "" } else { " **DIFFERS**" }
        );
    }
    assert_eq!(pinned, total, "rows without hardware results");
    assert_eq!(bad, 0, "{bad} rows differ");
}
