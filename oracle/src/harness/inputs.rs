//! Input generation: a seeded generator (SplitMix64) and the cases it draws for a plan.
//!
//! A case is the whole input of one run: every size, scalar and buffer placement and content,
//! and the seed of the bytes outside the buffers. Values are biased to the inputs that break
//! kernels: sizes 0, 1 and the range ends; NaNs with several payloads, ±0, ±inf, subnormals,
//! the largest and smallest normals; integer minimum, maximum, -1, 0 and 1. This module is
//! deterministic: the same seed gives the same case on every machine.

use super::plan::{ElemType, ParamKind, Plan, WasmType};
use super::reference::WasmValue;

/// A small, fast, deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of case `index` of a run seeded with `run_seed`. Case 0 uses the run seed itself,
/// so a failing case's seed, given as the run seed, replays that case first.
pub fn case_seed(run_seed: u64, index: u32) -> u64 {
    if index == 0 {
        run_seed
    } else {
        mix(run_seed ^ mix(u64::from(index)))
    }
}

/// One parameter's input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ArgInput {
    Size(i64),
    Scalar(WasmValue),
    /// A buffer at Wasm address `addr` with one entry per element (bits in the low bytes).
    Buffer {
        addr: u64,
        lanes: Vec<u64>,
    },
}

/// The whole input of one run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Case {
    pub(crate) args: Vec<ArgInput>,
    /// Seed of the bytes outside buffers; 0 means zero-filled.
    pub(crate) background: u64,
}

impl Case {
    pub(crate) fn size(&self, plan: &Plan, name: &str) -> Option<i64> {
        let (i, _) = plan.param(name)?;
        match self.args.get(i)? {
            ArgInput::Size(v) => Some(*v),
            _ => None,
        }
    }

    /// Evaluates an expression of the sizes.
    pub(crate) fn eval(&self, plan: &Plan, e: &super::SizeExpr) -> Result<i64, String> {
        e.eval(&|n| self.size(plan, n))
    }

    /// The Wasm arguments of the reference call.
    pub(crate) fn wasm_args(&self, plan: &Plan) -> Vec<WasmValue> {
        plan.params()
            .iter()
            .zip(&self.args)
            .map(|(p, a)| match *a {
                ArgInput::Size(v) => match p.ty {
                    WasmType::I64 => WasmValue::I64(v),
                    _ => WasmValue::I32(v as i32),
                },
                ArgInput::Scalar(v) => v,
                ArgInput::Buffer { addr, .. } => WasmValue::I32(addr as u32 as i32),
            })
            .collect()
    }

