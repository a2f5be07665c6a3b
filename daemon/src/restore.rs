//! Bundle bytes → a verified, deserialized [`wasmtime::Module`].
//!
//! Order matters and is the security boundary: the bundle crate verifies the signature over the
//! manifest before anything else is parsed; then this module picks the host's target and checks
//! the Wasmtime version, the engine fingerprint and the CPU features from the (now trusted)
//! manifest; only then is the code section hash-checked, decompressed to its signed size and
//! handed to `Module::deserialize`. Nothing is deserialized from a bundle that fails any check.

use std::time::{Duration, Instant};

use tensorwasm_bundle::{Manifest, SectionKind, SignatureInfo, TrustedKeys, VerifiedBundle};
use wasmtime::{Engine, Module};

use crate::engine::{EngineProfile, WASMTIME_VERSION, host_has_cpu_feature, host_triple};
use crate::error::{Error, Result};

/// A bundle restored for this host.
#[derive(Debug)]
pub struct Restored {
    /// The deserialized code, ready to instantiate.
    pub module: Module,
    /// The verified manifest.
    pub manifest: Manifest,
    /// Who signed it.
    pub signatures: Vec<SignatureInfo>,
    /// Index into `manifest.targets` of the target that was loaded.
    pub target: usize,
    /// The kernel table, when the bundle offloads loop nests.
    pub kernels: Option<tensorwasm_guard::OffloadTable>,
    /// Time spent in each step.
    pub timings: RestoreTimings,
}

/// Where restore time goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreTimings {
    /// Header, signature and manifest.
    pub verify: Duration,
    /// Hash check and decompression of the code section.
    pub decompress: Duration,
    /// `Module::deserialize`.
    pub deserialize: Duration,
}

/// Verifies `bytes` against `trusted` at time `now` (unix seconds) and deserializes the code for
/// this host into `engine`, which must be built from [`crate::engine::base_config`].
pub fn restore(engine: &Engine, bytes: &[u8], trusted: &TrustedKeys, now: u64) -> Result<Restored> {
    let started = Instant::now();
    let bundle = VerifiedBundle::open(bytes, trusted, now)?;
    let manifest = bundle.manifest().clone();
    let target = select_target(engine, &manifest)?;
    let verified = Instant::now();

    let code_index = manifest.targets[target].code_section;
    check_code_section(&manifest, code_index)?;
    let code = bundle.section(code_index)?;
    let decompressed = Instant::now();

    let module = deserialize(engine, &code, &manifest.targets[target].triple)?;
    let kernels = tensorwasm_guard::OffloadTable::from_bundle(&bundle)
        .map_err(|e| tensorwasm_bundle::Error::Manifest(e.to_string()))?;
    let done = Instant::now();
    Ok(Restored {
        module,
        signatures: bundle.signatures().to_vec(),
        manifest,
        target,
        kernels,
        timings: RestoreTimings {
            verify: verified - started,
            decompress: decompressed - verified,
            deserialize: done - decompressed,
        },
    })
}

/// Picks the manifest's target for this host and checks that its code can run on `engine`.
pub fn select_target(engine: &Engine, manifest: &Manifest) -> Result<usize> {
    let host = host_triple();
    let Some(index) = manifest.targets.iter().position(|t| t.triple == host) else {
        let available: Vec<&str> = manifest.targets.iter().map(|t| t.triple.as_str()).collect();
        return Err(Error::NoTarget {
            host,
            available: if available.is_empty() {
                "no target".into()
            } else {
                available.join(", ")
            },
        });
    };
    let target = &manifest.targets[index];
    if target.wasmtime_version != WASMTIME_VERSION {
        return Err(Error::WasmtimeVersion {
            triple: target.triple.clone(),
            bundle: target.wasmtime_version.clone(),
            runtime: WASMTIME_VERSION.to_string(),
        });
    }
    let ours = EngineProfile::of(engine, &host);
    if target.engine_fingerprint != ours.fingerprint {
        return Err(Error::EngineMismatch {
            triple: target.triple.clone(),
            bundle_fp: hex::encode(&target.engine_fingerprint[..8]),
            bundle_desc: target.engine_profile.clone(),
            runtime_fp: ours.short_fingerprint(),
            runtime_desc: ours.description,
        });
    }
    let missing: Vec<&str> = target
        .cpu_features
        .iter()
        .map(String::as_str)
        .filter(|f| !host_has_cpu_feature(f))
        .collect();
    if !missing.is_empty() {
        return Err(Error::CpuFeatures {
            triple: target.triple.clone(),
            missing: missing.join(", "),
            required: target.cpu_features.join(", "),
        });
    }
    Ok(index)
}

fn check_code_section(manifest: &Manifest, index: u32) -> Result<()> {
    match manifest.sections.get(index as usize) {
        Some(entry) if entry.kind == SectionKind::Code => Ok(()),
        Some(entry) => Err(Error::Runtime(format!(
            "manifest names section {index} as code, but it is a {} section",
            entry.kind
        ))),
        None => Err(Error::Runtime(format!(
            "manifest names section {index} as code, but the bundle has {} sections",
            manifest.sections.len()
        ))),
    }
}

/// Deserializes precompiled code from a verified bundle.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, code: &[u8], triple: &str) -> Result<Module> {
    // SAFETY: `Module::deserialize` trusts its input to be code that Wasmtime itself produced.
    // `code` comes from a section whose BLAKE3 hash is bound by a manifest signed with a key
    // the operator trusts, was decompressed to exactly its signed length, and was produced by
    // `Engine::precompile_module` of the same Wasmtime version and engine configuration (both
    // checked by `select_target` above); Wasmtime re-checks version and configuration itself.
    unsafe { Module::deserialize(engine, code) }.map_err(|e| Error::Deserialize {
        triple: triple.to_string(),
        message: format!("{e:#}"),
    })
}
