//! The manifest: what a bundle contains and what it was built for, as signed by the publisher.
//!
//! The types here are the wire format (postcard, fields in declaration order, enum variants by
//! position), so reordering fields or variants is a format change that needs a new
//! [`crate::FORMAT_VERSION`]. Decoding enforces [`crate::caps`] while it reads; [`Manifest::validate`]
//! checks the rest. This module must never be asked to decode bytes whose signature has not
//! been verified (the reader guarantees that), and never decompresses anything.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::caps;
use crate::error::{Error, Result};
use crate::serde_bounded;

/// Everything a bundle declares about itself. Encoded with postcard; see `docs/BUNDLE-FORMAT.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Bundle name, chosen by the publisher.
    #[serde(deserialize_with = "serde_bounded::string")]
    pub name: String,
    /// Monotonic version, chosen by the publisher.
    pub version: u64,
    /// Unix seconds (from `SOURCE_DATE_EPOCH`), `None` when unset.
    pub created_at: Option<u64>,
    /// Unix seconds after which readers refuse the bundle.
    pub expires_at: Option<u64>,
    /// The tool that wrote the bundle, e.g. `tensorwasm 0.1.0`.
    #[serde(deserialize_with = "serde_bounded::string")]
    pub tool: String,
    /// BLAKE3 of the input module bytes.
    pub source_hash: [u8; 32],
    /// The module's exports with their types.
    #[serde(deserialize_with = "serde_bounded::exports")]
    pub exports: Vec<Export>,
    /// The native targets this bundle carries code for.
    #[serde(deserialize_with = "serde_bounded::targets")]
    pub targets: Vec<Target>,
    /// The sections, in file order. Filled by [`crate::BundleWriter`].
    #[serde(deserialize_with = "serde_bounded::sections")]
    pub sections: Vec<SectionEntry>,
}

/// One export of the input module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    /// Export name.
    #[serde(deserialize_with = "serde_bounded::string")]
    pub name: String,
    /// What is exported.
    pub kind: ExportKind,
}

/// The kind (and for functions, the type) of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportKind {
    /// A function with its signature. Tag 0.
    Func {
        /// Parameter types.
        #[serde(deserialize_with = "serde_bounded::arity")]
        params: Vec<ValType>,
        /// Result types.
        #[serde(deserialize_with = "serde_bounded::arity")]
        results: Vec<ValType>,
    },
    /// A memory. Tag 1.
    Memory,
    /// A table. Tag 2.
    Table,
    /// A global. Tag 3.
    Global,
    /// An exception tag. Tag 4.
    Tag,
}

/// A Wasm value type as far as the bundle cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValType {
    /// `i32`, tag 0.
    I32,
    /// `i64`, tag 1.
    I64,
    /// `f32`, tag 2.
    F32,
    /// `f64`, tag 3.
    F64,
    /// `v128`, tag 4.
    V128,
    /// `funcref`, tag 5.
    FuncRef,
    /// `externref`, tag 6.
    ExternRef,
    /// Any other reference type, tag 7.
    Other,
}

/// Native code for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Target triple, e.g. `x86_64-unknown-linux-gnu`.
    #[serde(deserialize_with = "serde_bounded::string")]
    pub triple: String,
    /// Wasmtime version that produced the code, e.g. `48.0.8`.
    #[serde(deserialize_with = "serde_bounded::string")]
    pub wasmtime_version: String,
    /// Opaque engine-compatibility fingerprint, computed by the runtime crate.
    pub engine_fingerprint: [u8; 32],
    /// Human-readable description of the engine configuration.
    #[serde(deserialize_with = "serde_bounded::string")]
    pub engine_profile: String,
    /// CPU features the code requires; empty means the target's baseline.
    #[serde(deserialize_with = "serde_bounded::cpu_features")]
    pub cpu_features: Vec<String>,
    /// Index into [`Manifest::sections`] of this target's [`SectionKind::Code`] section.
    pub code_section: u32,
}

/// One section as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionEntry {
    /// What the section holds.
    pub kind: SectionKind,
    /// Length of the stored (compressed) bytes in the file.
    pub stored_len: u64,
    /// Length after decompression.
    pub raw_len: u64,
    /// BLAKE3 of the stored (compressed) bytes.
    pub hash: [u8; 32],
}

/// What a section holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SectionKind {
    /// The input module, tag 0.
    Wasm,
    /// The module after offload rewriting, tag 1.
    RewrittenWasm,
    /// Precompiled native code for one target, tag 2.
    Code,
    /// PTX text, tag 3.
    Ptx,
    /// A cubin, tag 4.
    Cubin,
    /// The oracle's report, tag 5.
    OracleReport,
    /// The kernel table: launch plans, PTX and oracle reports as JSON
    /// (`tensorwasm_guard::OffloadTable`, JSON), tag 6.
    Offload,
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::V128 => "v128",
            ValType::FuncRef => "funcref",
            ValType::ExternRef => "externref",
            ValType::Other => "other",
        })
    }
}

impl fmt::Display for SectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SectionKind::Wasm => "wasm",
            SectionKind::RewrittenWasm => "rewritten-wasm",
            SectionKind::Code => "code",
            SectionKind::Ptx => "ptx",
            SectionKind::Cubin => "cubin",
            SectionKind::OracleReport => "oracle-report",
            SectionKind::Offload => "offload",
        })
    }
}

