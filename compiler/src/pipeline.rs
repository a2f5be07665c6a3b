//! The build driver: calls each stage in order and writes the signed bundle.
//!
//! `source → exports (validate) → aot (per target) → bundle`. Later stages of the offload
//! pipeline plug in before `aot`. The output file appears only complete: it is written to a
//! temporary file in the same directory, synced, and renamed over the destination.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::ProgressBar;
use serde::Serialize;
use tensorwasm_bundle::{BundleWriter, Export, Manifest, SectionKind, SigningKey, Target};

use crate::{aot, exports, fsutil, source, time, tool_version};

/// What `tensorwasm build` was asked to do.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Input module (`.wasm` or `.wat`).
    pub input: PathBuf,
    /// Output bundle path.
    pub output: PathBuf,
    /// Secret key file.
    pub key: PathBuf,
    /// Bundle name (default: the input's file stem).
    pub name: Option<String>,
    /// Monotonic bundle version.
    pub version: u64,
    /// `--expires` text.
    pub expires: Option<String>,
    /// Target triples, in order; empty means the host.
    pub targets: Vec<String>,
    /// Offload loop nests (`false`: `--no-offload`, the module is compiled as given).
    pub offload: bool,
    /// Oracle cases per kernel (at least 1).
    pub oracle_cases: u32,
    /// Oracle seed (default: from the input's hash, so builds are reproducible).
    pub oracle_seed: Option<u64>,
    /// GPU architectures (`sm_80`) to assemble every shipped kernel for with `ptxas`; the
    /// cubins go into the kernel table beside the PTX.
    pub cubin_archs: Vec<String>,
    /// `--emit-ptx DIR` with `--ptx-arch`: write every offloadable nest's `NAME.ptx` and
    /// `NAME.kir` into the directory, from the same analysis as the build's kernels.
    pub emit_ptx: Option<(PathBuf, tensorwasm_blueprints::Target)>,
}

/// Machine-readable summary of a build (`--json`).
#[derive(Debug, Serialize)]
pub struct BuildReport {
    /// Where the bundle was written.
    pub output: String,
    /// Bundle name and version.
    pub name: String,
    /// Bundle version.
    pub version: u64,
    /// Bundle size in bytes.
    pub bundle_bytes: u64,
    /// BLAKE3 of the whole bundle file, hex.
    pub bundle_blake3: String,
    /// BLAKE3 of the input file, hex.
    pub source_blake3: String,
    /// Key id of the signer.
    pub key_id: String,
    /// Creation time from `SOURCE_DATE_EPOCH`, if set.
    pub created_at: Option<u64>,
    /// Expiry, unix seconds.
    pub expires_at: Option<u64>,
    /// One entry per compiled target.
    pub targets: Vec<TargetReport>,
    /// Exports recorded in the manifest, as `name: signature`.
    pub exports: Vec<String>,
    /// Sections in file order.
    pub sections: Vec<SectionReport>,
    /// Every offloadable loop nest the analysis found, and whether it is in the bundle.
    pub kernels: Vec<tensorwasm_offload::KernelBuild>,
    /// With `--emit-ptx`: every offloadable nest lowered for `--ptx-arch`, or why not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub emitted: Vec<tensorwasm_offload::KernelReport>,
    /// Wall time of the whole build.
    pub duration_ms: u64,
}

/// One compiled target.
#[derive(Debug, Serialize)]
pub struct TargetReport {
    /// Target triple.
    pub triple: String,
    /// Bytes of precompiled code.
    pub code_bytes: u64,
    /// Compile wall time.
    pub compile_ms: u64,
    /// Engine fingerprint (hex, first 8 bytes).
    pub engine: String,
}

/// One section of the written bundle.
#[derive(Debug, Serialize)]
pub struct SectionReport {
    /// Section kind.
    pub kind: String,
    /// Uncompressed size.
    pub raw_bytes: u64,
    /// Stored (compressed) size.
    pub stored_bytes: u64,
}

