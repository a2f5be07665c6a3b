//! The one Wasmtime engine configuration shared by the compiler and the runtime.
//!
//! Precompiled code is only valid for an engine configured exactly like the one that produced it.
//! `tensorwasm build` starts from [`base_config`] and adds Cranelift and the target; the runtime
//! (`tensorwasm run`, `tensorwasmd`) uses [`base_config`] unchanged. [`EngineProfile`] names that
//! configuration in text and as a fingerprint, so that a bundle made for another Wasmtime version,
//! configuration or target is refused with a clear error before any code is deserialized.
//!
//! This module must never enable a compiler: the daemon links Wasmtime without Cranelift.

use wasmtime::{Config, Engine};

/// The Wasmtime version this workspace links (pinned with `=` in the workspace `Cargo.toml`;
/// a test checks the two agree).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Linear-memory reservation, fixed so that compiled code does not depend on the host.
const MEMORY_RESERVATION: u64 = 4 << 30;
/// Guard region after each linear memory.
const MEMORY_GUARD: u64 = 32 << 20;

/// The engine configuration every TensorWasm runtime uses. The compiler adds only the target
/// triple on top of it. Every setting that changes compiled code is set explicitly here, so that
/// it does not depend on which Wasmtime cargo features a binary happens to link.
pub fn base_config() -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .consume_fuel(false)
        .signals_based_traps(true)
        .memory_reservation(MEMORY_RESERVATION)
        .memory_guard_size(MEMORY_GUARD)
        .memory_may_move(false)
        .wasm_simd(true)
        .wasm_relaxed_simd(true)
        .relaxed_simd_deterministic(true)
        .wasm_bulk_memory(true)
        .wasm_multi_value(true)
        .wasm_tail_call(true)
        .wasm_extended_const(true)
        .wasm_multi_memory(true)
        .wasm_memory64(false);
    config
}

/// A named engine configuration for one target: what the manifest records per target and what
/// the runtime compares against its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineProfile {
    /// Target triple, e.g. `x86_64-unknown-linux-gnu`.
    pub triple: String,
    /// Wasmtime version that produced or will load the code.
    pub wasmtime_version: String,
    /// Human-readable settings.
    pub description: String,
    /// BLAKE3 over the version, triple and settings.
    pub fingerprint: [u8; 32],
}

impl EngineProfile {
    /// The profile of `engine` producing or running code for `triple`: every engine setting
    /// that Wasmtime checks when it deserializes code, read back from the engine itself.
    pub fn of(engine: &Engine, triple: &str) -> EngineProfile {
        let description = format!(
            "epoch_interruption={} consume_fuel={} signals_based_traps={} \
             memory_reservation={:#x} memory_guard_size={:#x} memory_may_move={} \
             relaxed_simd_deterministic={} features={:?}",
            engine.get_epoch_interruption(),
            engine.get_consume_fuel(),
            engine.get_signals_based_traps(),
            engine.get_memory_reservation(),
            engine.get_memory_guard_size(),
            engine.get_memory_may_move(),
            engine.get_relaxed_simd_deterministic(),
            engine.get_wasm_features(),
        );
        let mut hasher = blake3::Hasher::new_derive_key("tensorwasm engine profile v1");
        for part in [WASMTIME_VERSION, triple, &description] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        EngineProfile {
            triple: triple.to_string(),
            wasmtime_version: WASMTIME_VERSION.to_string(),
            description,
            fingerprint: *hasher.finalize().as_bytes(),
        }
    }

    /// Short hex form of the fingerprint, for messages.
    pub fn short_fingerprint(&self) -> String {
        hex::encode(&self.fingerprint[..8])
    }
}

/// The target triple of this machine, as Cranelift names it.
pub fn host_triple() -> String {
    target_lexicon::Triple::host().to_string()
}

/// Whether this machine has a CPU feature that a bundle's code was compiled to require.
/// Unknown feature names are treated as missing, so a bundle asking for them is refused.
pub fn host_has_cpu_feature(name: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match name {
            "sse3" => std::arch::is_x86_feature_detected!("sse3"),
            "ssse3" => std::arch::is_x86_feature_detected!("ssse3"),
            "sse4.1" | "sse41" => std::arch::is_x86_feature_detected!("sse4.1"),
            "sse4.2" | "sse42" => std::arch::is_x86_feature_detected!("sse4.2"),
            "popcnt" => std::arch::is_x86_feature_detected!("popcnt"),
            "avx" => std::arch::is_x86_feature_detected!("avx"),
            "avx2" => std::arch::is_x86_feature_detected!("avx2"),
            "fma" => std::arch::is_x86_feature_detected!("fma"),
            "bmi1" => std::arch::is_x86_feature_detected!("bmi1"),
            "bmi2" => std::arch::is_x86_feature_detected!("bmi2"),
            "lzcnt" => std::arch::is_x86_feature_detected!("lzcnt"),
            "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
            "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
            "avx512dq" => std::arch::is_x86_feature_detected!("avx512dq"),
            "avx512bitalg" => std::arch::is_x86_feature_detected!("avx512bitalg"),
            "avx512vbmi" => std::arch::is_x86_feature_detected!("avx512vbmi"),
            _ => false,
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        match name {
            "lse" => std::arch::is_aarch64_feature_detected!("lse"),
            "paca" | "pauth" => std::arch::is_aarch64_feature_detected!("paca"),
            "fp16" => std::arch::is_aarch64_feature_detected!("fp16"),
            _ => false,
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = name;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasmtime_version_matches_the_lockfile() {
        let lock = include_str!("../../Cargo.lock");
        let needle = format!("name = \"wasmtime\"\nversion = \"{WASMTIME_VERSION}\"");
        assert!(
            lock.contains(&needle),
            "Cargo.lock does not pin wasmtime {WASMTIME_VERSION}"
        );
    }

    #[test]
    fn profiles_differ_by_target_and_agree_for_the_same_target() {
        let engine = Engine::new(&base_config()).expect("base config is valid");
        let a = EngineProfile::of(&engine, "x86_64-unknown-linux-gnu");
        let b = EngineProfile::of(&engine, "aarch64-unknown-linux-gnu");
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_eq!(a, EngineProfile::of(&engine, "x86_64-unknown-linux-gnu"));
        assert!(
            a.description.contains("epoch_interruption=true"),
            "{}",
            a.description
        );
    }

    #[test]
    fn a_changed_setting_changes_the_fingerprint() {
        let base = Engine::new(&base_config()).expect("base config is valid");
        let mut other = base_config();
        other.consume_fuel(true);
        let other = Engine::new(&other).expect("config is valid");
        let triple = host_triple();
        assert_ne!(
            EngineProfile::of(&base, &triple).fingerprint,
            EngineProfile::of(&other, &triple).fingerprint
        );
    }

    #[test]
    fn unknown_cpu_features_count_as_missing() {
        assert!(!host_has_cpu_feature("no-such-feature"));
    }
}
