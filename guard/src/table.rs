//! The kernel table (the bundle's `offload` section): what the dispatch host needs
//! to run each offloaded loop nest, as JSON.
//!
//! The rewritten module calls `tensorwasm:offload` / `dispatch_<name>` with the nest's
//! *arguments* ([`OffloadKernel::args`]: the live-in locals and globals, as they are on entry to
//! the nest). Everything else is a function of them, written as integer polynomials
//! ([`Expr`]) the host evaluates exactly (no wrapping) before it trusts any value: trip counts,
//! kernel parameters, the bytes each access may touch, the live-outs. A nest is dispatched only
//! when every [`Check`] holds; otherwise the host declines and the original loop runs.
//!
//! The table sits inside the signed bundle, so the host trusts its structure, but it still
//! evaluates with checked arithmetic and bounds-checks every range against linear memory.

use serde::{Deserialize, Serialize};

/// A kernel table that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offload section: {0}")]
pub struct TableError(pub String);

/// Every kernel of a bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffloadTable {
    /// Kernels in import order.
    pub kernels: Vec<OffloadKernel>,
}

impl OffloadTable {
    /// Parses the section's JSON and validates the table
    /// ([`OffloadTable::validate`]): an error names the kernel and the field.
    pub fn from_json(bytes: &[u8]) -> Result<OffloadTable, TableError> {
        if bytes.len() > crate::validate::MAX_TABLE_BYTES {
            return Err(TableError(format!(
                "{} bytes, more than the {} a kernel table may have",
                bytes.len(),
                crate::validate::MAX_TABLE_BYTES
            )));
        }
        let table: OffloadTable =
            serde_json::from_slice(bytes).map_err(|e| TableError(e.to_string()))?;
        table.validate()?;
        Ok(table)
    }

    /// The kernel table of a verified bundle: `Ok(None)` when it has no `offload` section.
    /// The one reader for the daemon's restore and the build's bundle oracle.
    pub fn from_bundle(
        bundle: &tensorwasm_bundle::VerifiedBundle<'_>,
    ) -> Result<Option<OffloadTable>, TableError> {
        bundle
            .section_of_kind(tensorwasm_bundle::SectionKind::Offload)
            .map_err(|e| TableError(e.to_string()))?
            .map(|json| OffloadTable::from_json(&json))
            .transpose()
    }

    /// The section's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The Wasm type of a dispatch argument or a live-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgType {
    /// `i32`, read as unsigned in expressions.
    I32,
    /// `i64`, read as unsigned in expressions.
    I64,
    /// `f32` (passed to the kernel by its bits; never in an expression).
    F32,
    /// `f64` (passed to the kernel by its bits; never in an expression).
    F64,
}

/// Where a dispatch argument comes from in the original function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgSource {
    /// A local's value on entry to the nest.
    Local(u32),
    /// A global's value.
    Global(u32),
}

/// One dispatch argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arg {
    /// Where it comes from.
    pub source: ArgSource,
    /// Its type.
    pub ty: ArgType,
}

/// A variable of an [`Expr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Var {
    /// Dispatch argument `i` (an integer), read as unsigned.
    Arg(u32),
    /// The trip count of loop `i` of [`OffloadKernel::trips`].
    Trip(u32),
}

/// An integer polynomial: the sum of `coefficient * product of variables`, evaluated exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expr {
    /// The terms.
    pub terms: Vec<(i64, Vec<Var>)>,
}

/// A trip count: `num / div` (exact or rounded up, as stated) plus `add`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trip {
    /// The loop's index in its function (for reports).
    pub lp: u32,
    /// Numerator.
    pub num: Expr,
    /// Divisor, at least 1.
    pub div: i64,
    /// `true`: the loop ends this way only when `div` divides `num`; the host declines
    /// otherwise. `false`: rounded up.
    pub exact: bool,
    /// Added after dividing.
    pub add: i64,
    /// The exit compare's operands, when it is ordered: the formula holds only while they stay
    /// in the compare's domain.
    #[serde(default)]
    pub wrap: Vec<WrapCheck>,
}

