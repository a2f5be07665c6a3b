//! The one memory comparison of both oracles: the build's (every kernel against its loop) and
//! `tensorwasm oracle`'s harness (a PTX kernel against a Wasm reference function).
//!
//! **Exact by type.** Two memory images match only if every byte is equal, with one exception:
//! a *float lane* (an element position and width where a float store may write, `f32` or
//! `f64`) that holds a NaN on both sides matches whatever the two NaNs' payloads are, since
//! Wasm leaves the payload of an arithmetic NaN unspecified and the GPU produces its own
//! canonical one. Nowhere else is a NaN special: an integer lane, a byte no float store
//! touches, or the bytes around a float lane must be identical. Each side's lanes are read at
//! the lane's own position and width only, so a NaN-looking neighbour never hides a difference.
//!
//! The caller says where the float lanes are ([`FloatLanes`]): the build's oracle from the
//! kernel table's float stores over the case's iterations, the harness from the float buffers
//! of its plan.

/// Positions and widths of the float lanes of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloatLanes {
    /// `(start, width)`, width 4 or 8, sorted and without duplicates once [`FloatLanes::seal`]
    /// ran.
    lanes: Vec<(usize, u8)>,
    sealed: bool,
}

impl FloatLanes {
    /// No float lanes: every byte compares exactly.
    pub fn none() -> FloatLanes {
        FloatLanes {
            lanes: Vec::new(),
            sealed: true,
        }
    }

    /// Adds a lane of `width` bytes (4: `f32`, 8: `f64`; other widths are ignored, since no
    /// other float width exists) at `start`.
    pub fn add(&mut self, start: usize, width: u32) {
        if width == 4 || width == 8 {
            self.lanes.push((start, width as u8));
            self.sealed = false;
        }
    }

    /// Sorts the lanes for lookups (done by [`compare`] when needed).
    pub fn seal(&mut self) {
        if !self.sealed {
            self.lanes.sort_unstable();
            self.lanes.dedup();
            self.sealed = true;
        }
    }

    /// The lanes that contain byte `at`.
    fn covering(&self, at: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let from = self.lanes.partition_point(|&(s, _)| s + 8 <= at);
        self.lanes[from..]
            .iter()
            .take_while(move |&&(s, _)| s <= at)
            .filter(move |&&(s, w)| at < s + usize::from(w))
            .map(|&(s, w)| (s, usize::from(w)))
    }
}

/// A difference that counts: `len` bytes from `at` (a float lane's, or one byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Difference {
    /// First byte.
    pub at: usize,
    /// Bytes: the float lane's width when the byte lies in one, else 1.
    pub len: usize,
}

/// Bytes as hex pairs in memory order, `00 00 80 3f`: how both oracles show a difference.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `b` is a NaN of its width (4 or 8 bytes, little-endian).
pub fn is_nan(b: &[u8]) -> bool {
    match b.len() {
        4 => b
            .try_into()
            .map(|a| f32::from_le_bytes(a).is_nan())
            .unwrap_or(false),
        8 => b
            .try_into()
            .map(|a| f64::from_le_bytes(a).is_nan())
            .unwrap_or(false),
        _ => false,
    }
}

