//! Property tests: the parser and the interpreter never panic, whatever the text; directed
//! rounding results bracket the exact value.

mod common;

use common::*;
use proptest::prelude::*;
use tensorwasm_oracle::{Backend, DeviceMemory, Interpreter, Launch, ParamValue, parse_module};

fn try_run(src: &str) {
    let Ok(m) = parse_module(src) else { return };
    let mut mem = DeviceMemory::new();
    let b = mem.alloc(vec![0; 64]);
    for e in &m.entries {
        let params = e.params.iter().map(|_| ParamValue::Ptr(b)).collect();
        let launch = Launch {
            grid: [1, 1, 1],
            block: [2, 1, 1],
            params,
        };
        let _ = Interpreter::new()
            .with_step_limit(2000)
            .launch(src, &e.name, &launch, &mut mem);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = parse_module(&s);
    }

    #[test]
    fn ptx_like_garbage_never_panics(words in proptest::collection::vec(prop::sample::select(vec![
        ".version", "8.0", ".target", "sm_80", ".address_size", "64", ".visible", ".entry", "k", "(", ")",
        "{", "}", ".param", ".u64", ".f32", ".reg", ".b32", "%r<4>", "%r1", "%r2", ",", ";", "[", "]", "+",
        "-", "4", "0f3F800000", "add", ".s32", "ld", ".global", "ret", "bra", "L:", "L", "@", "!", "%p1",
        ".pred", ".shared", ".align", "mov", "%tid.x", "bar.sync", "0", "//c\n", "/*", "*/", "setp.lt.s32",
    ]), 0..80)) {
        try_run(&words.join(" "));
    }

    #[test]
    fn mutated_kernels_never_panic(cut in 0usize..2000, len in 0usize..40, insert in "[ -~]{0,12}") {
        let src = common::kernels::TREE_SUM;
        let start = cut.min(src.len());
        let end = (start + len).min(src.len());
        if src.is_char_boundary(start) && src.is_char_boundary(end) {
            try_run(&format!("{}{}{}", &src[..start], insert, &src[end..]));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// mul.rm/.rp bracket the exact product (exact in f64 for f32 inputs).
    #[test]
    fn directed_mul_brackets_exact(a in -1e30f32..1e30, b in -1e8f32..1e8) {
        let exact = f64::from(a) * f64::from(b);
        let lo = evf("mul.rm.f32 %dst, %s0, %s1", &[f(a), f(b)]);
        let hi = evf("mul.rp.f32 %dst, %s0, %s1", &[f(a), f(b)]);
        prop_assume!(lo.is_finite() && hi.is_finite());
        prop_assert!(f64::from(lo) <= exact && exact <= f64::from(hi));
        prop_assert!(lo == hi || lo.next_up() == hi);
        let z = evf("mul.rz.f32 %dst, %s0, %s1", &[f(a), f(b)]);
        prop_assert_eq!(z, if exact < 0.0 { hi } else { lo });
    }

    /// div.rm/.rp bracket the exact quotient: lo*b <= a <= hi*b for b > 0 (products exact in f64).
    #[test]
    fn directed_div_brackets_exact(a in -1e20f32..1e20, b in 1e-3f32..1e6) {
        let lo = evf("div.rm.f32 %dst, %s0, %s1", &[f(a), f(b)]);
        let hi = evf("div.rp.f32 %dst, %s0, %s1", &[f(a), f(b)]);
        let (a, b) = (f64::from(a), f64::from(b));
        prop_assert!(f64::from(lo) * b <= a && a <= f64::from(hi) * b);
        prop_assert!(lo == hi || lo.next_up() == hi);
    }
}

#[test]
fn kernels_run_on_a_fresh_interpreter_each_time() {
    // The Backend trait object is usable generically.
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(Interpreter::new())];
    for b in &mut backends {
        assert_eq!(b.name(), "interpreter");
        let out = run_on(
            b.as_mut(),
            common::kernels::GRID2D,
            "grid2d",
            [1, 1, 1],
            [2, 2, 1],
            &[vec![0; 16]],
            &[Arg::Buf(0), Arg::U32(2)],
        )
        .unwrap();
        assert_eq!(to_u32s(&out[0]), vec![0, 1000, 1, 1001]);
    }
}
