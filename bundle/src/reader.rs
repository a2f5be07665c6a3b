//! Reading bundles: [`VerifiedBundle::open`] for serving, [`inspect_untrusted`] for display.
//!
//! The order of checks is the security argument, so it lives in one place: header, caps,
//! signature block, trust, `verify_strict`, and only then the manifest decode, the section table
//! and expiry; a section is hash-checked before it is inflated. This module must never decode
//! the manifest before its signatures verify, and never decompress a section in
//! [`inspect_untrusted`].

use std::fmt;

use crate::error::{Error, Result};
use crate::frame;
use crate::keys::{KeyId, PublicKey, TrustedKeys};
use crate::manifest::{Manifest, SectionEntry};
use crate::wire::{self, HEADER_LEN, Header, SigEntry};

/// One signature of a bundle, after it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInfo {
    /// The signer's key id.
    pub key_id: KeyId,
    /// The signer's public key, as embedded in the signature block.
    pub public_key: PublicKey,
    /// Whether the key is in the reader's [`TrustedKeys`] (always false from
    /// [`inspect_untrusted`]).
    pub trusted: bool,
}

/// Where the parts of a bundle lie in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Length of the fixed header (always [`HEADER_LEN`]).
    pub header_len: usize,
    /// Length of the manifest bytes.
    pub manifest_len: usize,
    /// Length of the signature block.
    pub sig_block_len: usize,
    /// File offset of each section, in manifest order.
    pub section_offsets: Vec<u64>,
    /// Length of the whole file.
    pub total_len: u64,
}

/// A bundle whose manifest is signed by a trusted key, whose section table matches the file
/// exactly, and which has not expired. Sections are checked and inflated on demand.
pub struct VerifiedBundle<'a> {
    bytes: &'a [u8],
    manifest: Manifest,
    signatures: Vec<SignatureInfo>,
    layout: Layout,
}

impl fmt::Debug for VerifiedBundle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedBundle")
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .field("signatures", &self.signatures)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl<'a> VerifiedBundle<'a> {
    /// header -> caps -> signature block -> trust -> `verify_strict` of every signature over
    /// [`crate::manifest_digest`] -> only then the capped manifest decode -> section table equals
    /// the rest of the file exactly -> expiry against `now` (unix seconds).
    ///
    /// Succeeds only if at least one signature is by a trusted key and every signature in the
    /// block verifies.
    pub fn open(bytes: &'a [u8], trusted: &TrustedKeys, now: u64) -> Result<Self> {
        let (header, manifest_bytes, entries) = split(bytes)?;
        let signatures = resolve_keys(&entries, |k| trusted.contains(k))?;
        if !signatures.iter().any(|s| s.trusted) {
            return Err(Error::UntrustedKey {
                key_ids: signatures.iter().map(|s| s.key_id).collect(),
            });
        }
        verify_all(manifest_bytes, &entries, &signatures)?;
        // Signatures verified: the manifest bytes are the publisher's, decode them now.
        let manifest = Manifest::decode(manifest_bytes)?;
        let layout = layout(bytes, header, &manifest)?;
        if let Some(expires_at) = manifest.expires_at
            && now >= expires_at
        {
            return Err(Error::Expired { expires_at, now });
        }
        Ok(VerifiedBundle {
            bytes,
            manifest,
            signatures,
            layout,
        })
    }

    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Every signature in the block (all verified), sorted by key id.
    pub fn signatures(&self) -> &[SignatureInfo] {
        &self.signatures
    }

    /// Where the parts lie in the file.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The section's stored bytes, after checking their BLAKE3 hash against the manifest.
    pub fn section_stored(&self, index: u32) -> Result<&'a [u8]> {
        let (entry, stored) = self.locate(index)?;
        if blake3::hash(stored).as_bytes() != &entry.hash {
            return Err(Error::SectionHash {
                index,
                kind: entry.kind,
            });
        }
        Ok(stored)
    }

    /// The section's raw bytes: hash-checked first, then inflated into a buffer of exactly
    /// `raw_len` bytes; fails if the frame would produce more or fewer.
    pub fn section(&self, index: u32) -> Result<Vec<u8>> {
        let stored = self.section_stored(index)?;
        let (entry, _) = self.locate(index)?;
        frame::inflate(index, stored, entry.raw_len)
    }

    /// The first section of `kind`, decompressed as [`VerifiedBundle::section`] does; `None`
    /// when the bundle has none.
    pub fn section_of_kind(&self, kind: crate::SectionKind) -> Result<Option<Vec<u8>>> {
        match self.manifest.sections.iter().position(|s| s.kind == kind) {
            Some(i) => self.section(i as u32).map(Some),
            None => Ok(None),
        }
    }

    fn locate(&self, index: u32) -> Result<(&SectionEntry, &'a [u8])> {
        let count = self.manifest.sections.len();
        let no_such = || Error::NoSuchSection { index, count };
        let i = usize::try_from(index).map_err(|_| no_such())?;
        let entry = self.manifest.sections.get(i).ok_or_else(no_such)?;
        let start = self
            .layout
            .section_offsets
            .get(i)
            .copied()
            .ok_or_else(no_such)?;
        let range = usize::try_from(start).ok().and_then(|s| {
            let end = s.checked_add(usize::try_from(entry.stored_len).ok()?)?;
            Some(s..end)
        });
        let stored = range
            .and_then(|r| self.bytes.get(r))
            .ok_or_else(|| Error::Layout(format!("section {index} lies outside the file")))?;
        Ok((entry, stored))
    }
}

