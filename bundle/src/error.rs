//! The crate's one error type.
//!
//! Every message names the field, offset or section at fault and has no trailing period. This
//! module must never hide which stage failed: callers (and tests) rely on
//! [`Error::is_before_decompression`] to prove that tampered bundles are rejected before any
//! decompressor sees their bytes.

use crate::keys::KeyId;
use crate::manifest::SectionKind;

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong reading, writing or signing a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Header bytes 0..4 are not [`crate::MAGIC`].
    #[error("bad magic at offset 0: expected 54574200 (\"TWB\\0\"), found {}", hex::encode(.found))]
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// Header bytes 4..6 name a format version this crate does not read.
    #[error(
        "unsupported bundle format version {found} at offset 4 (this reader supports {supported})"
    )]
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Version this crate reads.
        supported: u16,
    },
    /// Header bytes 6..8 are not zero.
    #[error("unsupported header flags {flags:#06x} at offset 6 (must be 0)")]
    UnsupportedFlags {
        /// Flags in the file.
        flags: u16,
    },
    /// The input ends before a part it declares.
    #[error("truncated {what}: needs {needed} bytes, have {have}")]
    Truncated {
        /// Which part is cut short.
        what: &'static str,
        /// Bytes the part needs (counted from the start of the file for whole-file parts).
        needed: u64,
        /// Bytes available.
        have: u64,
    },
    /// A length or count exceeds its cap in [`crate::caps`].
    #[error("{what} is too large: {size} exceeds the cap of {cap}")]
    TooLarge {
        /// Which field.
        what: String,
        /// Its size or count.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// The manifest bytes do not decode, or decode to an inconsistent manifest.
    #[error("manifest: {0}")]
    Manifest(String),
    /// The signature block holds no signature, or the writer was given no signer.
    #[error("bundle has no signatures")]
    NoSignatures,
    /// No signature in the block is by a trusted key.
    #[error("no signature by a trusted key (signed by: {})", join_ids(.key_ids))]
    UntrustedKey {
        /// Key ids of the signatures present.
        key_ids: Vec<KeyId>,
    },
    /// A signature in the block does not verify against its embedded public key.
    #[error("signature by key {key_id} does not verify")]
    BadSignature {
        /// Key id of the failing signature.
        key_id: KeyId,
    },
    /// A key id written next to a public key (signature block or key file) is not that key's id.
    #[error("key id mismatch: {at} states {stated}, but the public key's id is {actual}")]
    KeyIdMismatch {
        /// Where the mismatch is (e.g. `signature 1` or `public key file`).
        at: String,
        /// The key id written down.
        stated: KeyId,
        /// The key id computed from the public key.
        actual: KeyId,
    },
    /// A section's stored bytes do not hash to the BLAKE3 recorded in the manifest.
    #[error("section {index} ({kind}): stored bytes do not match the manifest hash")]
    SectionHash {
        /// Section index.
        index: u32,
        /// Section kind.
        kind: SectionKind,
    },
    /// A section's frame produces more than its signed raw length.
    #[error("section {index}: zstd frame inflates past the signed raw length {raw_len}")]
    SectionInflates {
        /// Section index.
        index: u32,
        /// Signed raw length.
        raw_len: u64,
    },
    /// A section's frame produces less than its signed raw length.
    #[error("section {index}: zstd frame yields {got} bytes, the signed raw length is {expected}")]
    SectionShort {
        /// Section index.
        index: u32,
        /// Signed raw length.
        expected: u64,
        /// Bytes the frame yields (or declares in its header).
        got: u64,
    },
    /// The zstd decoder rejected a section's frame.
    #[error("section {index}: zstd: {msg}")]
    Decompress {
        /// Section index.
        index: u32,
        /// What the decoder said.
        msg: String,
    },
    /// The writer's zstd encoder failed.
    #[error("zstd compression of section {index} failed: {msg}")]
    Compress {
        /// Section index being added.
        index: u32,
        /// What the encoder said.
        msg: String,
    },
    /// The manifest's `expires_at` is not after `now`.
    #[error("bundle expired at {expires_at} (unix seconds), now is {now}")]
    Expired {
        /// Expiry from the manifest.
        expires_at: u64,
        /// The time the caller passed.
        now: u64,
    },
    /// Bytes follow the last section.
    #[error("{count} trailing bytes at offset {offset} after the last section")]
    TrailingBytes {
        /// Offset where the sections end.
        offset: u64,
        /// Number of extra bytes.
        count: u64,
    },
    /// [`crate::VerifiedBundle::section`] was asked for an index past the section table.
    #[error("no section {index}: the bundle has {count} sections")]
    NoSuchSection {
        /// The index asked for.
        index: u32,
        /// Sections in the bundle.
        count: usize,
    },
    /// A key file (or key bytes) is malformed, weak, or of the wrong kind.
    #[error("bad key file: {0}")]
    BadKeyFile(String),
    /// A key id string is not 16 hex digits.
    #[error("bad key id {0:?}: expected 16 hex digits")]
    BadKeyId(String),
    /// Lengths, counts or order in the header or signature block are inconsistent.
    #[error("layout: {0}")]
    Layout(String),
}

impl Error {
    /// True for every error raised before any section's bytes reach the zstd decoder:
    /// everything except [`Error::Decompress`], [`Error::SectionInflates`] and
    /// [`Error::SectionShort`].
    pub fn is_before_decompression(&self) -> bool {
        !matches!(
            self,
            Error::Decompress { .. } | Error::SectionInflates { .. } | Error::SectionShort { .. }
        )
    }

    pub(crate) fn too_large(
        what: impl Into<String>,
        size: impl TryInto<u64>,
        cap: impl TryInto<u64>,
    ) -> Self {
        Error::TooLarge {
            what: what.into(),
            size: size.try_into().unwrap_or(u64::MAX),
            cap: cap.try_into().unwrap_or(u64::MAX),
        }
    }
}

fn join_ids(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        return "none".to_owned();
    }
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