/// An operand of an ordered exit compare, `base + Σ stride·k` over the nest's iterations. Its
/// extremes, with this loop's `k` up to `T - 1` (`T` when `top`), must lie in
/// `[0, 2^bits)` (unsigned) or `[-2^(bits-1), 2^(bits-1))` (signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrapCheck {
    /// The operand with every iteration number at 0.
    pub base: Expr,
    /// Per loop it moves with: the trip index and the change per iteration.
    pub strides: Vec<(u32, Expr)>,
    /// Signed compare.
    pub signed: bool,
    /// 32 or 64.
    pub bits: u32,
    /// The test also runs at `k = T` of its own loop (top-tested).
    pub top: bool,
}

/// What the host passes for one kernel parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamValue {
    /// The memory window: a device copy of the bytes the kernel may touch, passed biased so
    /// that the kernel indexes it with Wasm addresses.
    Memory,
    /// The trap flag: a `u32` in device memory, 0 before the launch.
    TrapFlag,
    /// A dispatch argument as it is (floats by their bits).
    Arg(u32),
    /// An integer computed exactly, then reduced to the parameter's width.
    Int {
        /// The value.
        expr: Expr,
        /// 32 or 64.
        bits: u32,
    },
}

/// The bytes one memory access may touch over the whole nest:
/// `base + Σ stride·k + [0, width)` for `0 <= k < trip`, with the access's own `offset=`
/// immediate `imm` (the dynamic address is the effective address minus `imm`, and must stay in
/// `[0, 2^32)` for the exact value to be the Wasm value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRange {
    /// The address with every iteration number at 0 (includes `imm`).
    pub base: Expr,
    /// Per loop the address moves with: the trip index and the bytes per iteration.
    pub strides: Vec<(u32, Expr)>,
    /// Bytes accessed.
    pub width: u32,
    /// The `offset=` immediate.
    pub imm: u64,
    /// Access group (accesses with one base).
    pub group: u32,
    /// The constant part of the address (the rest of `base` is the group's base).
    #[serde(default)]
    pub constant: i64,
    /// Whether it stores.
    pub store: bool,
    /// Whether it is a float store (`f32.store`, `f64.store`): the oracle's comparison lets
    /// NaN match NaN at the positions it writes, and nowhere else.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub float: bool,
    /// Conditions for the access to run at all, each on values fixed for the whole nest: when
    /// one fails for a call's arguments, no iteration runs the access, and the host leaves it
    /// out of the call's range, alignment and alias checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<AccessGuard>,
}

/// A condition an access runs under: `expr`, reduced modulo `2^bits`, is non-zero (`nonzero`)
/// or zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessGuard {
    /// The tested value, exactly.
    pub expr: Expr,
    /// 32 or 64.
    pub bits: u32,
    /// Whether the access runs when the value is non-zero (else when it is zero).
    pub nonzero: bool,
}

/// A condition the host checks before dispatching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Trip count `i` is at least 1 (a bottom-tested loop; its formula assumes it).
    AtLeastOnce(u32),
    /// The bytes of groups `a` and `b` do not overlap.
    NoOverlap(u32, u32),
    /// No two threads touch a common byte of group `g` where one of them writes (decided
    /// exactly with the launch's strides and trip counts).
    DisjointThreads(u32),
}

/// A local the nest leaves with a known value, set by the rewritten module after a dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveOut {
    /// The local.
    pub local: u32,
    /// Its type (`i32` or `i64`).
    pub ty: ArgType,
    /// Its value after the nest (reduced modulo 2^32 or 2^64).
    pub value: Expr,
}

