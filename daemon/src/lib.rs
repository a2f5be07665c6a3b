//! The TensorWasm runtime: turns verified bundles into running guests.
//!
//! ```text
//! .twb bytes ─► tensorwasm_bundle::VerifiedBundle::open (signature before anything else)
//!            ─► restore: pick this host's target, check Wasmtime version, engine fingerprint,
//!                        CPU features ─► hash-check + decompress the code ─► Module::deserialize
//!            ─► invoke (export + JSON arguments)  |  command (WASI `_start` with stdio)
//!                 under limits: wall time (epoch interruption), linear memory (store limiter)
//! ```
//!
//! This crate links Wasmtime *without* Cranelift: it can deserialize code that `tensorwasm build`
//! precompiled, and it cannot compile Wasm. It never parses Wasm for analysis. The HTTP daemon
//! `tensorwasmd` lives in [`server`] (cargo feature `server`, on by default; library users such
//! as the compiler turn it off); `tensorwasm run` uses the runtime in-process.

#![deny(unsafe_code)]

pub mod engine;
pub mod error;
pub mod invoke;
pub mod limits;
pub mod offload;
pub mod restore;
#[cfg(feature = "server")]
pub mod server;
pub mod values;
pub mod wasi_cuda;
pub mod worker;

pub use error::{Error, Result};
