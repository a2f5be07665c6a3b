//! The fixed header, the signature block, and the signed digest: the bytes read before trust.
//!
//! Everything here works on fixed-size fields and checks every length against [`crate::caps`]
//! before slicing. This module must never look at manifest contents or section bytes; it only
//! measures them.

use crate::caps;
use crate::error::{Error, Result};
use crate::keys::{KeyId, key_id_of};
use crate::{FORMAT_VERSION, MAGIC};

/// Length of the fixed header.
pub const HEADER_LEN: usize = 16;
/// Length of one signature entry: key id (8) | public key (32) | signature (64).
pub const SIGNATURE_ENTRY_LEN: usize = 8 + 32 + 64;
/// BLAKE3 `derive_key` context of [`manifest_digest`].
pub const MANIFEST_DIGEST_CONTEXT: &str = "tensorwasm bundle manifest v1";

/// The header fields that vary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub manifest_len: usize,
    pub sig_block_len: usize,
}

impl Header {
    /// Offset of the signature block.
    pub fn sig_block_start(&self) -> usize {
        HEADER_LEN + self.manifest_len
    }

    /// Offset of the first section.
    pub fn sections_start(&self) -> usize {
        HEADER_LEN + self.manifest_len + self.sig_block_len
    }
}

/// One entry of the signature block, not yet verified.
#[derive(Debug, Clone)]
pub(crate) struct SigEntry {
    pub key_id: KeyId,
    pub public: [u8; 32],
    pub signature: [u8; 64],
}

/// The digest that is signed: `BLAKE3::derive_key(MANIFEST_DIGEST_CONTEXT, header[0..12] ||
/// manifest)`, where `header[0..12]` is magic, [`FORMAT_VERSION`], flags 0 and the manifest
/// length, exactly as a header for these manifest bytes holds them.
pub fn manifest_digest(manifest_bytes: &[u8]) -> [u8; 32] {
    let len = u32::try_from(manifest_bytes.len()).unwrap_or(u32::MAX);
    let mut h = blake3::Hasher::new_derive_key(MANIFEST_DIGEST_CONTEXT);
    h.update(&header_prefix(len));
    h.update(manifest_bytes);
    *h.finalize().as_bytes()
}

fn header_prefix(manifest_len: u32) -> [u8; 12] {
    let [m0, m1, m2, m3] = MAGIC;
    let [v0, v1] = FORMAT_VERSION.to_le_bytes();
    let [l0, l1, l2, l3] = manifest_len.to_le_bytes();
    [m0, m1, m2, m3, v0, v1, 0, 0, l0, l1, l2, l3]
}

/// The 16 header bytes.
pub(crate) fn write_header(manifest_len: u32, sig_block_len: u32) -> [u8; HEADER_LEN] {
    let [p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11] = header_prefix(manifest_len);
    let [s0, s1, s2, s3] = sig_block_len.to_le_bytes();
    [
        p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, s0, s1, s2, s3,
    ]
}

/// Checks magic, version, flags and caps, and that the file holds the manifest and signature
/// block it declares.
pub(crate) fn read_header(bytes: &[u8]) -> Result<Header> {
    let have = bytes.len() as u64;
    let Some(h) = bytes.first_chunk::<HEADER_LEN>() else {
        return Err(Error::Truncated {
            what: "header",
            needed: HEADER_LEN as u64,
            have,
        });
    };
    let [
        m0,
        m1,
        m2,
        m3,
        v0,
        v1,
        f0,
        f1,
        l0,
        l1,
        l2,
        l3,
        s0,
        s1,
        s2,
        s3,
    ] = *h;
    if [m0, m1, m2, m3] != MAGIC {
        return Err(Error::BadMagic {
            found: [m0, m1, m2, m3],
        });
    }
    let version = u16::from_le_bytes([v0, v1]);
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let flags = u16::from_le_bytes([f0, f1]);
    if flags != 0 {
        return Err(Error::UnsupportedFlags { flags });
    }
    let manifest_len = u32::from_le_bytes([l0, l1, l2, l3]);
    let sig_block_len = u32::from_le_bytes([s0, s1, s2, s3]);
    if manifest_len as usize > caps::MAX_MANIFEST {
        return Err(Error::too_large(
            "manifest_len (header offset 8)",
            manifest_len,
            caps::MAX_MANIFEST,
        ));
    }
    if sig_block_len as usize > caps::MAX_SIG_BLOCK {
        return Err(Error::too_large(
            "sig_block_len (header offset 12)",
            sig_block_len,
            caps::MAX_SIG_BLOCK,
        ));
    }
    let header = Header {
        manifest_len: manifest_len as usize,
        sig_block_len: sig_block_len as usize,
    };
    let needed = header.sections_start() as u64;
    if have < needed {
        return Err(Error::Truncated {
            what: "manifest and signature block",
            needed,
            have,
        });
    }
    Ok(header)
}