/// One offloaded loop nest. (`Default` is an empty nest with no launch shape, for tests
/// that build tables by hand.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffloadKernel {
    /// PTX entry name; the import is `dispatch_<name>`.
    pub name: String,
    /// Function index of the nest (in the original module).
    pub function: u32,
    /// Byte offset of the nest's `loop` opcode in the original module.
    pub offset: u32,
    /// The PTX module text.
    pub ptx: String,
    /// Threads per block along x, y, z.
    pub block: [u32; 3],
    /// The dispatch import's parameters.
    pub args: Vec<Arg>,
    /// Trip counts of the nest's loops.
    pub trips: Vec<Trip>,
    /// The trip index of each grid dimension, x first.
    pub grid: Vec<u32>,
    /// One value per kernel parameter.
    pub params: Vec<ParamValue>,
    /// Every memory access.
    pub accesses: Vec<AccessRange>,
    /// Checks before dispatching.
    pub checks: Vec<Check>,
    /// Fewest threads worth a launch (the host declines below).
    pub min_threads: u64,
    /// Locals set after a dispatch.
    pub live_outs: Vec<LiveOut>,
    /// What the build's oracle checked for this kernel ([`Evidence`]), when it ran.
    #[serde(default)]
    pub oracle: Option<Evidence>,
    /// The locals the analysis found constant on entry to the nest (local → value): the
    /// oracle gives them these values, so `tensorwasm oracle BUNDLE` re-checks the kernel from
    /// the bundle alone. `None` in bundles made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_constants: Option<std::collections::BTreeMap<u32, i64>>,
    /// The PTX assembled by `ptxas` for particular GPUs (`tensorwasm build --cubin`): a host
    /// whose device matches an `arch` loads the cubin and skips the driver's PTX JIT; any other
    /// device loads the PTX.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cubins: Vec<Cubin>,
}

/// The build oracle's evidence for one kernel, signed with it in the kernel table: how many
/// cases compared the kernel with its loop, how many of them ran the kernel and why the host
/// declined the others, the largest launch among them, and how to replay the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Evidence {
    /// Cases run (each compared: the kernel's or the declined loop's result against the loop's).
    pub cases: u32,
    /// Cases in which the kernel ran.
    pub dispatched: u32,
    /// Cases the host declined, by reason.
    pub declined: std::collections::BTreeMap<String, u32>,
    /// Cases where the CPU loop ran out of fuel (not compared).
    pub inconclusive: u32,
    /// Whether the run stopped at its budget before its case count.
    pub budget_exhausted: bool,
    /// The most grid threads of one case that ran the kernel.
    pub largest_grid: u64,
    /// Thread-instructions the interpreter ran for the kernel.
    pub instructions: u64,
    /// The backend the kernel ran on (`interpreter`).
    pub backend: String,
    /// The run's seed (`tensorwasm build --oracle-seed` replays it).
    pub seed: u64,
    /// The tool that ran the check (`tensorwasm 0.1.0`).
    pub tool: String,
}

impl Evidence {
    /// One line: `1003 cases on the interpreter (998 ran the kernel, declined: 5 condition),
    /// largest grid 4104 threads, seed 0x…`.
    pub fn summary(&self) -> String {
        let declined: Vec<String> = self
            .declined
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        format!(
            "{} cases on the {} ({} ran the kernel{}), largest grid {} threads, seed {:#x}",
            self.cases,
            if self.backend.is_empty() {
                "interpreter"
            } else {
                &self.backend
            },
            self.dispatched,
            if declined.is_empty() {
                String::new()
            } else {
                format!(", declined: {}", declined.join(", "))
            },
            self.largest_grid,
            self.seed
        )
    }
}

/// One kernel assembled for one GPU architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cubin {
    /// The `ptxas -arch`, e.g. `sm_90`: devices of exactly this compute capability load it.
    pub arch: String,
    /// The cubin (an ELF image), hex-encoded in the table.
    #[serde(with = "hex_bytes")]
    pub image: Vec<u8>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

impl OffloadKernel {
    /// The import name of the kernel's dispatch function.
    pub fn import_name(&self) -> String {
        format!("dispatch_{}", self.name)
    }
}

/// The import module of every dispatch function.
pub const IMPORT_MODULE: &str = "tensorwasm:offload";
/// The import that returns live-out `i` of the last successful dispatch: `(i32) -> i64`.
pub const LIVE_OUT_IMPORT: &str = "live_out";
