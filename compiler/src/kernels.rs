//! Kernels for a module: every offloadable nest the detector finds, lowered to KernelIR and
//! emitted as PTX. Used by `tensorwasm analyze` (which nests became kernels, and why not) and
//! `tensorwasm build --emit-ptx DIR`.
//!
//! Nothing here decides that a kernel ships: `offload::plan_module`, the oracle
//! (`oracle::nest`) and the rewrite do, in `tensorwasm build`.

use serde::Serialize;
use tensorwasm_analysis::{OffloadPlan, Verdict, ir::ModuleIr};
use tensorwasm_blueprints::{EmitOptions, Target, emit_ptx};

use crate::lower::{ParamSource, lower};

/// One offloadable nest and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct KernelReport {
    /// Function index.
    pub function: u32,
    /// The nest's outermost loop (index in the function).
    pub root: u32,
    /// Byte offset of the nest's `loop` opcode.
    pub offset: u32,
    /// PTX entry name.
    pub name: String,
    /// Grid dimensions.
    pub grid: usize,
    /// The blueprint the PTX was emitted with (`generic`, `tiled-matmul`), when lowered.
    pub blueprint: Option<&'static str>,
    /// What each kernel parameter carries, when lowered.
    pub params: Vec<ParamSource>,
    /// PTX text, when lowered and emitted.
    #[serde(skip)]
    pub ptx: Option<String>,
    /// KernelIR text form, when lowered.
    #[serde(skip)]
    pub kir: Option<String>,
    /// Why not, when it was not lowered or emitted.
    pub error: Option<String>,
}

/// Lowers and emits every candidate of `plan` for `target`.
pub fn kernels(module: &ModuleIr, plan: &OffloadPlan, target: Target) -> Vec<KernelReport> {
    let mut out = Vec::new();
    for nest in &plan.nests {
        let Verdict::Candidate(cand) = &nest.verdict else {
            continue;
        };
        let name = format!("tw_f{}_loop{}", nest.function, nest.root.0);
        let mut report = KernelReport {
            function: nest.function,
            root: nest.root.0,
            offset: nest.offset,
            name: name.clone(),
            grid: cand.grid.len(),
            blueprint: None,
            params: Vec::new(),
            ptx: None,
            kir: None,
            error: None,
        };
        let Some(func) = module.function(nest.function) else {
            report.error = Some("function not found".into());
            out.push(report);
            continue;
        };
        match lower(func, nest, cand, &name) {
            Ok(l) => {
                report.params = l.sources.clone();
                report.kir = Some(l.kernel.to_string());
                report.blueprint = Some(tensorwasm_blueprints::choose(&l.kernel).name());
                match emit_ptx(&l.kernel, &EmitOptions::for_target(target)) {
                    Ok(ptx) => report.ptx = Some(ptx),
                    Err(e) => report.error = Some(format!("PTX emission failed: {e}")),
                }
            }
            Err(e) => report.error = Some(e),
        }
        out.push(report);
    }
    out
}