/// Parses a signature block: count, exact length, strictly increasing key ids, and each key id
/// equal to the id of the public key next to it. `offset` is the block's offset in the file.
pub(crate) fn read_sig_block(block: &[u8], offset: usize) -> Result<Vec<SigEntry>> {
    let Some((&count, entries)) = block.split_first() else {
        return Err(Error::Truncated {
            what: "signature block",
            needed: 1,
            have: 0,
        });
    };
    let count = usize::from(count);
    if count == 0 {
        return Err(Error::NoSignatures);
    }
    if count > caps::MAX_SIGNATURES {
        return Err(Error::too_large(
            format!("signature count (offset {offset})"),
            count,
            caps::MAX_SIGNATURES,
        ));
    }
    let expected = 1 + count * SIGNATURE_ENTRY_LEN;
    if block.len() != expected {
        return Err(Error::Layout(format!(
            "signature block at offset {offset} is {} bytes, {count} signatures need {expected}",
            block.len()
        )));
    }
    let mut out: Vec<SigEntry> = Vec::with_capacity(count);
    for (i, chunk) in entries.chunks_exact(SIGNATURE_ENTRY_LEN).enumerate() {
        let entry = split_entry(chunk).ok_or_else(|| {
            Error::Layout(format!(
                "signature {i}: entry is not {SIGNATURE_ENTRY_LEN} bytes"
            ))
        })?;
        if out.last().is_some_and(|prev| prev.key_id >= entry.key_id) {
            return Err(Error::Layout(format!(
                "signature {i} (offset {}): key ids are not strictly increasing",
                offset + 1 + i * SIGNATURE_ENTRY_LEN
            )));
        }
        let actual = key_id_of(&entry.public);
        if actual != entry.key_id {
            return Err(Error::KeyIdMismatch {
                at: format!(
                    "signature {i} (offset {})",
                    offset + 1 + i * SIGNATURE_ENTRY_LEN
                ),
                stated: entry.key_id,
                actual,
            });
        }
        out.push(entry);
    }
    Ok(out)
}

fn split_entry(chunk: &[u8]) -> Option<SigEntry> {
    let (id, rest) = chunk.split_first_chunk::<8>()?;
    let (public, rest) = rest.split_first_chunk::<32>()?;
    let signature = rest.first_chunk::<64>()?;
    Some(SigEntry {
        key_id: KeyId(*id),
        public: *public,
        signature: *signature,
    })
}

/// Serializes entries (already sorted by key id, no duplicates) into a signature block.
pub(crate) fn write_sig_block(entries: &[SigEntry]) -> Result<Vec<u8>> {
    let count = u8::try_from(entries.len())
        .ok()
        .filter(|&n| usize::from(n) <= caps::MAX_SIGNATURES)
        .ok_or_else(|| Error::too_large("signers", entries.len(), caps::MAX_SIGNATURES))?;
    let mut out = Vec::with_capacity(1 + entries.len() * SIGNATURE_ENTRY_LEN);
    out.push(count);
    for e in entries {
        out.extend_from_slice(&e.key_id.0);
        out.extend_from_slice(&e.public);
        out.extend_from_slice(&e.signature);
    }
    Ok(out)
}
