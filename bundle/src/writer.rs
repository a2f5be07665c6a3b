//! Writing bundles: compress sections, validate and encode the manifest, sign, assemble.
//!
//! Output is a pure function of the manifest, the section bytes, the signing keys and the zstd
//! library version: no clocks, no randomness, no maps with random iteration order. This module
//! must never emit a bundle that [`crate::VerifiedBundle::open`] would reject for any reason
//! other than trust or expiry.

use crate::caps;
use crate::error::{Error, Result};
use crate::frame;
use crate::keys::SigningKey;
use crate::manifest::{Manifest, SectionEntry, SectionKind};
use crate::wire::{self, SigEntry};

/// The zstd level every section is compressed at. Changing it changes bundle bytes.
pub const ZSTD_LEVEL: i32 = 9;

/// Builds one bundle. Add sections, fix up the manifest (e.g. [`crate::Target::code_section`]),
/// then [`BundleWriter::finish`].
#[derive(Debug)]
pub struct BundleWriter {
    manifest: Manifest,
    /// The section table as `add_section` built it, to detect edits through `manifest_mut`.
    entries: Vec<SectionEntry>,
    stored: Vec<Vec<u8>>,
}

impl BundleWriter {
    /// Starts a bundle; `manifest.sections` is replaced by the sections added here.
    pub fn new(manifest_without_sections: Manifest) -> Self {
        let mut manifest = manifest_without_sections;
        manifest.sections.clear();
        BundleWriter {
            manifest,
            entries: Vec::new(),
            stored: Vec::new(),
        }
    }

    /// Compresses `raw` (one zstd frame at [`ZSTD_LEVEL`], with content size and checksum),
    /// records it in the manifest, and returns its section index.
    pub fn add_section(&mut self, kind: SectionKind, raw: &[u8]) -> Result<u32> {
        let count = self.manifest.sections.len();
        if count >= caps::MAX_SECTIONS {
            return Err(Error::too_large("sections", count + 1, caps::MAX_SECTIONS));
        }
        let index = u32::try_from(count)
            .map_err(|_| Error::too_large("sections", count, caps::MAX_SECTIONS))?;
        let raw_len = raw.len() as u64;
        if raw_len > caps::MAX_SECTION_RAW {
            return Err(Error::too_large(
                format!("section {index} raw length"),
                raw_len,
                caps::MAX_SECTION_RAW,
            ));
        }
        let stored = frame::compress(index, raw, ZSTD_LEVEL)?;
        let stored_len = stored.len() as u64;
        if stored_len > caps::MAX_SECTION_STORED {
            return Err(Error::too_large(
                format!("section {index} stored length"),
                stored_len,
                caps::MAX_SECTION_STORED,
            ));
        }
        let hash = *blake3::hash(&stored).as_bytes();
        let entry = SectionEntry {
            kind,
            stored_len,
            raw_len,
            hash,
        };
        self.manifest.sections.push(entry.clone());
        self.entries.push(entry);
        self.stored.push(stored);
        Ok(index)
    }

    /// The manifest being built. Changing `sections` here is refused by [`BundleWriter::finish`].
    pub fn manifest_mut(&mut self) -> &mut Manifest {
        &mut self.manifest
    }

    /// Validates and encodes the manifest, signs it with every key (at least one, distinct),
    /// and returns the bundle bytes. Same inputs and keys give identical bytes.
    pub fn finish(self, signers: &[&SigningKey]) -> Result<Vec<u8>> {
        if signers.is_empty() {
            return Err(Error::NoSignatures);
        }
        if signers.len() > caps::MAX_SIGNATURES {
            return Err(Error::too_large(
                "signers",
                signers.len(),
                caps::MAX_SIGNATURES,
            ));
        }
        self.check_sections_untouched()?;
        let manifest_bytes = self.manifest.encode()?;
        let digest = wire::manifest_digest(&manifest_bytes);
        let mut entries: Vec<SigEntry> = signers
            .iter()
            .map(|k| {
                let public = k.public();
                SigEntry {
                    key_id: public.key_id(),
                    public: public.to_bytes(),
                    signature: k.sign_digest(&digest),
                }
            })
            .collect();
        entries.sort_by_key(|e| e.key_id);
        for pair in entries.windows(2) {
            if let [a, b] = pair
                && a.key_id == b.key_id
            {
                return Err(Error::Layout(format!("signer {} is given twice", a.key_id)));
            }
        }
        let sig_block = wire::write_sig_block(&entries)?;
        let manifest_len = u32::try_from(manifest_bytes.len())
            .map_err(|_| Error::too_large("manifest", manifest_bytes.len(), caps::MAX_MANIFEST))?;
        let sig_len = u32::try_from(sig_block.len())
            .ok()
            .filter(|&n| n as usize <= caps::MAX_SIG_BLOCK)
            .ok_or_else(|| {
                Error::too_large("signature block", sig_block.len(), caps::MAX_SIG_BLOCK)
            })?;
        let total = wire::HEADER_LEN
            + manifest_bytes.len()
            + sig_block.len()
            + self.stored.iter().map(Vec::len).sum::<usize>();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&wire::write_header(manifest_len, sig_len));
        out.extend_from_slice(&manifest_bytes);
        out.extend_from_slice(&sig_block);
        for s in &self.stored {
            out.extend_from_slice(s);
        }
        Ok(out)
    }

    /// The caller may edit the manifest, but not the section table.
    fn check_sections_untouched(&self) -> Result<()> {
        if self.manifest.sections == self.entries {
            Ok(())
        } else {
            Err(Error::Manifest(
                "sections were edited through manifest_mut; add them with add_section".to_owned(),
            ))
        }
    }
}
