//! The TensorWasm compiler: Wasm module in, signed `.twb` bundle out.
//!
//! ```text
//! IN.wasm / IN.wat ─► source   (detect the file type; WAT → binary; components refused)
//!                  ─► exports  (validate with the runtime's Wasm features; export signatures)
//!                  ─► offload  (analysis: frontend → loops → detect; lower → PTX; plan each
//!                               kernel's guard; outline + oracle::nest on the interpreter;
//!                               rewrite the module to dispatch the kernels that passed)
//!                  ─► aot      (Wasmtime/Cranelift precompile, once per --target, with the
//!                               runtime's exact engine configuration)
//!                  ─► pipeline (manifest + sections → tensorwasm_bundle::BundleWriter, signed)
//! ```
//!
//! Each stage is one module with one public entry point; [`pipeline::build`] calls them in order.
//! The offload stages sit between `exports` and `aot`; the code is compiled from the rewritten
//! module, and the bundle carries the original, the rewritten module and the kernel table.
//!
//! This crate never runs guest code itself: `tensorwasm run` goes through the runtime in
//! `tensorwasmd`.

#![forbid(unsafe_code)]

pub mod analyze;
pub mod aot;
pub mod exports;
pub mod fsutil;
pub mod oracle;
pub mod pipeline;
pub mod remote;
pub mod remote_cli;
pub mod source;
pub mod time;

/// `tensorwasm X.Y.Z`, recorded in every bundle.
pub fn tool_version() -> String {
    format!("tensorwasm {}", env!("CARGO_PKG_VERSION"))
}