/// Runs the whole build; `progress` shows the current stage (pass a hidden bar for none).
pub fn build(opts: &BuildOptions, progress: &ProgressBar) -> anyhow::Result<BuildReport> {
    let started = Instant::now();
    let key = read_signing_key(&opts.key)?;
    // Asked for cubins: find ptxas and try each architecture now, before minutes of work.
    let ptxas = if opts.cubin_archs.is_empty() {
        None
    } else {
        Some(check_ptxas(&opts.cubin_archs)?)
    };

    progress.set_message(format!("reading {}", opts.input.display()));
    let raw = std::fs::read(&opts.input)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", opts.input.display()))?;
    let source_hash = *blake3::hash(&raw).as_bytes();
    let wasm = match source::classify(&opts.input, raw)? {
        source::Input::Module(wasm) => wasm,
        source::Input::Bundle(_) => anyhow::bail!(
            "{} is already a .twb bundle; build takes a .wasm or .wat module",
            opts.input.display()
        ),
    };

    let targets = target_list(&opts.targets);
    progress.set_message("validating");
    let features = aot::engine_for(&targets[0])?.get_wasm_features();
    let exports = exports::validate(&wasm, features)
        .map_err(|e| anyhow::anyhow!("{}: {e}", opts.input.display()))?;

    let created_at = time::source_date_epoch()?;
    let expires_at = opts
        .expires
        .as_deref()
        .map(|text| time::parse_expiry(text, created_at.unwrap_or_else(time::now)))
        .transpose()?;
    let name = match &opts.name {
        Some(name) => name.clone(),
        None => default_name(&opts.input)?,
    };

    let mut writer = BundleWriter::new(Manifest {
        name: name.clone(),
        version: opts.version,
        created_at,
        expires_at,
        tool: tool_version(),
        source_hash,
        exports: exports.clone(),
        targets: Vec::new(),
        sections: Vec::new(),
    });
    writer.add_section(SectionKind::Wasm, &wasm)?;

    // Offload: plan every candidate nest, check each kernel against the CPU, then rewrite the
    // module to dispatch the kernels that passed.
    // One analysis serves both the kernels and `--emit-ptx`.
    let analysed = if opts.offload || opts.emit_ptx.is_some() {
        progress.set_message("finding and lowering loop nests");
        Some(
            tensorwasm_offload::Analysed::new(&wasm)
                .map_err(|e| anyhow::anyhow!("{}: offload analysis: {e}", opts.input.display()))?,
        )
    } else {
        None
    };
    let emitted = match (&analysed, &opts.emit_ptx) {
        (Some(a), Some((dir, target))) => emit_kernels(a, dir, *target)?,
        _ => Vec::new(),
    };
    let (mut kernels, mut kernel_reports) =
        if let (true, Some(analysed)) = (opts.offload, &analysed) {
            let planned = analysed.plan(tensorwasm_blueprints::Target::default());
            let seed = opts.oracle_seed.unwrap_or_else(|| {
                u64::from_le_bytes(source_hash[..8].try_into().unwrap_or_default())
            });
            progress.set_message(format!(
                "oracle: {} kernels, {} cases each",
                planned.kernels.len(),
                opts.oracle_cases
            ));
            oracle_stage(&wasm, planned, opts.oracle_cases, seed)
        } else {
            (Vec::new(), Vec::new())
        };
    // A module the rewrite cannot handle still builds: without kernels, with the reason in
    // each kernel's report.
    let rewritten = if kernels.is_empty() {
        None
    } else {
        progress.set_message("rewriting the module to dispatch kernels");
        match tensorwasm_offload::rewrite(&wasm, &kernels) {
            Ok(r) => Some(r),
            Err(e) => {
                keep_on_cpu(
                    &mut kernel_reports,
                    &format!("the module could not be rewritten: {e}"),
                );
                None
            }
        }
    };
    if let (Some(_), Some(ptxas)) = (&rewritten, &ptxas) {
        assemble_cubins(
            &mut kernels,
            &mut kernel_reports,
            ptxas,
            &opts.cubin_archs,
            progress,
        )?;
    }
    let compiled_wasm = match rewritten {
        None => wasm.clone(),
        Some(rewritten) => {
            writer.add_section(SectionKind::RewrittenWasm, &rewritten)?;
            let table = tensorwasm_guard::OffloadTable {
                kernels: kernels.clone(),
            };
            // The host validates the table when it restores the bundle; never sign one it
            // would refuse.
            table
                .validate()
                .map_err(|e| anyhow::anyhow!("the kernel table is malformed: {e}"))?;
            let json = table.to_json();
            if json.len() > tensorwasm_guard::validate::MAX_TABLE_BYTES {
                anyhow::bail!(
                    "the kernel table has {} bytes, more than a host reads ({}); build with fewer \
                     --cubin architectures or --no-offload",
                    json.len(),
                    tensorwasm_guard::validate::MAX_TABLE_BYTES
                );
            }
            writer.add_section(SectionKind::Offload, &json)?;
            rewritten
        }
    };

    let mut target_reports = Vec::new();
    progress.set_length(targets.len() as u64);
    for triple in &targets {
        progress.set_message(format!("compiling for {triple}"));
        let t0 = Instant::now();
        let compiled = aot::compile(&compiled_wasm, triple)?;
        let code_section = writer.add_section(SectionKind::Code, &compiled.code)?;
        writer.manifest_mut().targets.push(Target {
            triple: triple.clone(),
            wasmtime_version: compiled.profile.wasmtime_version.clone(),
            engine_fingerprint: compiled.profile.fingerprint,
            engine_profile: compiled.profile.description.clone(),
            cpu_features: Vec::new(),
            code_section,
        });
        target_reports.push(TargetReport {
            triple: triple.clone(),
            code_bytes: compiled.code.len() as u64,
            compile_ms: t0.elapsed().as_millis() as u64,
            engine: compiled.profile.short_fingerprint(),
        });
        progress.inc(1);
    }

    progress.set_message("signing and writing");
    let manifest = writer.manifest_mut().clone();
    let bytes = writer.finish(&[&key])?;
    fsutil::write_atomic(&opts.output, &bytes, None)?;

    let sections = tensorwasm_bundle::inspect_untrusted(&bytes)?
        .0
        .sections
        .iter()
        .map(|s| SectionReport {
            kind: s.kind.to_string(),
            raw_bytes: s.raw_len,
            stored_bytes: s.stored_len,
        })
        .collect();
    Ok(BuildReport {
        output: opts.output.display().to_string(),
        name,
        version: opts.version,
        bundle_bytes: bytes.len() as u64,
        bundle_blake3: blake3::hash(&bytes).to_hex().to_string(),
        source_blake3: hex::encode(manifest.source_hash),
        key_id: key.public().key_id().to_string(),
        created_at,
        expires_at,
        targets: target_reports,
        exports: exports.iter().map(describe_export).collect(),
        sections,
        kernels: kernel_reports,
        emitted,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Leaves every kernel still headed for the bundle on the CPU, for `reason`.
fn keep_on_cpu(reports: &mut [tensorwasm_offload::KernelBuild], reason: &str) {
    for r in reports.iter_mut().filter(|r| r.offloaded) {
        r.offloaded = false;
        r.reason = Some(reason.to_string());
    }
}

/// The `ptxas` for `--cubin`, after assembling an empty module for each of `archs`, so that a
/// missing ptxas or an architecture it does not know fails the build at once.
fn check_ptxas(archs: &[String]) -> anyhow::Result<std::path::PathBuf> {
    let ptxas = tensorwasm_blueprints::ptxas::find_ptxas().ok_or_else(|| {
        anyhow::anyhow!(
            "--cubin needs NVIDIA's ptxas: none in $TENSORWASM_PTXAS or on PATH (scripts/cuda-tools \
             installs it from PyPI, no GPU needed); build without --cubin to ship PTX only"
        )
    })?;
    for arch in archs {
        tensorwasm_blueprints::ptxas::assemble_with(
            &ptxas,
            ".version 8.0\n.target sm_75\n.address_size 64\n",
            arch,
        )
        .map_err(|e| anyhow::anyhow!("--cubin {arch}: {e}"))?;
    }
    Ok(ptxas)
}

/// Runs `ptxas` on every kernel for every architecture of `archs` and stores the cubins in the
/// kernels. Fails, naming the kernel and architecture, when ptxas refuses one: a build that was
/// asked for cubins does not ship without them.
fn assemble_cubins(
    kernels: &mut [tensorwasm_guard::OffloadKernel],
    reports: &mut [tensorwasm_offload::KernelBuild],
    ptxas: &std::path::Path,
    archs: &[String],
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    for k in kernels.iter_mut() {
        for arch in archs {
            progress.set_message(format!("ptxas: {} for {arch}", k.name));
            let r = tensorwasm_blueprints::ptxas::assemble_with(ptxas, &k.ptx, arch)
                .map_err(|e| anyhow::anyhow!("--cubin {arch}: kernel {}: {e}", k.name))?;
            if let Some(report) = reports.iter_mut().find(|b| b.name == k.name) {
                report.cubins.push(tensorwasm_offload::CubinBuild {
                    arch: arch.clone(),
                    bytes: r.cubin.len() as u64,
                    registers: r.max_registers(),
                    spill_bytes: r.spill_stores() + r.spill_loads(),
                });
            }
            k.cubins.push(tensorwasm_guard::Cubin {
                arch: arch.clone(),
                image: r.cubin,
            });
        }
    }
    Ok(())
}

/// Runs the oracle on every planned kernel and keeps those that passed it and ran at least
/// once; the others stay on the CPU with the reason in their report.
/// Writes NAME.ptx and NAME.kir of every offloadable nest into `dir`.
fn emit_kernels(
    analysed: &tensorwasm_offload::Analysed,
    dir: &Path,
    target: tensorwasm_blueprints::Target,
) -> anyhow::Result<Vec<tensorwasm_offload::KernelReport>> {
    let ks = analysed.kernels(target);
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("--emit-ptx {}: {e}", dir.display()))?;
    for k in &ks {
        if let (Some(ptx), Some(kir)) = (&k.ptx, &k.kir) {
            fsutil::write_atomic(&dir.join(format!("{}.ptx", k.name)), ptx.as_bytes(), None)?;
            fsutil::write_atomic(&dir.join(format!("{}.kir", k.name)), kir.as_bytes(), None)?;
        }
    }
    Ok(ks)
}

fn oracle_stage(
    wasm: &[u8],
    planned: tensorwasm_offload::Planned,
    cases: u32,
    seed: u64,
) -> (
    Vec<tensorwasm_guard::OffloadKernel>,
    Vec<tensorwasm_offload::KernelBuild>,
) {
    let tensorwasm_offload::Planned {
        mut kernels,
        locals,
        constants,
        mut reports,
    } = planned;
    if kernels.is_empty() {
        return (kernels, reports);
    }
    let table = tensorwasm_guard::OffloadTable {
        kernels: kernels.clone(),
    };
    let checked = tensorwasm_offload::outline(wasm, &kernels, &locals).and_then(|outlined| {
        crate::oracle::nest::check_kernels(
            &outlined,
            &table,
            &locals,
            &constants,
            crate::oracle::nest::Cases {
                count: cases,
                seed,
                budget: true,
            },
            tensorwasmd::offload::BackendKind::Emulated,
        )
    });
    let verdicts = match checked {
        Ok(v) => v,
        Err(e) => {
            keep_on_cpu(&mut reports, &format!("the oracle could not run: {e}"));
            return (Vec::new(), reports);
        }
    };
    for r in reports.iter_mut() {
        let Some(v) = verdicts.iter().find(|v| v.kernel == r.name) else {
            continue;
        };
        if let Some(f) = &v.failure {
            r.offloaded = false;
            r.reason = Some(format!(
                "the oracle found a mismatch: {} (case seed {:#x}; {})",
                f.what, f.case_seed, f.locals
            ));
        } else if v.dispatched == 0 {
            r.offloaded = false;
            r.reason = Some(format!(
                "the oracle found no input, in {} cases, on which the kernel runs",
                v.cases
            ));
        } else if v.weakly_checked(cases) {
            use tensorwasm_offload::report::{MIN_RAN_CASES, MIN_RAN_SHARE};
            let (num, den) = MIN_RAN_SHARE;
            r.offloaded = false;
            r.reason = Some(format!(
                "weakly checked: the kernel ran in only {} of the oracle's {} cases (the host \
                 declined the others, or a budget stopped it); a kernel ships when it ran in at \
                 least {num}/{den} of its cases and in {} or more",
                v.dispatched,
                v.cases,
                MIN_RAN_CASES.min(cases / 2)
            ));
        }
        r.oracle = Some(v.clone());
    }
    for k in kernels.iter_mut() {
        k.oracle = verdicts
            .iter()
            .find(|v| v.kernel == k.name)
            .map(|v| v.evidence(&tool_version()));
    }
    kernels.retain(|k| reports.iter().any(|r| r.name == k.name && r.offloaded));
    (kernels, reports)
}

/// Reads a secret key file, naming the file in every error.
pub fn read_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read key {}: {e}", path.display()))?;
    SigningKey::from_file_text(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a tensorwasm secret key (made by `tensorwasm keygen`): {e}",
            path.display()
        )
    })
}

