//! Integer polynomials over the symbols of a loop nest: the values the symbolic evaluator gives
//! to addresses, induction variables, trip counts and live-outs.
//!
//! A [`Poly`] is a sum of monomials with exact `i64` coefficients (any overflow makes the
//! operation return `None`, which callers treat as "not known"). Its value is the mathematical
//! integer; the Wasm value is that integer modulo 2^32 (or 2^64), since `add`, `sub`, `mul` and
//! `shl` by a constant commute with the reduction. Whoever evaluates a polynomial at run time
//! (the dispatch host) therefore checks that the exact value lies in the range of the Wasm type
//! before trusting it as an address.

use crate::ir::Loop;
use serde::Serialize;
use std::fmt;

/// A symbol: a value fixed for one run of the nest, or a loop's iteration number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Sym {
    /// The value of local `n` when control enters the nest (a live-in), read as unsigned.
    Local(u32),
    /// The value of global `n` (the nest never writes globals).
    Global(u32),
    /// The trip count of a loop of the nest (the same in every iteration of its parents).
    Trip(Loop),
    /// The iteration number of a loop, from 0.
    Iter(Loop),
    /// The value of a local at the head of the current iteration of a loop, while the loop's
    /// update rule is being found (never escapes the evaluator).
    Head(Loop, u32),
}

impl Sym {
    /// Whether the symbol is fixed for the whole nest (a live-in, a global or a trip count).
    pub fn is_invariant(self) -> bool {
        matches!(self, Sym::Local(_) | Sym::Global(_) | Sym::Trip(_))
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sym::Local(l) => write!(f, "l{l}"),
            Sym::Global(g) => write!(f, "g{g}"),
            Sym::Trip(lp) => write!(f, "T{}", lp.0),
            Sym::Iter(lp) => write!(f, "k{}", lp.0),
            Sym::Head(lp, l) => write!(f, "h{}.{l}", lp.0),
        }
    }
}

/// Largest number of terms a polynomial may have before the evaluator gives up on it.
const MAX_TERMS: usize = 64;
/// Largest degree of a monomial.
const MAX_DEGREE: usize = 6;

/// A product of symbols, sorted, with repetition (`k0*l3*l3`), of degree at most 6. Stored
/// inline (no allocation); reads as a slice of symbols, and orders, compares and hashes like
/// one (so a [`Poly`]'s terms sort exactly as a map keyed by `Vec<Sym>` would).
#[derive(Clone, Copy)]
pub struct Monomial {
    len: u8,
    syms: [Sym; MAX_DEGREE],
}

impl Monomial {
    const ONE: Monomial = Monomial {
        len: 0,
        syms: [Sym::Local(0); MAX_DEGREE],
    };

    fn of(s: Sym) -> Monomial {
        let mut m = Monomial::ONE;
        m.syms[0] = s;
        m.len = 1;
        m
    }

    /// The sorted product of `a` and `b`; `None` above the maximum degree.
    fn times(a: &[Sym], b: &[Sym]) -> Option<Monomial> {
        let n = a.len() + b.len();
        if n > MAX_DEGREE {
            return None;
        }
        let mut m = Monomial::ONE;
        m.syms[..a.len()].copy_from_slice(a);
        m.syms[a.len()..n].copy_from_slice(b);
        m.syms[..n].sort();
        m.len = n as u8;
        Some(m)
    }

    /// `self` without the occurrences of `s`.
    fn without(&self, s: Sym) -> Monomial {
        let mut m = Monomial::ONE;
        for &x in self.iter().filter(|&&x| x != s) {
            m.syms[usize::from(m.len)] = x;
            m.len += 1;
        }
        m
    }
}

impl std::ops::Deref for Monomial {
    type Target = [Sym];
    fn deref(&self) -> &[Sym] {
        &self.syms[..usize::from(self.len)]
    }
}

impl<'a> IntoIterator for &'a Monomial {
    type Item = &'a Sym;
    type IntoIter = std::slice::Iter<'a, Sym>;
    fn into_iter(self) -> Self::IntoIter {
        self[..].iter()
    }
}

impl PartialEq for Monomial {
    fn eq(&self, other: &Monomial) -> bool {
        self[..] == other[..]
    }
}

impl Eq for Monomial {}

impl PartialOrd for Monomial {
    fn partial_cmp(&self, other: &Monomial) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Monomial {
    fn cmp(&self, other: &Monomial) -> std::cmp::Ordering {
        self[..].cmp(&other[..])
    }
}

impl std::hash::Hash for Monomial {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self[..].hash(state);
    }
}

impl fmt::Debug for Monomial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// `sum(coefficient * monomial)`; the empty monomial is the constant term. The terms are kept
/// sorted by monomial, and no zero coefficients are stored, so equal polynomials are equal
/// values. Serialized as its printed form (`"4*k0 + l2 + 8"`), as the text reports show it.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Poly {
    terms: Vec<(Monomial, i64)>,
}

