//! Shared test helpers, including an independent writer of the wire format as documented in
//! `docs/BUNDLE-FORMAT.md`, used to craft bundles `BundleWriter` refuses to produce.

#![allow(dead_code)]

use ed25519_dalek::Signer as _;
use tensorwasm_bundle::{
    Export, ExportKind, Manifest, SectionEntry, SectionKind, SigningKey, Target, TrustedKeys,
    ValType,
};

pub const NOW: u64 = 1_700_000_000;

pub fn seed(n: u8) -> [u8; 32] {
    [n; 32]
}

pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&seed(n))
}

pub fn trust(keys: &[&SigningKey]) -> TrustedKeys {
    TrustedKeys::new(keys.iter().map(|k| k.public()).collect())
}

pub fn sample_manifest() -> Manifest {
    Manifest {
        name: "matmul".to_owned(),
        version: 7,
        created_at: Some(1_600_000_000),
        expires_at: None,
        tool: "tensorwasm 0.1.0".to_owned(),
        source_hash: *blake3::hash(b"module").as_bytes(),
        exports: vec![
            Export {
                name: "run".to_owned(),
                kind: ExportKind::Func {
                    params: vec![ValType::I32, ValType::F64],
                    results: vec![ValType::I64],
                },
            },
            Export {
                name: "memory".to_owned(),
                kind: ExportKind::Memory,
            },
        ],
        targets: vec![],
        sections: vec![],
    }
}

pub const WASM: &[u8] = b"\0asm\x01\0\0\0 a small module, repeated repeated repeated";
pub const CODE: &[u8] = b"native code native code native code 0123456789";

/// A bundle with a wasm section and a code section for one target.
pub fn sample_bundle(signers: &[&SigningKey]) -> Vec<u8> {
    sample_bundle_with(sample_manifest(), signers)
}

pub fn sample_bundle_with(m: Manifest, signers: &[&SigningKey]) -> Vec<u8> {
    let mut w = tensorwasm_bundle::BundleWriter::new(m);
    w.add_section(SectionKind::Wasm, WASM).unwrap();
    let code = w.add_section(SectionKind::Code, CODE).unwrap();
    w.manifest_mut().targets.push(Target {
        triple: "x86_64-unknown-linux-gnu".to_owned(),
        wasmtime_version: "48.0.8".to_owned(),
        engine_fingerprint: [9; 32],
        engine_profile: "cranelift opt=speed".to_owned(),
        cpu_features: vec!["avx2".to_owned()],
        code_section: code,
    });
    w.finish(signers).unwrap()
}

// ---- independent implementation of docs/BUNDLE-FORMAT.md ----

pub fn spec_key_id(public: &[u8; 32]) -> [u8; 8] {
    let h = blake3::derive_key("tensorwasm key id v1", public);
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[..8]);
    id
}

pub fn spec_digest(manifest: &[u8]) -> [u8; 32] {
    let mut material = Vec::new();
    material.extend_from_slice(b"TWB\0");
    material.extend_from_slice(&1u16.to_le_bytes());
    material.extend_from_slice(&0u16.to_le_bytes());
    material.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
    material.extend_from_slice(manifest);
    blake3::derive_key("tensorwasm bundle manifest v1", &material)
}

/// Signature block entries for `seeds`, sorted by key id.
pub fn spec_sig_block(manifest: &[u8], seeds: &[[u8; 32]]) -> Vec<u8> {
    let digest = spec_digest(manifest);
    let mut entries: Vec<Vec<u8>> = seeds
        .iter()
        .map(|s| {
            let sk = ed25519_dalek::SigningKey::from_bytes(s);
            let pk = sk.verifying_key().to_bytes();
            let mut e = spec_key_id(&pk).to_vec();
            e.extend_from_slice(&pk);
            e.extend_from_slice(&sk.sign(&digest).to_bytes());
            e
        })
        .collect();
    entries.sort();
    let mut block = vec![entries.len() as u8];
    for e in entries {
        block.extend_from_slice(&e);
    }
    block
}

/// header | manifest | signature block | sections, with lengths taken from the parts.
pub fn spec_assemble(manifest: &[u8], sig_block: &[u8], sections: &[&[u8]]) -> Vec<u8> {
    let mut out = b"TWB\0".to_vec();
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
    out.extend_from_slice(&(sig_block.len() as u32).to_le_bytes());
    out.extend_from_slice(manifest);
    out.extend_from_slice(sig_block);
    for s in sections {
        out.extend_from_slice(s);
    }
    out
}

/// Signs arbitrary manifest bytes (no validation) and assembles a bundle.
pub fn craft_bytes(manifest: &[u8], seeds: &[[u8; 32]], sections: &[&[u8]]) -> Vec<u8> {
    spec_assemble(manifest, &spec_sig_block(manifest, seeds), sections)
}

/// Signs an arbitrary manifest (no validation) and assembles a bundle.
pub fn craft(m: &Manifest, seeds: &[[u8; 32]], sections: &[&[u8]]) -> Vec<u8> {
    craft_bytes(&postcard::to_stdvec(m).unwrap(), seeds, sections)
}

/// A section entry for the given stored bytes, claiming `raw_len`.
pub fn entry(kind: SectionKind, stored: &[u8], raw_len: u64) -> SectionEntry {
    SectionEntry {
        kind,
        stored_len: stored.len() as u64,
        raw_len,
        hash: *blake3::hash(stored).as_bytes(),
    }
}

/// A manifest with exactly these section entries and no targets.
pub fn manifest_with_sections(sections: Vec<SectionEntry>) -> Manifest {
    Manifest {
        sections,
        ..sample_manifest()
    }
}

// ---- hand-made zstd frames (RFC 8878) ----

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Frame header without content size and with a window of `1 << window_log` bytes.
pub fn frame_header_no_size(window_log: u8) -> Vec<u8> {
    let mut f = ZSTD_MAGIC.to_vec();
    f.push(0x00); // FCS flag 0, not single segment, no checksum, no dictionary
    f.push((window_log - 10) << 3);
    f
}

/// Frame header declaring an 8-byte content size and a 1 KiB window.
pub fn frame_header_with_size(content_size: u64) -> Vec<u8> {
    let mut f = ZSTD_MAGIC.to_vec();
    f.push(0xC0); // FCS flag 3 (8 bytes), not single segment
    f.push(0x00); // window 1 KiB
    f.extend_from_slice(&content_size.to_le_bytes());
    f
}

/// An RLE block of `size` copies of `byte`.
pub fn rle_block(byte: u8, size: u32, last: bool) -> Vec<u8> {
    let h = u32::from(last) | (1 << 1) | (size << 3);
    let mut b = h.to_le_bytes()[..3].to_vec();
    b.push(byte);
    b
}
