//! The driver: analyse a module once, then lower and emit every offloadable nest
//! ([`Analysed::lower_all`]), for `tensorwasm analyze` and `build --emit-ptx`
//! ([`Analysed::kernels`]) and for the build's kernel table ([`Analysed::plan`]).
//!
//! Nothing here decides that a kernel ships: the build's oracle (in `tensorwasm`) and the
//! rewrite ([`crate::rewrite`]) do.

use std::collections::BTreeMap;

use serde::Serialize;
use tensorwasm_analysis::ir::{ModuleIr, ValType as WasmTy};
use tensorwasm_analysis::{Diagnostic, NestVerdict, OffloadPlan, Verdict};
use tensorwasm_blueprints::{EmitOptions, Target, emit_ptx};
use tensorwasm_guard::OffloadKernel;

use crate::lower::{Lowered, ParamSource, lower};
use crate::plan::{global_types, plan_kernel};

/// The PTX entry name of the kernel for the nest rooted at loop `root` of function `function`.
pub fn kernel_name(function: u32, root: u32) -> String {
    format!("tw_f{function}_loop{root}")
}

/// A module translated to BlockIR and analysed, once, for every use below.
#[derive(Debug)]
pub struct Analysed {
    /// The module's IR.
    pub ir: ModuleIr,
    /// The analysis's verdict on every nest.
    pub plan: OffloadPlan,
    /// One diagnostic per loop.
    pub diagnostics: Vec<Diagnostic>,
    /// The types of the module's globals, imported ones first.
    pub globals: Vec<WasmTy>,
}

/// One offloadable nest, lowered and emitted (or why not).
#[derive(Debug)]
pub struct LoweredNest<'a> {
    /// The analysis's verdict (always a candidate).
    pub nest: &'a NestVerdict,
    /// PTX entry name.
    pub name: String,
    /// The lowered kernel, when lowering succeeded.
    pub lowered: Option<Lowered>,
    /// The blueprint its PTX was emitted with, when lowered.
    pub blueprint: Option<&'static str>,
    /// The PTX, or why there is none.
    pub ptx: Result<String, String>,
}

impl Analysed {
    /// Translates and analyses `wasm`; fails only on a malformed module.
    pub fn new(wasm: &[u8]) -> Result<Analysed, String> {
        let ir = tensorwasm_analysis::translate(wasm).map_err(|e| e.to_string())?;
        let (plan, diagnostics) = tensorwasm_analysis::analyze(&ir);
        let globals = global_types(wasm)?;
        Ok(Analysed {
            ir,
            plan,
            diagnostics,
            globals,
        })
    }