impl Serialize for Poly {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Debug for Poly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poly")
            .field("terms", &DebugMap(&self.terms))
            .finish()
    }
}

/// The terms printed as a map, monomial → coefficient.
struct DebugMap<'a>(&'a [(Monomial, i64)]);

impl fmt::Debug for DebugMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(m, c)| (m, c)))
            .finish()
    }
}

impl Poly {
    /// The constant `c`.
    pub fn constant(c: i64) -> Poly {
        let mut terms = Vec::new();
        if c != 0 {
            terms.push((Monomial::ONE, c));
        }
        Poly { terms }
    }

    /// The symbol `s`.
    pub fn sym(s: Sym) -> Poly {
        Poly {
            terms: vec![(Monomial::of(s), 1)],
        }
    }

    /// The terms, monomial → coefficient, in monomial order.
    pub fn terms(&self) -> impl Iterator<Item = (&Monomial, i64)> {
        self.terms.iter().map(|(m, c)| (m, *c))
    }

    /// The constant term.
    pub fn constant_term(&self) -> i64 {
        // The empty monomial sorts first.
        match self.terms.first() {
            Some((m, c)) if m.is_empty() => *c,
            _ => 0,
        }
    }

    /// The value if the polynomial is a constant.
    pub fn as_constant(&self) -> Option<i64> {
        match &self.terms[..] {
            [] => Some(0),
            [(m, c)] if m.is_empty() => Some(*c),
            _ => None,
        }
    }

    /// Every symbol that occurs.
    pub fn symbols(&self) -> impl Iterator<Item = Sym> + '_ {
        self.terms.iter().flat_map(|(m, _)| m.iter()).copied()
    }

    /// Whether `pred` holds for some symbol.
    pub fn mentions(&self, pred: impl Fn(Sym) -> bool) -> bool {
        self.symbols().any(pred)
    }

    /// Adds `c * m`; `None` on overflow or when there are more than [`MAX_TERMS`] terms.
    fn insert(&mut self, m: Monomial, c: i64) -> Option<()> {
        match self.terms.binary_search_by(|(x, _)| x.cmp(&m)) {
            Ok(i) => {
                let slot = &mut self.terms[i].1;
                *slot = slot.checked_add(c)?;
                if *slot == 0 {
                    self.terms.remove(i);
                }
            }
            Err(_) if c == 0 => {}
            Err(i) => self.terms.insert(i, (m, c)),
        }
        (self.terms.len() <= MAX_TERMS).then_some(())
    }

    /// `self + other`.
    pub fn add(&self, other: &Poly) -> Option<Poly> {
        let mut out = self.clone();
        out.terms.reserve(other.terms.len());
        for &(m, c) in &other.terms {
            out.insert(m, c)?;
        }
        Some(out)
    }

    /// `self - other`.
    pub fn sub(&self, other: &Poly) -> Option<Poly> {
        self.add(&other.scale(-1)?)
    }

    /// `k * self`.
    pub fn scale(&self, k: i64) -> Option<Poly> {
        if k == 0 {
            return Some(Poly::default());
        }
        // Non-zero times non-zero is non-zero: the terms stay as they are.
        let terms = self
            .terms
            .iter()
            .map(|&(m, c)| Some((m, c.checked_mul(k)?)))
            .collect::<Option<Vec<_>>>()?;
        Some(Poly { terms })
    }

    /// `self * other`.
    pub fn mul(&self, other: &Poly) -> Option<Poly> {
        let mut out = Poly::default();
        for (ma, ca) in &self.terms {
            for (mb, cb) in &other.terms {
                let m = Monomial::times(ma, mb)?;
                out.insert(m, ca.checked_mul(*cb)?)?;
            }
        }
        Some(out)
    }

    /// Replaces every occurrence of `s` by `by`.
    pub fn substitute(&self, s: Sym, by: &Poly) -> Option<Poly> {
        if !self.mentions(|x| x == s) {
            return Some(self.clone());
        }
        let mut out = Poly::default();
        for (m, c) in &self.terms {
            let mut term = Poly::constant(*c);
            for &x in m {
                let factor = if x == s { by.clone() } else { Poly::sym(x) };
                term = term.mul(&factor)?;
            }
            out = out.add(&term)?;
        }
        Some(out)
    }

    /// Splits `self` as `rest + coefficient * s` where `s` occurs at most once per monomial;
    /// `None` if some monomial has `s` twice.
    pub fn split_linear(&self, s: Sym) -> Option<(Poly, Poly)> {
        let (mut rest, mut coeff) = (Poly::default(), Poly::default());
        for (m, c) in &self.terms {
            let n = m.iter().filter(|&&x| x == s).count();
            match n {
                0 => rest.insert(*m, *c)?,
                1 => coeff.insert(m.without(s), *c)?,
                _ => return None,
            }
        }
        Some((rest, coeff))
    }

    /// The value at the given symbol values (exact; `None` on overflow or a missing symbol).
    pub fn eval(&self, value: &dyn Fn(Sym) -> Option<i128>) -> Option<i128> {
        let mut sum: i128 = 0;
        for (m, c) in &self.terms {
            let mut t = i128::from(*c);
            for &s in m {
                t = t.checked_mul(value(s)?)?;
            }
            sum = sum.checked_add(t)?;
        }
        Some(sum)
    }

    /// Whether every coefficient, the constant included, is a multiple of `k`.
    pub fn divisible_by(&self, k: i64) -> bool {
        k != 0 && self.terms.iter().all(|(_, c)| c % k == 0)
    }
}