/// For `tensorwasm inspect` without a trust list: every signature must verify against the
/// public key embedded next to it; then the manifest is decoded and the section table checked
/// against the file. Never decompresses anything and does not check expiry. All returned
/// signatures have `trusted == false`.
pub fn inspect_untrusted(bytes: &[u8]) -> Result<(Manifest, Vec<SignatureInfo>, Layout)> {
    let (header, manifest_bytes, entries) = split(bytes)?;
    let signatures = resolve_keys(&entries, |_| false)?;
    verify_all(manifest_bytes, &entries, &signatures)?;
    let manifest = Manifest::decode(manifest_bytes)?;
    let layout = layout(bytes, header, &manifest)?;
    Ok((manifest, signatures, layout))
}

/// Header, then the manifest bytes (not decoded) and the parsed signature block.
fn split(bytes: &[u8]) -> Result<(Header, &[u8], Vec<SigEntry>)> {
    let header = wire::read_header(bytes)?;
    let truncated = || Error::Truncated {
        what: "manifest and signature block",
        needed: header.sections_start() as u64,
        have: bytes.len() as u64,
    };
    let manifest_bytes = bytes
        .get(HEADER_LEN..header.sig_block_start())
        .ok_or_else(truncated)?;
    let block = bytes
        .get(header.sig_block_start()..header.sections_start())
        .ok_or_else(truncated)?;
    let entries = wire::read_sig_block(block, header.sig_block_start())?;
    Ok((header, manifest_bytes, entries))
}

/// Turns embedded public key bytes into keys (rejecting invalid and weak ones) and marks trust.
fn resolve_keys(
    entries: &[SigEntry],
    is_trusted: impl Fn(&PublicKey) -> bool,
) -> Result<Vec<SignatureInfo>> {
    entries
        .iter()
        .map(|e| {
            let public_key = PublicKey::from_bytes(&e.public)
                .map_err(|_| Error::BadSignature { key_id: e.key_id })?;
            Ok(SignatureInfo {
                key_id: e.key_id,
                public_key,
                trusted: is_trusted(&public_key),
            })
        })
        .collect()
}

/// `verify_strict` every signature; any failure rejects the bundle.
fn verify_all(manifest_bytes: &[u8], entries: &[SigEntry], infos: &[SignatureInfo]) -> Result<()> {
    let digest = wire::manifest_digest(manifest_bytes);
    for (e, info) in entries.iter().zip(infos) {
        if !info.public_key.verify_digest(&digest, &e.signature) {
            return Err(Error::BadSignature { key_id: e.key_id });
        }
    }
    Ok(())
}

/// Section offsets; the sections must cover the rest of the file exactly.
fn layout(bytes: &[u8], header: Header, manifest: &Manifest) -> Result<Layout> {
    let total_len = bytes.len() as u64;
    let mut offset = header.sections_start() as u64;
    let mut section_offsets = Vec::with_capacity(manifest.sections.len());
    for s in &manifest.sections {
        section_offsets.push(offset);
        // Both terms are capped (by the file length and MAX_SECTION_STORED), so this cannot
        // overflow, but stay checked anyway.
        offset = offset
            .checked_add(s.stored_len)
            .ok_or_else(|| Error::Layout("section lengths overflow".to_owned()))?;
    }
    if offset > total_len {
        return Err(Error::Truncated {
            what: "sections",
            needed: offset,
            have: total_len,
        });
    }
    if offset < total_len {
        return Err(Error::TrailingBytes {
            offset,
            count: total_len - offset,
        });
    }
    Ok(Layout {
        header_len: HEADER_LEN,
        manifest_len: header.manifest_len,
        sig_block_len: header.sig_block_len,
        section_offsets,
        total_len,
    })
}
