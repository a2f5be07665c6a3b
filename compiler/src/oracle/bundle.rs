//! `tensorwasm oracle BUNDLE.twb`: every kernel of a verified bundle checked again against its
//! CPU loop, as the build checked it ([`check_bundle`]).
//!
//! Everything comes from the bundle alone: the kernels (its signed kernel table and PTX), the
//! locals constant on entry to each nest (recorded in the table), and each nest's function's
//! local types (decoded from the bundle's original module; no analysis runs). A bundle made
//! before the table recorded entry constants is analysed again for them, and a kernel that
//! today's analysis no longer plans is then an error.

use tensorwasm_bundle::{SectionKind, TrustedKeys, VerifiedBundle};
use tensorwasm_guard::OffloadTable;
use tensorwasmd::offload::BackendKind;

use super::nest::{Cases, NestReport, check_kernels};

/// What [`check_bundle`] runs.
#[derive(Debug, Clone)]
pub struct BundleCheck {
    /// Cases per kernel.
    pub cases: u32,
    /// The run's seed.
    pub seed: u64,
    /// `Emulated` (the interpreter) or `Cuda`.
    pub backend: BackendKind,
}

/// Verifies `bytes` against `trusted` at time `now` and runs the oracle on every kernel.
/// `Ok(None)`: the bundle has no kernels. Errors say what is wrong, without the file name.
pub fn check_bundle(
    bytes: &[u8],
    trusted: &TrustedKeys,
    now: u64,
    run: &BundleCheck,
) -> Result<Option<Vec<NestReport>>, String> {
    let bundle = VerifiedBundle::open(bytes, trusted, now).map_err(|e| e.to_string())?;
    let wasm = bundle
        .section_of_kind(SectionKind::Wasm)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the bundle has no wasm section".to_string())?;
    let Some(table) = OffloadTable::from_bundle(&bundle).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    // Each nest's function's locals come from the module itself; its entry constants from
    // the table. Only a table written before they were recorded needs today's analysis.
    let ir = tensorwasm_analysis::translate(&wasm).map_err(|e| e.to_string())?;
    let needs_analysis = table.kernels.iter().any(|k| k.entry_constants.is_none());
    let planned = if needs_analysis {
        Some(tensorwasm_offload::Analysed::new(&wasm)?.plan(Default::default()))
    } else {
        None
    };
    let mut locals = Vec::new();
    let mut constants = Vec::new();
    for k in &table.kernels {
        let Some(func) = ir.function(k.function) else {
            return Err(format!(
                "kernel {} names function {}, which the module does not define",
                k.name, k.function
            ));
        };
        locals.push(func.locals.clone());
        match (&k.entry_constants, &planned) {
            (Some(c), _) => constants.push(c.clone()),
            (None, Some(planned)) => {
                let i = planned
                    .kernels
                    .iter()
                    .position(|p| p.name == k.name && p.function == k.function)
                    .ok_or_else(|| {
                        format!(
                            "the bundle does not record kernel {}'s entry constants (it predates \
                             them), and this tool's analysis no longer plans it (function {})",
                            k.name, k.function
                        )
                    })?;
                constants.push(planned.constants[i].clone());
            }
            (None, None) => return Err("internal: no analysis for entry constants".into()),
        }
    }
    let outlined = tensorwasm_offload::outline(&wasm, &table.kernels, &locals)?;
    check_kernels(
        &outlined,
        &table,
        &locals,
        &constants,
        Cases {
            count: run.cases,
            seed: run.seed,
            budget: false,
        },
        run.backend,
    )
    .map(Some)
}
