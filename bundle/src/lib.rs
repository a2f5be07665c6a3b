//! The `.twb` bundle format: the one contract between `tensorwasm build` and `tensorwasmd`.
//!
//! A bundle is a fixed header, a postcard-encoded [`Manifest`], a block of ed25519 signatures
//! over a domain-separated hash of the manifest bytes, and the sections (each one zstd frame)
//! in manifest order. `docs/BUNDLE-FORMAT.md` documents every byte.
//!
//! ```text
//!  write (BundleWriter)                        read (VerifiedBundle::open)
//!  --------------------                        ---------------------------
//!  add_section: zstd, BLAKE3 of stored bytes   header: magic, version, flags, caps on lengths
//!  finish: validate manifest, postcard,        signature block: count, order, key ids
//!          sign manifest_digest, sort sigs     trust: at least one key in TrustedKeys
//!  header | manifest | signatures | sections   verify_strict every signature
//!                                              ONLY THEN: postcard-decode manifest (capped)
//!                                              section table == rest of the file, exactly
//!                                              expiry against `now`
//!                                              section(i): BLAKE3 check -> bounded inflate
//! ```
//!
//! **Invariant:** nothing beyond the fixed header and the signature block is parsed, and nothing
//! is decompressed or deserialized, before a signature over the manifest bytes verifies; a
//! section's stored bytes are hash-checked before they are decompressed, and decompression never
//! produces (or allocates for) more than the signed raw length.
//!
//! ```
//! use tensorwasm_bundle::*;
//!
//! let key = SigningKey::generate();
//! let manifest = Manifest {
//!     name: "demo".into(),
//!     version: 1,
//!     created_at: None,
//!     expires_at: None,
//!     tool: "tensorwasm 0.1.0".into(),
//!     source_hash: *blake3::hash(b"\0asm\x01\0\0\0").as_bytes(),
//!     exports: vec![],
//!     targets: vec![],
//!     sections: vec![],
//! };
//! let mut writer = BundleWriter::new(manifest);
//! let wasm = writer.add_section(SectionKind::Wasm, b"\0asm\x01\0\0\0")?;
//! let bytes = writer.finish(&[&key])?;
//!
//! let trusted = TrustedKeys::new(vec![key.public()]);
//! let bundle = VerifiedBundle::open(&bytes, &trusted, 1_700_000_000)?;
//! assert_eq!(bundle.section(wasm)?, b"\0asm\x01\0\0\0");
//! assert!(bundle.signatures()[0].trusted);
//! # Ok::<(), tensorwasm_bundle::Error>(())
//! ```
//!
//! This crate must never depend on wasmtime or the compiler, and never contains `unsafe` code.

#![forbid(unsafe_code)]

pub mod caps;
mod error;
mod frame;
mod keys;
mod manifest;
mod reader;
mod serde_bounded;
mod wire;
mod writer;

pub use error::{Error, Result};
pub use keys::{KEY_ID_CONTEXT, KeyId, PublicKey, SigningKey, TrustedKeys};
pub use manifest::{Export, ExportKind, Manifest, SectionEntry, SectionKind, Target, ValType};
pub use reader::{Layout, SignatureInfo, VerifiedBundle, inspect_untrusted};
pub use wire::{HEADER_LEN, MANIFEST_DIGEST_CONTEXT, SIGNATURE_ENTRY_LEN, manifest_digest};
pub use writer::{BundleWriter, ZSTD_LEVEL};

/// The bundle format version this crate writes and reads (header bytes 4..6, little endian).
pub const FORMAT_VERSION: u16 = 1;

/// The four bytes every bundle starts with: `T` `W` `B` `0x00`.
pub const MAGIC: [u8; 4] = *b"TWB\x00";
