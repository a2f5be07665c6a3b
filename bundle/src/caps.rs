//! Size caps on everything a bundle reader allocates or loops over.
//!
//! Every length or count read from untrusted bytes is compared against one of these before it is
//! used. The writer enforces the same caps, so it never produces a bundle the reader refuses.
//! Nothing here may be raised without bumping [`crate::FORMAT_VERSION`] or at least documenting it
//! in `docs/BUNDLE-FORMAT.md`: readers with smaller caps would reject new bundles.

/// Largest manifest, in bytes (header field `manifest_len`).
pub const MAX_MANIFEST: usize = 1 << 20;
/// Largest signature block, in bytes (header field `sig_block_len`).
pub const MAX_SIG_BLOCK: usize = 16 * 1024;
/// Most signatures in one signature block.
pub const MAX_SIGNATURES: usize = 16;
/// Most sections in one bundle.
pub const MAX_SECTIONS: usize = 256;
/// Largest decompressed section, in bytes.
pub const MAX_SECTION_RAW: u64 = 1 << 30;
/// Largest stored (compressed) section, in bytes.
pub const MAX_SECTION_STORED: u64 = 1 << 30;
/// Longest string in the manifest, in bytes of UTF-8.
pub const MAX_STRING: usize = 4096;
/// Most exports in the manifest.
pub const MAX_EXPORTS: usize = 65536;
/// Most targets in the manifest.
pub const MAX_TARGETS: usize = 64;
/// Most CPU feature names per target.
pub const MAX_CPU_FEATURES: usize = 256;
/// Most parameters, and most results, of one exported function (Wasm's own limit is 1000).
pub const MAX_FUNC_ARITY: usize = 1000;