/// Every difference between `expected` and `actual` that counts, in address order: each byte
/// that differs, unless a float lane containing it holds a NaN on both sides. A difference
/// inside a float lane is reported once for the lane (at its start, with its width); a byte in
/// no float lane alone. Images of different lengths differ from the shorter one's end.
pub fn differences(expected: &[u8], actual: &[u8], lanes: &FloatLanes) -> Vec<Difference> {
    let mut sealed;
    let lanes = if lanes.sealed {
        lanes
    } else {
        sealed = lanes.clone();
        sealed.seal();
        &sealed
    };
    let n = expected.len().min(actual.len());
    let mut out: Vec<Difference> = Vec::new();
    let mut at = 0;
    while at < n {
        // Skip equal stretches fast.
        let same = expected[at..n]
            .iter()
            .zip(&actual[at..n])
            .position(|(e, a)| e != a);
        let Some(skip) = same else { break };
        at += skip;
        let mut excused = false;
        let mut lane: Option<(usize, usize)> = None;
        for (s, w) in lanes.covering(at) {
            let (Some(e), Some(a)) = (expected.get(s..s + w), actual.get(s..s + w)) else {
                continue;
            };
            if is_nan(e) && is_nan(a) {
                excused = true;
                break;
            }
            lane.get_or_insert((s, w));
        }
        if !excused {
            let d = match lane {
                Some((s, w)) => Difference { at: s, len: w },
                None => Difference { at, len: 1 },
            };
            if out.last() != Some(&d) {
                out.push(d);
            }
        }
        at += 1;
    }
    if expected.len() != actual.len() {
        out.push(Difference {
            at: n,
            len: expected.len().max(actual.len()) - n,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(list: &[(usize, u32)]) -> FloatLanes {
        let mut l = FloatLanes::none();
        for &(s, w) in list {
            l.add(s, w);
        }
        l.seal();
        l
    }

    fn i32s(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn integer_lanes_that_look_like_a_nan_still_differ() {
        // [5, -1] against [6, -1]: as one f64 both are NaN, but nothing here is a float lane.
        let (e, a) = (i32s(&[5, -1]), i32s(&[6, -1]));
        assert!(is_nan(&e) && is_nan(&a));
        assert_eq!(
            differences(&e, &a, &FloatLanes::none()),
            vec![Difference { at: 0, len: 1 }]
        );
        // Even with f32 lanes elsewhere.
        assert_eq!(differences(&e, &a, &lanes(&[(8, 4)])).len(), 1);
    }

    #[test]
    fn nan_against_nan_matches_only_in_a_float_lane_of_its_width() {
        let nan_a = 0x7fc0_0000u32.to_le_bytes();
        let nan_b = 0x7fa5_a5a5u32.to_le_bytes();
        let mut e = vec![0u8; 16];
        let mut a = vec![0u8; 16];
        e[4..8].copy_from_slice(&nan_a);
        a[4..8].copy_from_slice(&nan_b);
        assert!(differences(&e, &a, &lanes(&[(4, 4)])).is_empty());
        // Not a lane: exact.
        assert_eq!(
            differences(&e, &a, &FloatLanes::none()),
            (4..7)
                .map(|at| Difference { at, len: 1 })
                .collect::<Vec<_>>()
        );
        // A lane at the wrong position or of the wrong width does not excuse it.
        assert!(!differences(&e, &a, &lanes(&[(0, 4)])).is_empty());
        assert!(!differences(&e, &a, &lanes(&[(0, 8)])).is_empty());
    }

    #[test]
    fn a_nan_lane_does_not_hide_its_neighbour() {
        // f32 lanes at 0 and 4; lane 0 is NaN on both sides, lane 4 differs by one bit.
        let mut e = vec![0u8; 8];
        let mut a = vec![0u8; 8];
        e[0..4].copy_from_slice(&0x7fc0_0000u32.to_le_bytes());
        a[0..4].copy_from_slice(&0xffc0_0001u32.to_le_bytes());
        e[4..8].copy_from_slice(&1.0f32.to_le_bytes());
        a[4..8].copy_from_slice(&1.0000001f32.to_le_bytes());
        assert_eq!(
            differences(&e, &a, &lanes(&[(0, 4), (4, 4)])),
            vec![Difference { at: 4, len: 4 }]
        );
    }

    #[test]
    fn nan_against_a_number_differs() {
        let e = f64::NAN.to_le_bytes().to_vec();
        let a = 0.0f64.to_le_bytes().to_vec();
        assert_eq!(
            differences(&e, &a, &lanes(&[(0, 8)])),
            vec![Difference { at: 0, len: 8 }]
        );
    }

    #[test]
    fn lengths_differ() {
        assert_eq!(
            differences(&[1, 2], &[1, 2, 3], &FloatLanes::none()),
            vec![Difference { at: 2, len: 1 }]
        );
    }

    #[test]
    fn unsealed_lanes_are_sorted_on_use() {
        let mut l = FloatLanes::none();
        l.add(8, 4);
        l.add(0, 4);
        let mut e = vec![0u8; 12];
        let mut a = vec![0u8; 12];
        e[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
        a[0..4].copy_from_slice(&(-f32::NAN).to_le_bytes());
        assert!(differences(&e, &a, &l).is_empty());
    }
}