impl fmt::Display for ExportKind {
    /// `func (i32, i64) -> (f32)`, `memory`, `table`, `global`, `tag`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportKind::Func { params, results } => {
                write!(f, "func ({}) -> ({})", join(params), join(results))
            }
            ExportKind::Memory => f.write_str("memory"),
            ExportKind::Table => f.write_str("table"),
            ExportKind::Global => f.write_str("global"),
            ExportKind::Tag => f.write_str("tag"),
        }
    }
}

fn join(tys: &[ValType]) -> String {
    tys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Manifest {
    /// Checks what decoding alone does not: every cap in [`crate::caps`], unique export names,
    /// and that each target's `code_section` names an existing [`SectionKind::Code`] section.
    pub fn validate(&self) -> Result<()> {
        check_str("name", &self.name)?;
        check_str("tool", &self.tool)?;
        check_count("exports", self.exports.len(), caps::MAX_EXPORTS)?;
        check_count("targets", self.targets.len(), caps::MAX_TARGETS)?;
        check_count("sections", self.sections.len(), caps::MAX_SECTIONS)?;
        let mut names = HashSet::with_capacity(self.exports.len());
        for (i, e) in self.exports.iter().enumerate() {
            check_str(&format!("exports[{i}].name"), &e.name)?;
            if let ExportKind::Func { params, results } = &e.kind {
                check_count(
                    &format!("exports[{i}].params"),
                    params.len(),
                    caps::MAX_FUNC_ARITY,
                )?;
                check_count(
                    &format!("exports[{i}].results"),
                    results.len(),
                    caps::MAX_FUNC_ARITY,
                )?;
            }
            if !names.insert(e.name.as_str()) {
                return Err(Error::Manifest(format!(
                    "exports[{i}].name {:?} is exported twice",
                    e.name
                )));
            }
        }
        for (i, s) in self.sections.iter().enumerate() {
            if s.stored_len > caps::MAX_SECTION_STORED {
                return Err(Error::too_large(
                    format!("sections[{i}].stored_len"),
                    s.stored_len,
                    caps::MAX_SECTION_STORED,
                ));
            }
            if s.raw_len > caps::MAX_SECTION_RAW {
                return Err(Error::too_large(
                    format!("sections[{i}].raw_len"),
                    s.raw_len,
                    caps::MAX_SECTION_RAW,
                ));
            }
        }
        for (i, t) in self.targets.iter().enumerate() {
            self.check_target(i, t)?;
        }
        Ok(())
    }

    fn check_target(&self, i: usize, t: &Target) -> Result<()> {
        check_str(&format!("targets[{i}].triple"), &t.triple)?;
        check_str(
            &format!("targets[{i}].wasmtime_version"),
            &t.wasmtime_version,
        )?;
        check_str(&format!("targets[{i}].engine_profile"), &t.engine_profile)?;
        check_count(
            &format!("targets[{i}].cpu_features"),
            t.cpu_features.len(),
            caps::MAX_CPU_FEATURES,
        )?;
        for (j, feat) in t.cpu_features.iter().enumerate() {
            check_str(&format!("targets[{i}].cpu_features[{j}]"), feat)?;
        }
        let entry = usize::try_from(t.code_section)
            .ok()
            .and_then(|idx| self.sections.get(idx));
        match entry {
            Some(s) if s.kind == SectionKind::Code => Ok(()),
            Some(s) => Err(Error::Manifest(format!(
                "targets[{i}].code_section {} is a {} section, not code",
                t.code_section, s.kind
            ))),
            None => Err(Error::Manifest(format!(
                "targets[{i}].code_section {} is out of range ({} sections)",
                t.code_section,
                self.sections.len()
            ))),
        }
    }

    /// Postcard encoding after [`Manifest::validate`]; the exact bytes that get signed.
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let bytes =
            postcard::to_stdvec(self).map_err(|e| Error::Manifest(format!("encode: {e}")))?;
        if bytes.len() > caps::MAX_MANIFEST {
            return Err(Error::too_large(
                "manifest",
                bytes.len(),
                caps::MAX_MANIFEST,
            ));
        }
        Ok(bytes)
    }

    /// Decodes signed manifest bytes: capped postcard decode, all bytes consumed, canonical
    /// encoding (re-encoding gives the same bytes), then [`Manifest::validate`].
    pub(crate) fn decode(bytes: &[u8]) -> Result<Manifest> {
        let (m, rest) = postcard::take_from_bytes::<Manifest>(bytes)
            .map_err(|e| Error::Manifest(format!("decode: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::Manifest(format!(
                "{} trailing bytes at manifest offset {}",
                rest.len(),
                bytes.len() - rest.len()
            )));
        }
        let again =
            postcard::to_stdvec(&m).map_err(|e| Error::Manifest(format!("re-encode: {e}")))?;
        if again != bytes {
            return Err(Error::Manifest(
                "bytes are not the canonical postcard encoding (overlong varint)".to_owned(),
            ));
        }
        m.validate()?;
        Ok(m)
    }
}

fn check_str(what: &str, s: &str) -> Result<()> {
    if s.len() > caps::MAX_STRING {
        return Err(Error::too_large(what, s.len(), caps::MAX_STRING));
    }
    Ok(())
}

fn check_count(what: &str, n: usize, cap: usize) -> Result<()> {
    if n > cap {
        return Err(Error::too_large(what, n, cap));
    }
    Ok(())
}
