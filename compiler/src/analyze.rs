//! The coverage report of `tensorwasm analyze`: loop nests found, candidates, rejections and a
//! histogram of reasons, from [`tensorwasm_analysis`].
//!
//! Reporting only: this module never changes the module and never fails on a valid one (the
//! detector returns a verdict for every loop).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use tensorwasm_analysis::{Diagnostic, OffloadPlan, Verdict};

/// What `tensorwasm analyze --json` prints.
#[derive(Debug, Serialize)]
pub struct Coverage {
    /// Loops in the module.
    pub loops: usize,
    /// Outermost loop nests.
    pub nests: usize,
    /// Nests decided inside a rejected loop (their own verdicts count in `candidates` and
    /// `rejected`): a parallel nest in a sequential loop is offloaded on its own.
    pub inner: usize,
    /// Nests that are offloadable (a candidate with a plan).
    pub candidates: usize,
    /// Nests rejected.
    pub rejected: usize,
    /// How many nests each kind of reason rejected (a nest may have several).
    pub reasons: BTreeMap<&'static str, usize>,
    /// The plan: one verdict per nest, with loop facts.
    pub plan: OffloadPlan,
    /// One line per loop.
    pub diagnostics: Vec<Diagnostic>,
    /// Function names from the module's `name` section.
    pub function_names: BTreeMap<u32, String>,
    /// Each offloadable nest lowered to a kernel (PTX for sm_75), or why not.
    pub kernels: Vec<tensorwasm_offload::KernelReport>,
}

/// Translates and analyzes `wasm`.
pub fn coverage(wasm: &[u8]) -> anyhow::Result<Coverage> {
    let analysed = tensorwasm_offload::Analysed::new(wasm).map_err(anyhow::Error::msg)?;
    let kernels = analysed.kernels(tensorwasm_blueprints::Target::SM_75);
    let tensorwasm_offload::Analysed {
        ir,
        plan,
        diagnostics,
        ..
    } = analysed;
    let mut reasons = BTreeMap::new();
    let mut candidates = 0;
    for nest in &plan.nests {
        match &nest.verdict {
            Verdict::Candidate { .. } => candidates += 1,
            Verdict::Rejected { reasons: rs } => {
                let mut kinds: Vec<&'static str> = rs.iter().map(|r| r.kind()).collect();
                kinds.dedup();
                for kind in kinds {
                    *reasons.entry(kind).or_insert(0) += 1;
                }
            }
        }
    }
    let inner = plan
        .nests
        .iter()
        .filter(|n| {
            ir.function(n.function)
                .and_then(|f| f.loop_data(n.root))
                .is_some_and(|d| d.parent.is_some())
        })
        .count();
    Ok(Coverage {
        loops: diagnostics.len(),
        nests: plan.nests.len() - inner,
        inner,
        candidates,
        rejected: plan.nests.len() - candidates,
        reasons,
        diagnostics,
        function_names: ir.function_names.clone(),
        kernels,
        plan,
    })
}

/// The text report.
pub fn render(c: &Coverage) -> String {
    let mut o = String::new();
    let inner = if c.inner == 0 {
        String::new()
    } else {
        format!(" and {} nests inside rejected loops", c.inner)
    };
    let _ = writeln!(
        o,
        "{} loops in {} loop nests{inner}: {} offloadable, {} rejected",
        c.loops, c.nests, c.candidates, c.rejected
    );
    if !c.reasons.is_empty() {
        let _ = writeln!(o, "rejections by reason");
        for (kind, n) in &c.reasons {
            let _ = writeln!(o, "  {n:>5}  {kind}");
        }
    }
    let _ = writeln!(o, "loops");
    for d in &c.diagnostics {
        let name = c
            .function_names
            .get(&d.function)
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let _ = writeln!(o, "  {d}{name}");
    }
    for nest in &c.plan.nests {
        if let Verdict::Candidate(plan) = &nest.verdict {
            let _ = writeln!(
                o,
                "plan for function {} {} (offset {:#x})\n{plan}",
                nest.function, nest.root, nest.offset
            );
        }
    }
    for k in &c.kernels {
        match &k.error {
            None => {
                let _ = writeln!(
                    o,
                    "kernel {} (function {} loop{}): {}-D grid, {} params, blueprint {}, PTX {} lines",
                    k.name,
                    k.function,
                    k.root,
                    k.grid,
                    k.params.len(),
                    k.blueprint.unwrap_or("-"),
                    k.ptx.as_deref().map_or(0, |p| p.lines().count())
                );
            }
            Some(e) => {
                let _ = writeln!(
                    o,
                    "kernel {} (function {} loop{}): not lowered: {e}",
                    k.name, k.function, k.root
                );
            }
        }
    }
    let _ = writeln!(
        o,
        "note: `tensorwasm build` checks each kernel with the oracle and ships those that pass, \
         with the module rewritten to dispatch them"
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(wat: &str, expect: &[&str]) {
        let wasm = wat::parse_str(wat).expect("valid test input");
        let text = render(&coverage(&wasm).expect("analysis"));
        for needle in expect {
            assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
        }
    }

    #[test]
    fn reports_candidates_and_reasons() {
        check(
            r#"(module (memory 1)
                 (func $f)
                 (func (export "calls") (param i32)
                   (loop $l (call $f)
                     (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1))))))
                 (func (export "fill") (param $p i32) (param $n i32)
                   (loop $l
                     (i32.store (local.get $p) (i32.const 0))
                     (local.set $p (i32.add (local.get $p) (i32.const 4)))
                     (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))"#,
            &[
                "2 loops in 2 loop nests: 1 offloadable, 1 rejected",
                "grid loop",
                "1  calls",
                "calls function 0",
            ],
        );
    }
}
