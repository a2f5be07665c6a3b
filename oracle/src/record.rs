//! Launch records: one kernel launch with its inputs and the bytes a reference computed, as a
//! JSON file that any [`Backend`] can replay later, elsewhere.
//!
//! The differential tests record what Wasmtime computed for each lowered kernel; a host with a GPU
//! replays the records with the CUDA runner (`examples/replay.rs`) without needing Wasmtime, the
//! compiler or the samples there. A record is self-contained: PTX text, entry, grid, block,
//! parameters (buffers by index), every buffer's initial bytes, and the expected bytes of the
//! buffers the reference defines.
//!
//! This module must never panic on a malformed record: every problem is an [`Error::Launch`]
//! naming the record's field.

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Launch, LaunchStats, ParamValue};
use crate::error::{Error, Result};
use crate::memory::DeviceMemory;

/// Format version written into every record; replay refuses any other.
pub const RECORD_VERSION: u32 = 1;

/// One recorded launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// What was launched, for reports (e.g. "matmul func 3 loop 1").
    pub name: String,
    /// Who computed `expect` (e.g. "wasmtime").
    pub reference: String,
    /// The PTX module.
    pub ptx: String,
    /// The `.entry` to launch.
    pub entry: String,
    /// Blocks in x, y, z.
    pub grid: [u32; 3],
    /// Threads per block in x, y, z.
    pub block: [u32; 3],
    /// One value per kernel parameter.
    pub params: Vec<RecordParam>,
    /// Every buffer's bytes before the launch, hex.
    pub buffers: Vec<String>,
    /// Per buffer, the bytes the reference computed (hex), or `None` where it defines none.
    pub expect: Vec<Option<String>>,
}

/// A recorded parameter value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordParam {
    /// 32-bit integer.
    U32(u32),
    /// 64-bit integer.
    U64(u64),
    /// `f32`, by its bits.
    F32(u32),
    /// `f64`, by its bits.
    F64(u64),
    /// The address of buffer `buffer` plus `offset` bytes.
    Buffer {
        /// Index into `buffers`.
        buffer: u32,
        /// Byte offset added to the address (wrapping).
        offset: i64,
    },
}

/// Where a replay differed from the reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Buffer index.
    pub buffer: usize,
    /// First differing byte.
    pub offset: usize,
    /// Bytes from there, as the backend left them (up to 8).
    pub got: Vec<u8>,
    /// Bytes from there, as the reference computed them (up to 8).
    pub want: Vec<u8>,
}

/// What one replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Backend statistics.
    pub stats: LaunchStats,
    /// The first difference per differing buffer; empty when the backend matched.
    pub mismatches: Vec<Mismatch>,
}

impl LaunchRecord {
    /// Records `launch` of `entry` in `ptx` over `mem` (its state before the launch), with the
    /// bytes `expect` the reference computed per buffer.
    pub fn new(
        name: &str,
        reference: &str,
        ptx: &str,
        entry: &str,
        launch: &Launch,
        mem: &DeviceMemory,
        expect: Vec<Option<Vec<u8>>>,
    ) -> Result<LaunchRecord> {
        let mut buffers = Vec::with_capacity(mem.len());
        for i in 0..mem.len() {
            let id = mem.id(i).ok_or(Error::UnknownBuffer(i as u32))?;
            buffers.push(hex::encode(mem.read(id)?));
        }
        if expect.len() != buffers.len() {
            return Err(Error::Launch(format!(
                "{} expected buffers for {} buffers",
                expect.len(),
                buffers.len()
            )));
        }
        let params = launch
            .params
            .iter()
            .map(|p| match *p {
                ParamValue::U32(x) => RecordParam::U32(x),
                ParamValue::S32(x) => RecordParam::U32(x as u32),
                ParamValue::U64(x) => RecordParam::U64(x),
                ParamValue::S64(x) => RecordParam::U64(x as u64),
                ParamValue::F32(x) => RecordParam::F32(x.to_bits()),
                ParamValue::F64(x) => RecordParam::F64(x.to_bits()),
                ParamValue::Ptr(id) => RecordParam::Buffer {
                    buffer: id.index(),
                    offset: 0,
                },
                ParamValue::PtrOffset(id, offset) => RecordParam::Buffer {
                    buffer: id.index(),
                    offset,
                },
            })
            .collect();
        Ok(LaunchRecord {
            version: RECORD_VERSION,
            name: name.to_string(),
            reference: reference.to_string(),
            ptx: ptx.to_string(),
            entry: entry.to_string(),
            grid: launch.grid,
            block: launch.block,
            params,
            buffers,
            expect: expect.into_iter().map(|e| e.map(hex::encode)).collect(),
        })
    }

    /// Parses a record from JSON.
    pub fn from_json(text: &str) -> Result<LaunchRecord> {
        let r: LaunchRecord = serde_json::from_str(text)
            .map_err(|e| Error::Launch(format!("not a launch record: {e}")))?;
        if r.version != RECORD_VERSION {
            return Err(Error::Launch(format!(
                "record version {} (this build reads version {RECORD_VERSION})",
                r.version
            )));
        }
        Ok(r)
    }

    /// The record as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Runs the recorded launch on `backend` and compares every buffer the reference defines.
    pub fn replay(&self, backend: &mut dyn Backend) -> Result<Replay> {
        let mut mem = DeviceMemory::new();
        let mut ids = Vec::with_capacity(self.buffers.len());
        for (i, h) in self.buffers.iter().enumerate() {
            let bytes = hex::decode(h)
                .map_err(|e| Error::Launch(format!("buffers[{i}] is not hex: {e}")))?;
            ids.push(mem.alloc(bytes));
        }
        let params = self
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Ok(match *p {
                    RecordParam::U32(x) => ParamValue::U32(x),
                    RecordParam::U64(x) => ParamValue::U64(x),
                    RecordParam::F32(b) => ParamValue::F32(f32::from_bits(b)),
                    RecordParam::F64(b) => ParamValue::F64(f64::from_bits(b)),
                    RecordParam::Buffer { buffer, offset } => {
                        let id = ids.get(buffer as usize).copied().ok_or_else(|| {
                            Error::Launch(format!(
                                "params[{i}] names buffer {buffer}, which does not exist"
                            ))
                        })?;
                        ParamValue::PtrOffset(id, offset)
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let launch = Launch {
            grid: self.grid,
            block: self.block,
            params,
        };
        let stats = backend.launch(&self.ptx, &self.entry, &launch, &mut mem)?;
        let mut mismatches = Vec::new();
        for (i, (id, want)) in ids.iter().zip(&self.expect).enumerate() {
            let Some(want) = want else { continue };
            let want = hex::decode(want)
                .map_err(|e| Error::Launch(format!("expect[{i}] is not hex: {e}")))?;
            let got = mem.read(*id)?;
            let first = if got.len() != want.len() {
                Some(got.len().min(want.len()))
            } else {
                got.iter().zip(&want).position(|(a, b)| a != b)
            };
            if let Some(at) = first {
                let end = |b: &[u8]| (at + 8).min(b.len());
                mismatches.push(Mismatch {
                    buffer: i,
                    offset: at,
                    got: got.get(at..end(got)).unwrap_or_default().to_vec(),
                    want: want.get(at..end(&want)).unwrap_or_default().to_vec(),
                });
            }
        }
        Ok(Replay { stats, mismatches })
    }
}