/// `name: func (i32) -> (f32)` text for an export.
pub fn describe_export(export: &Export) -> String {
    match &export.kind {
        tensorwasm_bundle::ExportKind::Func { params, results } => {
            let list = |tys: &[tensorwasm_bundle::ValType]| {
                tys.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "{}: func ({}) -> ({})",
                export.name,
                list(params),
                list(results)
            )
        }
        other => format!("{}: {}", export.name, kind_name(other)),
    }
}

fn kind_name(kind: &tensorwasm_bundle::ExportKind) -> &'static str {
    match kind {
        tensorwasm_bundle::ExportKind::Func { .. } => "func",
        tensorwasm_bundle::ExportKind::Memory => "memory",
        tensorwasm_bundle::ExportKind::Table => "table",
        tensorwasm_bundle::ExportKind::Global => "global",
        tensorwasm_bundle::ExportKind::Tag => "tag",
    }
}

/// The requested targets without duplicates, or the host when none were given.
fn target_list(requested: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in requested {
        let t = if t == "host" {
            tensorwasmd::engine::host_triple()
        } else {
            t.clone()
        };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        out.push(tensorwasmd::engine::host_triple());
    }
    out
}

fn default_name(input: &Path) -> anyhow::Result<String> {
    input
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "cannot derive a bundle name from {}; pass --name",
                input.display()
            )
        })
}
