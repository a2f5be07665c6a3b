//! The CPU side of a differential check: a Wasm function run over a linear-memory image.
//!
//! The oracle crate does not link a Wasm engine; the compiler implements [`Reference`] with
//! Wasmtime (`tensorwasm::oracle::WasmtimeReference`), and tests may implement it in Rust. An
//! implementation must run the function exactly as Wasm defines it and must report a Wasm trap
//! as [`Outcome::Trapped`], never as an error: errors are for the harness's own failures
//! (fuel exhausted, instantiation failed).

use serde::Serialize;

use super::plan::WasmType;

/// A Wasm argument value; floats are kept as bits so NaN payloads survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "bits", rename_all = "lowercase")]
pub enum WasmValue {
    /// An `i32`.
    I32(i32),
    /// An `i64`.
    I64(i64),
    /// An `f32`, by its bits.
    F32(u32),
    /// An `f64`, by its bits.
    F64(u64),
}

impl WasmValue {
    /// The value's type.
    pub fn ty(self) -> WasmType {
        match self {
            WasmValue::I32(_) => WasmType::I32,
            WasmValue::I64(_) => WasmType::I64,
            WasmValue::F32(_) => WasmType::F32,
            WasmValue::F64(_) => WasmType::F64,
        }
    }

    /// A readable form: integers in decimal, floats as a number with their bits.
    pub fn show(self) -> String {
        match self {
            WasmValue::I32(v) => v.to_string(),
            WasmValue::I64(v) => v.to_string(),
            WasmValue::F32(b) => format!("{:?} (0x{b:08x})", f32::from_bits(b)),
            WasmValue::F64(b) => format!("{:?} (0x{b:016x})", f64::from_bits(b)),
        }
    }
}

/// How a reference run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The function returned; the memory image holds its effects. Results are not compared.
    Returned,
    /// The function trapped (the message says why); the memory image is not compared.
    Trapped(String),
}

/// A Wasm function with one linear memory, run on memory images the harness generates.
pub trait Reference {
    /// A short name for reports (`"wasmtime"`).
    fn name(&self) -> &str;
    /// The function's parameter types, in order.
    fn param_types(&self) -> Vec<WasmType>;
    /// Bytes of linear memory the function runs on; every image has exactly this length.
    fn memory_size(&self) -> usize;
    /// Runs the function with `memory` as its whole linear memory (written before, read back
    /// after) and `args` as its arguments.
    fn run(&mut self, memory: &mut [u8], args: &[WasmValue]) -> Result<Outcome, String>;
}