impl fmt::Display for Poly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.terms.is_empty() {
            return f.write_str("0");
        }
        // Constant last, like `4*k0 + l2 + 8`.
        let mut parts: Vec<(String, i64)> = Vec::new();
        let mut constant = 0;
        for (m, c) in &self.terms {
            if m.is_empty() {
                constant = *c;
                continue;
            }
            let name: Vec<String> = m.iter().map(ToString::to_string).collect();
            parts.push((name.join("*"), *c));
        }
        let mut first = true;
        for (name, c) in parts {
            let (neg, mag) = (c < 0, c.unsigned_abs());
            match (first, neg) {
                (true, true) => f.write_str("-")?,
                (true, false) => {}
                (false, true) => f.write_str(" - ")?,
                (false, false) => f.write_str(" + ")?,
            }
            if mag == 1 {
                f.write_str(&name)?;
            } else {
                write!(f, "{mag}*{name}")?;
            }
            first = false;
        }
        if constant != 0 {
            match (first, constant < 0) {
                (true, _) => write!(f, "{constant}")?,
                (false, true) => write!(f, " - {}", constant.unsigned_abs())?,
                (false, false) => write!(f, " + {constant}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(n: u32) -> Poly {
        Poly::sym(Sym::Local(n))
    }

    #[test]
    fn arithmetic_and_printing() {
        let k = Poly::sym(Sym::Iter(Loop(0)));
        let p = l(2)
            .add(&k.scale(4).unwrap())
            .unwrap()
            .add(&Poly::constant(-8))
            .unwrap();
        assert_eq!(p.to_string(), "l2 + 4*k0 - 8");
        let q = p.sub(&l(2)).unwrap();
        assert_eq!(q.to_string(), "4*k0 - 8");
        assert_eq!(p.sub(&p).unwrap(), Poly::constant(0));
        let sq = l(3).mul(&l(3)).unwrap();
        assert_eq!(sq.to_string(), "l3*l3");
        assert!(sq.split_linear(Sym::Local(3)).is_none());
        let (rest, coeff) = p.split_linear(Sym::Iter(Loop(0))).unwrap();
        assert_eq!(
            (rest.to_string(), coeff.to_string()),
            ("l2 - 8".into(), "4".into())
        );
    }

    #[test]
    fn substitution_and_evaluation() {
        let k = Sym::Iter(Loop(1));
        let p = l(1)
            .mul(&Poly::sym(k))
            .unwrap()
            .add(&Poly::constant(3))
            .unwrap();
        let q = p.substitute(k, &Poly::constant(5)).unwrap();
        assert_eq!(q.to_string(), "5*l1 + 3");
        let v = q.eval(&|s| (s == Sym::Local(1)).then_some(7)).unwrap();
        assert_eq!(v, 38);
        assert_eq!(q.eval(&|_| None), None);
    }

    #[test]
    fn terms_stay_sorted_and_compare_like_a_map() {
        // Built in different orders, the same polynomial is the same value.
        let k = Poly::sym(Sym::Iter(Loop(0)));
        let a = l(2).add(&k).unwrap().add(&Poly::constant(3)).unwrap();
        let b = Poly::constant(3).add(&k).unwrap().add(&l(2)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.constant_term(), 3);
        let monomials: Vec<Vec<Sym>> = a.terms().map(|(m, _)| m.to_vec()).collect();
        let mut sorted = monomials.clone();
        sorted.sort();
        assert_eq!(monomials, sorted, "the constant (empty monomial) first");
        // Cancelling a term removes it; a constant compares below a symbol.
        assert_eq!(a.sub(&k).unwrap().to_string(), "l2 + 3");
        assert!(Poly::constant(5) < l(0));
        // Degree above six is not a polynomial the evaluator keeps.
        let mut p = l(1);
        for _ in 0..5 {
            p = p.mul(&l(1)).unwrap();
        }
        assert!(p.mul(&l(1)).is_none());
        assert_eq!(format!("{:?}", l(4)), "Poly { terms: {[Local(4)]: 1} }");
    }

    #[test]
    fn overflow_is_none_not_a_wrap() {
        let big = Poly::constant(i64::MAX);
        assert!(big.add(&Poly::constant(1)).is_none());
        assert!(big.scale(2).is_none());
        assert!(Poly::constant(i64::MIN).scale(-1).is_none());
    }
}
