//! Shrinking: from a failing case to a minimal one that fails too.
//!
//! Greedy and deterministic. Each step proposes a strictly simpler case — a size nearer its
//! minimum, zeroed background bytes, buffers packed from address 0, a scalar or buffer lane with
//! a simpler value (zero first, then whole runs of lanes zeroed, then fewer mantissa bits) — and
//! keeps it if it still fails. "Strictly simpler" is measured, so shrinking always ends; the
//! run budget bounds its time.

use super::HarnessError;
use super::inputs::{ArgInput, Case, buffer_lens};
use super::plan::{ElemType, ParamKind, Plan, WasmType};
use super::reference::WasmValue;
use super::report::Failure;

pub(crate) struct Shrinker<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) arena: u64,
    pub(crate) budget: u32,
    pub(crate) runs: u32,
    pub(crate) best: Case,
    pub(crate) failure: Failure,
}

type Fails<'f> = dyn FnMut(&Case) -> Result<Option<Failure>, HarnessError> + 'f;

impl Shrinker<'_> {
    /// Tries `cand`; adopts it if it is valid and still fails. `Ok(false)` once the budget is
    /// spent too.
    fn attempt(&mut self, cand: Case, fails: &mut Fails<'_>) -> Result<bool, HarnessError> {
        if self.runs >= self.budget || cand == self.best {
            return Ok(false);
        }
        if buffer_lens(self.plan, &cand).is_err() || cand.layout(self.plan, self.arena).is_none() {
            return Ok(false);
        }
        self.runs += 1;
        match fails(&cand)? {
            Some(f) => {
                self.best = cand;
                self.failure = f;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub(crate) fn run(&mut self, fails: &mut Fails<'_>) -> Result<(), HarnessError> {
        loop {
            let before = self.runs;
            let mut progress = false;
            progress |= self.sizes(fails)?;
            progress |= self.layout(fails)?;
            progress |= self.scalars(fails)?;
            progress |= self.lanes(fails)?;
            if !progress || self.runs >= self.budget || self.runs == before {
                return Ok(());
            }
        }
    }

    fn sizes(&mut self, fails: &mut Fails<'_>) -> Result<bool, HarnessError> {
        let mut progress = false;
        for (i, p) in self.plan.params().iter().enumerate() {
            let ParamKind::Size { min, .. } = p.kind else {
                continue;
            };
            let ArgInput::Size(v) = self.best.args[i] else {
                continue;
            };
            progress |= shrink_size(v, min, |c| {
                // Shorter buffers keep their first lanes, or else their last ones (where an
                // element-wise failure at a high index lives).
                for suffix in [false, true] {
                    let mut cand = self.best.clone();
                    cand.args[i] = ArgInput::Size(c);
                    if !resize(self.plan, &mut cand, self.arena, suffix) {
                        continue;
                    }
                    if self.attempt(cand, fails)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            })?;
        }
        Ok(progress)
    }

    fn layout(&mut self, fails: &mut Fails<'_>) -> Result<bool, HarnessError> {
        let mut progress = false;
        if self.best.background != 0 {
            let mut cand = self.best.clone();
            cand.background = 0;
            progress |= self.attempt(cand, fails)?;
        }
        let mut cand = self.best.clone();
        pack(self.plan, &mut cand);
        if addr_sum(&cand) < addr_sum(&self.best) {
            progress |= self.attempt(cand, fails)?;
        }
        Ok(progress)
    }

    fn scalars(&mut self, fails: &mut Fails<'_>) -> Result<bool, HarnessError> {
        let mut progress = false;
        for i in 0..self.best.args.len() {
            while let ArgInput::Scalar(v) = self.best.args[i] {
                let (elem, bits) = scalar_lane(v);
                let mut adopted = false;
                for c in simpler(elem, bits) {
                    let mut cand = self.best.clone();
                    cand.args[i] = ArgInput::Scalar(from_lane(v.ty(), c));
                    if self.attempt(cand, fails)? {
                        adopted = true;
                        break;
                    }
                }
                if !adopted {
                    break;
                }
                progress = true;
            }
        }
        Ok(progress)
    }

    fn lanes(&mut self, fails: &mut Fails<'_>) -> Result<bool, HarnessError> {
        let mut progress = false;
        for (i, p) in self.plan.params().iter().enumerate() {
            let ParamKind::Buffer { elem, .. } = p.kind else {
                continue;
            };
            let len = match &self.best.args[i] {
                ArgInput::Buffer { lanes, .. } => lanes.len(),
                _ => continue,
            };
            // Zero runs of lanes, halving the run length (delta debugging).
            let mut chunk = len;
            while chunk > 0 {
                let mut start = 0;
                while start < len {
                    let end = (start + chunk).min(len);
                    let mut cand = self.best.clone();
                    if let ArgInput::Buffer { lanes, .. } = &mut cand.args[i]
                        && lanes[start..end].iter().any(|l| *l != 0)
                    {
                        lanes[start..end].fill(0);
                        progress |= self.attempt(cand, fails)?;
                    }
                    start = end;
                }
                chunk /= 2;
            }
            // Then each lane on its own.
            for k in 0..len {
                while let ArgInput::Buffer { lanes, .. } = &self.best.args[i] {
                    let bits = lanes[k];
                    let mut adopted = false;
                    for c in simpler(elem, bits) {
                        let mut cand = self.best.clone();
                        if let ArgInput::Buffer { lanes, .. } = &mut cand.args[i] {
                            lanes[k] = c;
                        }
                        if self.attempt(cand, fails)? {
                            adopted = true;
                            break;
                        }
                    }
                    if !adopted {
                        break;
                    }
                    progress = true;
                }
            }
        }
        Ok(progress)
    }
}

/// Shrinks one size from `v` toward `min`: tries the values of [`toward`], simplest first, with
/// `adopt`, which keeps a value and answers `true` when the case still fails with it, and starts
/// again from each value kept, until none is. Whether any was kept. Both oracles shrink their
/// sizes with it: the harness's buffers resized to each value, the build's nest locals (through
/// [`super::shrink_size`]).
pub fn shrink_size<E>(
    v: i64,
    min: i64,
    mut adopt: impl FnMut(i64) -> Result<bool, E>,
) -> Result<bool, E> {
    let mut cur = v;
    let mut progress = false;
    loop {
        let mut kept = false;
        for c in toward(cur, min) {
            if adopt(c)? {
                cur = c;
                kept = true;
                break;
            }
        }
        if !kept {
            return Ok(progress);
        }
        progress = true;
    }
}

/// Values strictly nearer `min` than `v`, simplest first: `min` itself, then halving the
/// distance, ending at `v - 1` (`toward(10, 0)` is `[0, 5, 8, 9]`). Both oracles shrink sizes
/// with it (the build's through [`super::shrink_toward`]).
pub fn toward(v: i64, min: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut dist = v.wrapping_sub(min) as u64;
    if dist == 0 {
        return out;
    }
    out.push(min);
    while dist > 1 {
        dist /= 2;
        out.push(v.wrapping_sub(dist as i64));
    }
    out.dedup();
    out
}

/// Recomputes buffer lengths after a size change: lanes are cut (keeping the first ones, or the
/// last ones with `suffix`) or padded with zeros. False if the sizes give an invalid length or
/// the buffers no longer fit.
fn resize(plan: &Plan, case: &mut Case, arena: u64, suffix: bool) -> bool {
    let Ok(lens) = buffer_lens(plan, case) else {
        return false;
    };
    for (a, len) in case.args.iter_mut().zip(lens) {
        if let (ArgInput::Buffer { lanes, .. }, Some(len)) = (a, len) {
            let Ok(len) = usize::try_from(len) else {
                return false;
            };
            if suffix && len < lanes.len() {
                lanes.drain(..lanes.len() - len);
            } else {
                lanes.resize(len, 0);
            }
        }
    }
    if case.layout(plan, arena).is_none() {
        pack(plan, case);
    }
    case.layout(plan, arena).is_some()
}

/// Lays the buffers out from address 0 in their current address order.
fn pack(plan: &Plan, case: &mut Case) {
    let mut order: Vec<(u64, usize)> = case
        .args
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a {
            ArgInput::Buffer { addr, .. } => Some((*addr, i)),
            _ => None,
        })
        .collect();
    order.sort();
    let mut pos = 0u64;
    for (_, i) in order {
        if let (ParamKind::Buffer { elem, align, .. }, ArgInput::Buffer { addr, lanes }) =
            (&plan.params()[i].kind, &mut case.args[i])
        {
            *addr = pos.next_multiple_of(u64::from(*align));
            pos = *addr + lanes.len() as u64 * elem.size() as u64;
        }
    }
}

fn addr_sum(case: &Case) -> u64 {
    case.args
        .iter()
        .map(|a| match a {
            ArgInput::Buffer { addr, .. } => *addr,
            _ => 0,
        })
        .sum()
}

fn scalar_lane(v: WasmValue) -> (ElemType, u64) {
    match v {
        WasmValue::I32(x) => (ElemType::I32, u64::from(x as u32)),
        WasmValue::I64(x) => (ElemType::I64, x as u64),
        WasmValue::F32(b) => (ElemType::F32, u64::from(b)),
        WasmValue::F64(b) => (ElemType::F64, b),
    }
}

fn from_lane(ty: WasmType, bits: u64) -> WasmValue {
    match ty {
        WasmType::I32 => WasmValue::I32(bits as u32 as i32),
        WasmType::I64 => WasmValue::I64(bits as i64),
        WasmType::F32 => WasmValue::F32(bits as u32),
        WasmType::F64 => WasmValue::F64(bits),
    }
}

/// How complex a lane value looks: smaller is simpler.
fn complexity(elem: ElemType, bits: u64) -> u128 {
    match elem {
        ElemType::F32 | ElemType::F64 => {
            let (mant_bits, exp_bits) = if elem == ElemType::F32 {
                (23, 8)
            } else {
                (52, 11)
            };
            let mant = bits & ((1u64 << mant_bits) - 1);
            let exp = (bits >> mant_bits) & ((1u64 << exp_bits) - 1);
            let sign = (bits >> (mant_bits + exp_bits)) & 1;
            if bits & !(1u64 << (mant_bits + exp_bits)) == 0 {
                return u128::from(sign); // ±0
            }
            let bias = (1u64 << (exp_bits - 1)) - 1;
            let exp_dist = exp.abs_diff(bias);
            (u128::from(mant.count_ones()) << 40)
                | (u128::from(exp_dist) << 8)
                | (u128::from(sign) << 1)
                | 2
        }
        _ => {
            let width = elem.size() as u32 * 8;
            let shift = 64 - width;
            let signed = ((bits << shift) as i64) >> shift;
            (u128::from(signed.unsigned_abs()) << 1) | u128::from(signed < 0)
        }
    }
}

/// Candidate replacements for a lane, each strictly simpler than it, most simple first.
fn simpler(elem: ElemType, bits: u64) -> Vec<u64> {
    let mut cands: Vec<u64> = match elem {
        ElemType::F32 => {
            let mut v = vec![0, 0x3f80_0000, 0xbf80_0000, 0x4000_0000, 0x7fc0_0000];
            for k in [23u32, 20, 16, 12, 8, 4, 2, 1] {
                v.push(bits & !((1u64 << k) - 1) & 0xffff_ffff);
            }
            v
        }
        ElemType::F64 => {
            let mut v = vec![
                0,
                0x3ff0_0000_0000_0000,
                0xbff0_0000_0000_0000,
                0x4000_0000_0000_0000,
                0x7ff8_0000_0000_0000,
            ];
            for k in [52u32, 48, 40, 32, 24, 16, 8, 4, 1] {
                v.push(bits & !((1u64 << k) - 1));
            }
            v
        }
        _ => {
            let width = elem.size() as u32 * 8;
            let mask = if width == 64 {
                u64::MAX
            } else {
                (1u64 << width) - 1
            };
            let shift = 64 - width;
            let signed = ((bits << shift) as i64) >> shift;
            vec![
                0,
                1,
                mask,
                (signed / 2) as u64 & mask,
                (signed - signed.signum()) as u64 & mask,
            ]
        }
    };
    let here = complexity(elem, bits);
    cands.retain(|c| *c != bits && complexity(elem, *c) < here);
    let mut seen = Vec::new();
    cands.retain(|c| {
        let new = !seen.contains(c);
        seen.push(*c);
        new
    });
    cands
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toward_min() {
        assert_eq!(toward(10, 0), vec![0, 5, 8, 9]);
        assert_eq!(toward(1, 0), vec![0]);
        assert!(toward(3, 3).is_empty());
    }

    #[test]
    fn simpler_is_strictly_simpler() {
        assert_eq!(simpler(ElemType::I32, 0), Vec::<u64>::new());
        assert_eq!(simpler(ElemType::I32, 1), vec![0]);
        assert_eq!(simpler(ElemType::F32, 0), Vec::<u64>::new());
        assert!(simpler(ElemType::F32, 0x3f80_0000).contains(&0));
        for bits in [0x3fc0_0001u64, 0x7fa5_a5a5, 0x0000_0001, 0xff80_0000] {
            for c in simpler(ElemType::F32, bits) {
                assert!(complexity(ElemType::F32, c) < complexity(ElemType::F32, bits));
            }
        }
    }
}