    /// The linear-memory image: background bytes, then each buffer's lanes.
    pub(crate) fn image(&self, plan: &Plan, memory_size: usize) -> Vec<u8> {
        let mut mem = vec![0u8; memory_size];
        if self.background != 0 {
            let mut rng = Rng::new(self.background);
            for chunk in mem.chunks_mut(8) {
                let bytes = rng.next_u64().to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
        }
        for (p, a) in plan.params().iter().zip(&self.args) {
            if let (ParamKind::Buffer { elem, .. }, ArgInput::Buffer { addr, lanes }) = (&p.kind, a)
            {
                let size = elem.size();
                for (k, lane) in lanes.iter().enumerate() {
                    let at = *addr as usize + k * size;
                    if let Some(dst) = mem.get_mut(at..at + size) {
                        dst.copy_from_slice(&lane.to_le_bytes()[..size]);
                    }
                }
            }
        }
        mem
    }

    /// The buffers' `(param index, addr, bytes)`, checked to lie inside `arena` without
    /// overlapping: `None` if they do not.
    pub(crate) fn layout(&self, plan: &Plan, arena: u64) -> Option<Vec<(usize, u64, u64)>> {
        let mut spans = Vec::new();
        for (i, (p, a)) in plan.params().iter().zip(&self.args).enumerate() {
            if let (ParamKind::Buffer { elem, align, .. }, ArgInput::Buffer { addr, lanes }) =
                (&p.kind, a)
            {
                let bytes = lanes.len() as u64 * elem.size() as u64;
                if addr % u64::from(*align) != 0 || addr.checked_add(bytes)? > arena {
                    return None;
                }
                spans.push((i, *addr, bytes));
            }
        }
        let mut sorted = spans.clone();
        sorted.sort_by_key(|s| s.1);
        for w in sorted.windows(2) {
            // Two buffers overlap unless the first ends at or before the second starts (empty
            // buffers never overlap).
            if w[0].2 > 0 && w[1].2 > 0 && w[0].1 + w[0].2 > w[1].1 {
                return None;
            }
        }
        Some(spans)
    }
}

/// Buffer lengths (elements) for the sizes of `case`, per param (`None` for non-buffers).
pub(crate) fn buffer_lens(plan: &Plan, case: &Case) -> Result<Vec<Option<u64>>, String> {
    plan.params()
        .iter()
        .enumerate()
        .map(|(i, p)| match &p.kind {
            ParamKind::Buffer { len, .. } => {
                let v = case
                    .eval(plan, len)
                    .map_err(|e| format!("param[{i}].len {e}"))?;
                u64::try_from(v).map(Some).map_err(|_| {
                    format!(
                        "param[{i}].len `{len}` is negative ({v}) for {}",
                        describe_sizes(plan, case)
                    )
                })
            }
            _ => Ok(None),
        })
        .collect()
}

pub(crate) fn describe_sizes(plan: &Plan, case: &Case) -> String {
    let parts: Vec<String> = plan
        .params()
        .iter()
        .zip(&case.args)
        .filter_map(|(p, a)| match a {
            ArgInput::Size(v) => Some(format!("{} = {v}", p.name)),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        "no sizes".into()
    } else {
        parts.join(", ")
    }
}

/// Draws a case whose buffers fit in `arena` bytes; `Ok(None)` when the drawn sizes need more.
pub(crate) fn generate(plan: &Plan, arena: u64, rng: &mut Rng) -> Result<Option<Case>, String> {
    let mut case = Case {
        args: Vec::new(),
        background: rng.next_u64() | 1,
    };
    for p in plan.params() {
        case.args.push(match p.kind {
            ParamKind::Size { min, max } => ArgInput::Size(size(rng, min, max)),
            ParamKind::Scalar => ArgInput::Scalar(scalar(rng, p.ty)),
            ParamKind::Buffer { .. } => ArgInput::Buffer {
                addr: 0,
                lanes: Vec::new(),
            },
        });
    }
    let lens = buffer_lens(plan, &case)?;
    let floats = Floats::of_case(case.background);
    let mut order = Vec::new();
    let mut needed = 0u64;
    for (i, (p, len)) in plan.params().iter().zip(&lens).enumerate() {
        if let (ParamKind::Buffer { elem, align, .. }, Some(len)) = (&p.kind, len) {
            let bytes = len.saturating_mul(elem.size() as u64);
            needed = needed
                .saturating_add(bytes)
                .saturating_add(u64::from(*align));
            let lanes = (0..*len).map(|_| lane(rng, *elem, floats)).collect();
            case.args[i] = ArgInput::Buffer { addr: 0, lanes };
            order.push((i, bytes, u64::from(*align)));
        }
    }
    if needed > arena {
        return Ok(None);
    }
    // Random order, random gaps; sometimes the last buffer ends exactly at the arena's end.
    for k in (1..order.len()).rev() {
        order.swap(k, rng.below(k as u64 + 1) as usize);
    }
    let mut free = arena - needed;
    let mut pos = 0u64;
    let flush_end = rng.percent(15);
    for (n, &(i, bytes, align)) in order.iter().enumerate() {
        let gap = if rng.percent(40) {
            0
        } else {
            rng.below(free.min(512) + 1)
        };
        free -= gap;
        let mut addr = (pos + gap).next_multiple_of(align);
        if flush_end && n + 1 == order.len() {
            addr = addr.max((arena - bytes) / align * align);
        }
        if let ArgInput::Buffer { addr: a, .. } = &mut case.args[i] {
            *a = addr;
        }
        pos = addr + bytes;
    }
    Ok(Some(case))
}

fn size(rng: &mut Rng, min: i64, max: i64) -> i64 {
    let span = max.wrapping_sub(min) as u64;
    let near = |rng: &mut Rng, k: u64| min.wrapping_add(rng.below(span.min(k) + 1) as i64);
    match rng.below(100) {
        0..15 => min,
        15..25 => min.saturating_add(1).min(max),
        25..35 => max,
        35..70 => near(rng, 8),
        _ => near(rng, u64::MAX - 1),
    }
}

pub(crate) fn scalar(rng: &mut Rng, ty: WasmType) -> WasmValue {
    match ty {
        WasmType::I32 => WasmValue::I32(int_bits(rng, 4) as u32 as i32),
        WasmType::I64 => WasmValue::I64(int_bits(rng, 8) as i64),
        WasmType::F32 => WasmValue::F32(f32_bits(rng)),
        WasmType::F64 => WasmValue::F64(f64_bits(rng)),
    }
}

/// One buffer lane, its floats drawn as `floats` says.
pub(crate) fn lane(rng: &mut Rng, elem: ElemType, floats: Floats) -> u64 {
    match elem {
        ElemType::F32 => u64::from(floats.f32(rng)),
        ElemType::F64 => floats.f64(rng),
        _ => int_bits(rng, elem.size()),
    }
}

/// Which floats a case's memory holds: edge-biased ([`f32_bits`]) or ordinary values
/// ([`f32_plain`]). Half the cases each, decided by a bit of a seed the case already has, so
/// that the case's other draws stay as they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Floats {
    /// NaNs, ±0, ±inf, subnormals, extremes.
    Edges,
    /// Full mantissas of similar magnitude.
    Plain,
}

impl Floats {
    /// The mix for a case with `seed`.
    pub fn of_case(seed: u64) -> Floats {
        if seed & 2 != 0 {
            Floats::Plain
        } else {
            Floats::Edges
        }
    }

