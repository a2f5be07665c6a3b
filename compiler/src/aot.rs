//! Ahead-of-time compilation with Wasmtime/Cranelift, one target at a time.
//!
//! The engine is [`tensorwasmd::engine::base_config`] — the runtime's exact configuration — plus
//! the target triple. Setting the triple explicitly (even for the host) makes Cranelift compile for
//! the target's baseline CPU instead of the build machine's CPU, so bundles built in CI run on any
//! host of that target. This module never writes files.

use tensorwasmd::engine::{EngineProfile, base_config};
use wasmtime::Engine;

/// Precompiled code for one target, with the profile of the engine that made it.
#[derive(Debug)]
pub struct Compiled {
    /// `Engine::precompile_module` output.
    pub code: Vec<u8>,
    /// The engine profile to record in the manifest.
    pub profile: EngineProfile,
}

/// A compiling engine for `triple`.
pub fn engine_for(triple: &str) -> anyhow::Result<Engine> {
    let mut config = base_config();
    config
        .target(triple)
        .map_err(|e| anyhow::anyhow!("unsupported --target `{triple}`: {e}"))?;
    Engine::new(&config).map_err(|e| anyhow::anyhow!("cannot compile for `{triple}`: {e:#}"))
}

/// Compiles `wasm` for `triple`.
pub fn compile(wasm: &[u8], triple: &str) -> anyhow::Result<Compiled> {
    let engine = engine_for(triple)?;
    let code = engine
        .precompile_module(wasm)
        .map_err(|e| anyhow::anyhow!("compiling for {triple} failed: {e:#}"))?;
    Ok(Compiled {
        code,
        profile: EngineProfile::of(&engine, triple),
    })
}
