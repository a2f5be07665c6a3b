//! Property test: random valid modules from `wasm-smith` (GC, exceptions, SIMD and tail calls
//! included) go through `translate`, the verifier and `analyze` without a panic, and every loop
//! gets exactly one diagnostic and belongs to exactly one nest verdict.

use proptest::prelude::*;
use tensorwasm_analysis::{analyze, translate, verify::verify};

fn config(loops: bool) -> wasm_smith::Config {
    wasm_smith::Config {
        max_funcs: 6,
        max_instructions: if loops { 150 } else { 60 },
        max_nesting_depth: 6,
        max_types: 10,
        max_imports: 4,
        max_type_size: 100,
        ..wasm_smith::Config::default()
    }
}

/// Checks one module; returns (functions, loops, unsupported operators) seen.
fn check(seed: &[u8], loops: bool) -> (usize, usize, usize) {
    let mut u = arbitrary::Unstructured::new(seed);
    let Ok(module) = wasm_smith::Module::new(config(loops), &mut u) else {
        return (0, 0, 0);
    };
    let wasm = module.to_bytes();
    let ir = translate(&wasm).expect("wasm-smith modules are valid");
    verify(&ir).expect("verifier");
    for f in &ir.functions {
        let _ = f.to_string();
    }
    let (plan, diags) = analyze(&ir);
    let loops: usize = ir.functions.iter().map(|f| f.loops.len()).sum();
    assert_eq!(diags.len(), loops, "one diagnostic per loop");
    let with_diag: std::collections::HashSet<_> =
        diags.iter().map(|d| (d.function, d.lp)).collect();
    assert_eq!(with_diag.len(), loops, "one diagnostic for each loop");
    // Every loop is in one outermost nest; nests inside rejected ones are decided too, but no
    // loop is in two offloadable nests.
    let mut outermost = std::collections::HashSet::new();
    let mut offloaded = std::collections::HashSet::new();
    for nest in &plan.nests {
        let func = ir.function(nest.function).expect("function");
        let top = func
            .loop_data(nest.root)
            .is_some_and(|d| d.parent.is_none());
        for lp in &nest.loops {
            if top {
                assert!(
                    outermost.insert((nest.function, *lp)),
                    "a loop in two nests"
                );
            }
            if matches!(nest.verdict, tensorwasm_analysis::Verdict::Candidate(_)) {
                assert!(
                    offloaded.insert((nest.function, *lp)),
                    "a loop offloaded twice"
                );
            }
        }
    }
    assert_eq!(outermost.len(), loops, "every loop has a verdict");
    let unsupported = ir.functions.iter().map(|f| f.unsupported.len()).sum();
    (ir.functions.len(), loops, unsupported)
}

/// The property test is not vacuous: over fixed seeds, functions and loops are really seen.
#[test]
fn smith_modules_have_loops() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let (mut funcs, mut loops, mut unsupported) = (0, 0, 0);
    for _ in 0..200 {
        let seed: Vec<u8> = (0..8192)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let (f, l, u) = check(&seed, true);
        funcs += f;
        loops += l;
        unsupported += u;
    }
    println!("functions {funcs}, loops {loops}, unsupported {unsupported}");
    assert!(
        funcs > 50 && loops > 10 && unsupported > 0,
        "functions {funcs}, loops {loops}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn smith_modules_never_panic(seed in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = check(&seed, false);
    }

    #[test]
    fn smith_modules_with_more_code(seed in proptest::collection::vec(any::<u8>(), 1024..16384)) {
        let _ = check(&seed, true);
    }
}
