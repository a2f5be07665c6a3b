//! `tensorwasm oracle BUNDLE.twb`: every kernel of a verified bundle checked again against its
//! CPU loop, as the build checked it ([`check_bundle`]).
//!
//! The kernels are the bundle's own (its signed kernel table and PTX). What the table does not
//! carry, the locals of each nest's function and the locals constant on entry to the nest,
//! comes from analysing the bundle's original module again, once; a kernel that today's
//! analysis no longer plans is an error, since its entry constants are then unknown.

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
    let analysed = tensorwasm_offload::Analysed::new(&wasm)?;
    let planned = analysed.plan(Default::default());
    let mut locals = Vec::new();
    let mut constants = Vec::new();
    for k in &table.kernels {
        if analysed.ir.function(k.function).is_none() {
            return Err(format!(
                "kernel {} names function {}, which the module does not define",
                k.name, k.function
            ));
        }
        let i = planned
            .kernels
            .iter()
            .position(|p| p.name == k.name && p.function == k.function)
            .ok_or_else(|| {
                format!(
                    "this tool's analysis no longer plans kernel {} (function {}), so its entry \
                     constants are unknown",
                    k.name, k.function
                )
            })?;
        locals.push(planned.locals[i].clone());
        constants.push(planned.constants[i].clone());
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