    /// Every candidate nest, lowered to KernelIR and emitted as PTX for `target`.
    pub fn lower_all(&self, target: Target) -> Vec<LoweredNest<'_>> {
        let mut out = Vec::new();
        for nest in &self.plan.nests {
            let Verdict::Candidate(cand) = &nest.verdict else {
                continue;
            };
            let name = kernel_name(nest.function, nest.root.0);
            let mut entry = LoweredNest {
                nest,
                name,
                lowered: None,
                blueprint: None,
                ptx: Err(String::new()),
            };
            entry.ptx = (|| {
                let func = self
                    .ir
                    .function(nest.function)
                    .ok_or_else(|| "function not found".to_string())?;
                let lowered = lower(func, nest, cand, &entry.name)?;
                entry.blueprint = Some(tensorwasm_blueprints::choose(&lowered.kernel).name());
                let ptx = emit_ptx(&lowered.kernel, &EmitOptions::for_target(target))
                    .map_err(|e| format!("PTX emission failed: {e}"));
                entry.lowered = Some(lowered);
                ptx
            })();
            out.push(entry);
        }
        out
    }

    /// Every candidate nest with its KernelIR and PTX for `target`, or why not.
    pub fn kernels(&self, target: Target) -> Vec<KernelReport> {
        self.lower_all(target)
            .into_iter()
            .filter_map(|l| {
                let Verdict::Candidate(cand) = &l.nest.verdict else {
                    return None;
                };
                let (ptx, error) = match l.ptx {
                    Ok(p) => (Some(p), None),
                    Err(e) => (None, Some(e)),
                };
                Some(KernelReport {
                    function: l.nest.function,
                    root: l.nest.root.0,
                    offset: l.nest.offset,
                    name: l.name,
                    grid: cand.grid.len(),
                    blueprint: l.blueprint,
                    params: l
                        .lowered
                        .as_ref()
                        .map(|x| x.sources.clone())
                        .unwrap_or_default(),
                    kir: l.lowered.as_ref().map(|x| x.kernel.to_string()),
                    ptx,
                    error,
                })
            })
            .collect()
    }

    /// Lowers, emits for `target` and plans every candidate nest. Nests that cannot be lowered,
    /// emitted or planned are reported with the reason and stay on the CPU.
    pub fn plan(&self, target: Target) -> Planned {
        let mut out = Planned::default();
        for l in self.lower_all(target) {
            let Verdict::Candidate(cand) = &l.nest.verdict else {
                continue;
            };
            let func = self.ir.function(l.nest.function);
            let planned = match (l.ptx, &l.lowered, func) {
                (Ok(ptx), Some(lowered), Some(func)) => {
                    tensorwasm_blueprints::launch::LaunchPlan::for_kernel(&lowered.kernel, None)
                        .map_err(|e| format!("no launch plan: {e}"))
                        .and_then(|launch| {
                            plan_kernel(
                                func,
                                &self.globals,
                                l.nest.offset,
                                cand,
                                lowered,
                                ptx,
                                launch.block,
                            )
                        })
                }
                (Err(e), _, _) => Err(e),
                _ => Err("function not found".to_string()),
            };
            let (offloaded, reason) = match planned {
                Ok(k) => {
                    out.kernels.push(k);
                    out.locals
                        .push(func.map(|f| f.locals.clone()).unwrap_or_default());
                    out.constants.push(cand.entry_constants.clone());
                    (true, None)
                }
                Err(e) => (false, Some(e)),
            };
            out.reports.push(KernelBuild {
                name: l.name,
                function: l.nest.function,
                offset: l.nest.offset,
                offloaded,
                blueprint: l.blueprint,
                reason,
                oracle: None,
                cubins: Vec::new(),
            });
        }
        out
    }
}

/// Finds, lowers and plans every offloadable nest of `wasm` for PTX `target`
/// ([`Analysed::new`] then [`Analysed::plan`]).
pub fn plan_module(wasm: &[u8], target: Target) -> Result<Planned, String> {
    Ok(Analysed::new(wasm)?.plan(target))
}

/// One offloadable nest and what became of it (`tensorwasm analyze`, `build --emit-ptx`).
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

/// What the build did with one offloadable nest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelBuild {
    /// PTX entry name.
    pub name: String,
    /// Function index.
    pub function: u32,
    /// Byte offset of the nest's `loop` opcode.
    pub offset: u32,
    /// Whether the kernel is in the bundle.
    pub offloaded: bool,
    /// The blueprint its PTX was emitted with (`generic`, `tiled-matmul`), when it was lowered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blueprint: Option<&'static str>,
    /// Why not, when it is not.
    pub reason: Option<String>,
    /// The oracle's verdict, when it ran.
    pub oracle: Option<crate::report::NestReport>,
    /// What `ptxas` made of the kernel for each `--cubin` architecture.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cubins: Vec<CubinBuild>,
}

/// One cubin of one kernel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CubinBuild {
    /// `sm_NN`.
    pub arch: String,
    /// Size of the cubin.
    pub bytes: u64,
    /// Registers per thread.
    pub registers: u32,
    /// Spill-store plus spill-load bytes (0 for every kernel so far).
    pub spill_bytes: u64,
}

/// Every kernel of a module, planned, with what the oracle needs to test each.
#[derive(Debug, Clone, Default)]
pub struct Planned {
    /// The kernels.
    pub kernels: Vec<OffloadKernel>,
    /// Per kernel: the local types of its function, parameters first.
    pub locals: Vec<Vec<WasmTy>>,
    /// Per kernel: the locals constant on entry to its nest.
    pub constants: Vec<BTreeMap<u32, i64>>,
    /// Every offloadable nest and what became of it.
    pub reports: Vec<KernelBuild>,
}
