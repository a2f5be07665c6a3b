//! Serde `deserialize_with` helpers that enforce [`crate::caps`] while the manifest is decoded.
//!
//! A length prefix is compared against its cap before anything is allocated for it, so a
//! manifest cannot make the decoder reserve memory out of proportion to its cap. These helpers
//! must never change the encoding: they only refuse; serialization stays serde's derive.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

use crate::caps;

struct BoundedVec<T, const N: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for BoundedVec<T, N> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a sequence of at most {N} elements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let hint = seq.size_hint().unwrap_or(0);
        if hint > N {
            return Err(de::Error::invalid_length(hint, &self));
        }
        let mut out = Vec::with_capacity(hint);
        while let Some(item) = seq.next_element()? {
            if out.len() == N {
                return Err(de::Error::invalid_length(N + 1, &self));
            }
            out.push(item);
        }
        Ok(out)
    }
}

fn bounded_vec<'de, D, T, const N: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_seq(BoundedVec::<T, N>(PhantomData))
}

struct BoundedString;

impl Visitor<'_> for BoundedString {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a string of at most {} bytes", caps::MAX_STRING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if v.len() > caps::MAX_STRING {
            return Err(E::invalid_length(v.len(), &self));
        }
        Ok(v.to_owned())
    }
}

/// A `String` of at most [`caps::MAX_STRING`] bytes.
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_string(BoundedString)
}

struct StringElem(String);

impl<'de> Deserialize<'de> for StringElem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string(d).map(StringElem)
    }
}

/// At most [`caps::MAX_CPU_FEATURES`] strings, each capped.
pub(crate) fn cpu_features<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = bounded_vec::<D, StringElem, { caps::MAX_CPU_FEATURES }>(d)?;
    Ok(v.into_iter().map(|s| s.0).collect())
}

/// At most [`caps::MAX_EXPORTS`] exports.
pub(crate) fn exports<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    bounded_vec::<D, T, { caps::MAX_EXPORTS }>(d)
}

/// At most [`caps::MAX_TARGETS`] targets.
pub(crate) fn targets<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    bounded_vec::<D, T, { caps::MAX_TARGETS }>(d)
}

/// At most [`caps::MAX_SECTIONS`] section entries.
pub(crate) fn sections<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    bounded_vec::<D, T, { caps::MAX_SECTIONS }>(d)
}

/// At most [`caps::MAX_FUNC_ARITY`] value types.
pub(crate) fn arity<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    bounded_vec::<D, T, { caps::MAX_FUNC_ARITY }>(d)
}
