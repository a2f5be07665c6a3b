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
use std::collections::BTreeMap;
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

/// A product of symbols, sorted, with repetition (`k0*l3*l3`).
pub type Monomial = Vec<Sym>;

/// `sum(coefficient * monomial)`; the empty monomial is the constant term. No zero coefficients
/// are stored, so equal polynomials are equal values.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Poly {
    terms: BTreeMap<Monomial, i64>,
}

/// Largest number of terms a polynomial may have before the evaluator gives up on it.
const MAX_TERMS: usize = 64;
/// Largest degree of a monomial.
const MAX_DEGREE: usize = 6;

impl Poly {
    /// The constant `c`.
    pub fn constant(c: i64) -> Poly {
        let mut terms = BTreeMap::new();
        if c != 0 {
            terms.insert(Vec::new(), c);
        }
        Poly { terms }
    }

    /// The symbol `s`.
    pub fn sym(s: Sym) -> Poly {
        let mut terms = BTreeMap::new();
        terms.insert(vec![s], 1);
        Poly { terms }
    }

    /// The terms, monomial → coefficient.
    pub fn terms(&self) -> impl Iterator<Item = (&Monomial, i64)> {
        self.terms.iter().map(|(m, c)| (m, *c))
    }

    /// The constant term.
    pub fn constant_term(&self) -> i64 {
        self.terms.get(&Vec::new()).copied().unwrap_or(0)
    }

    /// The value if the polynomial is a constant.
    pub fn as_constant(&self) -> Option<i64> {
        match self.terms.len() {
            0 => Some(0),
            1 => self.terms.get(&Vec::new()).copied(),
            _ => None,
        }
    }

    /// Every symbol that occurs.
    pub fn symbols(&self) -> impl Iterator<Item = Sym> + '_ {
        self.terms.keys().flatten().copied()
    }

    /// Whether `pred` holds for some symbol.
    pub fn mentions(&self, pred: impl Fn(Sym) -> bool) -> bool {
        self.symbols().any(pred)
    }

    fn insert(&mut self, m: Monomial, c: i64) -> Option<()> {
        let slot = self.terms.entry(m).or_insert(0);
        *slot = slot.checked_add(c)?;
        if *slot == 0 {
            self.terms.retain(|_, c| *c != 0);
        }
        (self.terms.len() <= MAX_TERMS).then_some(())
    }

    /// `self + other`.
    pub fn add(&self, other: &Poly) -> Option<Poly> {
        let mut out = self.clone();
        for (m, c) in &other.terms {
            out.insert(m.clone(), *c)?;
        }
        Some(out)
    }

    /// `self - other`.
    pub fn sub(&self, other: &Poly) -> Option<Poly> {
        self.add(&other.scale(-1)?)
    }

    /// `k * self`.
    pub fn scale(&self, k: i64) -> Option<Poly> {
        let mut out = Poly::default();
        for (m, c) in &self.terms {
            out.insert(m.clone(), c.checked_mul(k)?)?;
        }
        Some(out)
    }

    /// `self * other`.
    pub fn mul(&self, other: &Poly) -> Option<Poly> {
        let mut out = Poly::default();
        for (ma, ca) in &self.terms {
            for (mb, cb) in &other.terms {
                let mut m = ma.clone();
                m.extend(mb);
                if m.len() > MAX_DEGREE {
                    return None;
                }
                m.sort();
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
                0 => rest.insert(m.clone(), *c)?,
                1 => {
                    let without: Monomial = m.iter().copied().filter(|&x| x != s).collect();
                    coeff.insert(without, *c)?
                }
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
        k != 0 && self.terms.values().all(|c| c % k == 0)
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
    fn overflow_is_none_not_a_wrap() {
        let big = Poly::constant(i64::MAX);
        assert!(big.add(&Poly::constant(1)).is_none());
        assert!(big.scale(2).is_none());
        assert!(Poly::constant(i64::MIN).scale(-1).is_none());
    }
}