    /// An f32, as bits.
    pub fn f32(self, rng: &mut Rng) -> u32 {
        match self {
            Floats::Edges => f32_bits(rng),
            Floats::Plain => f32_plain(rng),
        }
    }

    /// An f64, as bits.
    pub fn f64(self, rng: &mut Rng) -> u64 {
        match self {
            Floats::Edges => f64_bits(rng),
            Floats::Plain => f64_plain(rng),
        }
    }
}

/// Integer edge cases of a `bytes`-wide integer, in its low bytes.
pub fn int_bits(rng: &mut Rng, bytes: usize) -> u64 {
    let bits = bytes as u32 * 8;
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let min = 1u64 << (bits - 1);
    let v = match rng.below(100) {
        0..40 => rng.pick(&[
            0,
            1,
            2,
            u64::MAX,
            min,
            min - 1,
            min + 1,
            mask - 1,
            0x80,
            0xff,
            0x7f,
            0x100,
        ]),
        40..75 => (rng.below(33) as i64 - 16) as u64,
        _ => rng.next_u64(),
    };
    v & mask
}

const F32_EDGES: [u32; 20] = [
    0x7fc0_0000, // NaN
    0xffc0_0000, // -NaN
    0x7f80_0001, // signalling NaN
    0x7fa5_a5a5, // NaN with a payload
    0x0000_0000, // +0
    0x8000_0000, // -0
    0x7f80_0000, // +inf
    0xff80_0000, // -inf
    0x0000_0001, // smallest subnormal
    0x007f_ffff, // largest subnormal
    0x8000_0001,
    0x0080_0000, // smallest normal
    0x7f7f_ffff, // largest finite
    0xff7f_ffff,
    0x3f80_0000, // 1
    0xbf80_0000, // -1
    0x3f00_0000, // 0.5
    0x4b80_0000, // 2^24
    0x3400_0000, // 2^-23
    0x4f00_0000, // 2^31
];

/// f32 bits biased to NaNs, ±0, ±inf, subnormals and extremes.
pub fn f32_bits(rng: &mut Rng) -> u32 {
    let sign = (rng.below(2) as u32) << 31;
    match rng.below(100) {
        0..35 => rng.pick(&F32_EDGES),
        35..45 => sign | (rng.next_u64() as u32 & 0x007f_ffff),
        45..85 => {
            let exp = 127 - 20 + rng.below(41) as u32;
            sign | (exp << 23) | (rng.next_u64() as u32 & 0x007f_ffff)
        }
        _ => rng.next_u64() as u32,
    }
}

/// f32 bits of ordinary values: full mantissas between 2^-8 and 2^9, either sign, so that
/// sums round at nearly every step and a kernel that adds in another order than the CPU (a
/// reassociated or reordered reduction) differs in the last bits. One draw in 64 is an edge
/// case ([`f32_bits`]). Edge-biased values alone hide such bugs: in a long reduction some term
/// is almost always a NaN or an infinity, or one huge term absorbs the rest.
pub fn f32_plain(rng: &mut Rng) -> u32 {
    if rng.below(64) == 0 {
        return f32_bits(rng);
    }
    let sign = (rng.below(2) as u32) << 31;
    let exp = 127 - 8 + rng.below(17) as u32;
    sign | (exp << 23) | (rng.next_u64() as u32 & 0x007f_ffff)
}

/// f64 bits of ordinary values, like [`f32_plain`].
pub fn f64_plain(rng: &mut Rng) -> u64 {
    if rng.below(64) == 0 {
        return f64_bits(rng);
    }
    let sign = rng.below(2) << 63;
    let exp = 1023 - 8 + rng.below(17);
    sign | (exp << 52) | (rng.next_u64() & ((1u64 << 52) - 1))
}

const F64_EDGES: [u64; 20] = [
    0x7ff8_0000_0000_0000,
    0xfff8_0000_0000_0000,
    0x7ff0_0000_0000_0001,
    0x7ffa_5a5a_5a5a_5a5a,
    0,
    0x8000_0000_0000_0000,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    1,
    0x000f_ffff_ffff_ffff,
    0x8000_0000_0000_0001,
    0x0010_0000_0000_0000,
    0x7fef_ffff_ffff_ffff,
    0xffef_ffff_ffff_ffff,
    0x3ff0_0000_0000_0000,
    0xbff0_0000_0000_0000,
    0x3fe0_0000_0000_0000,
    0x4340_0000_0000_0000, // 2^53
    0x3cb0_0000_0000_0000, // 2^-52
    0x41e0_0000_0000_0000, // 2^31
];

/// f64 bits biased to NaNs, ±0, ±inf, subnormals and extremes.
pub fn f64_bits(rng: &mut Rng) -> u64 {
    let sign = rng.below(2) << 63;
    let frac = (1u64 << 52) - 1;
    match rng.below(100) {
        0..35 => rng.pick(&F64_EDGES),
        35..45 => sign | (rng.next_u64() & frac),
        45..85 => {
            let exp = 1023 - 40 + rng.below(81);
            sign | (exp << 52) | (rng.next_u64() & frac)
        }
        _ => rng.next_u64(),
    }
}
