//! JSON arguments and results, lowered and raised by the export's declared Wasm types.
//!
//! | Wasm type | JSON in | JSON out |
//! |---|---|---|
//! | `i32` | integer in `-2^31 ..= 2^32-1` (unsigned values wrap), or such a decimal string | signed integer |
//! | `i64` | integer in `-2^63 ..= 2^64-1`, or such a decimal string | signed integer |
//! | `f32`, `f64` | number, or `"nan"`, `"inf"`, `"-inf"`, `"-0"` | number; `"nan"`, `"inf"`, `"-inf"` |
//! | `v128` | string of 32 hex digits (the `u128`, most significant digit first) | same |
//! | `funcref`, `externref` | `null` | `null` (or `"<ref>"` for a non-null reference) |
//!
//! Lowering never guesses: a value that does not fit its type is an error naming the argument.

use serde_json::Value;
use wasmtime::{Val, ValType};

use crate::error::{Error, Result};

/// Lowers a JSON array of arguments into Wasm values for a function named `name`.
pub fn lower_args(name: &str, params: &[ValType], args: &Value) -> Result<Vec<Val>> {
    let items = args
        .as_array()
        .ok_or_else(|| Error::ArgsJson(format!("got {}", kind_of(args))))?;
    if items.len() != params.len() {
        return Err(Error::ArgCount {
            name: name.to_string(),
            expected: params.len(),
            got: items.len(),
            signature: signature(params),
        });
    }
    params
        .iter()
        .zip(items)
        .enumerate()
        .map(|(index, (ty, value))| {
            lower(ty, value).ok_or_else(|| Error::ArgType {
                name: name.to_string(),
                index,
                expected: describe_expected(ty),
                got: value.to_string(),
            })
        })
        .collect()
}

/// Parses `--args` text into JSON, with a clear error.
pub fn parse_args(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::ArgsJson(e.to_string()))
}

/// Raises results into JSON values.
pub fn raise_results(results: &[Val]) -> Value {
    Value::Array(results.iter().map(raise).collect())
}

/// `(i32, f32)` style text for a parameter list.
pub fn signature(params: &[ValType]) -> String {
    let names: Vec<String> = params.iter().map(type_name).collect();
    format!("({})", names.join(", "))
}

/// The text name of a value type (`i32`, `funcref`, ...).
pub fn type_name(ty: &ValType) -> String {
    match ty {
        ValType::I32 => "i32".into(),
        ValType::I64 => "i64".into(),
        ValType::F32 => "f32".into(),
        ValType::F64 => "f64".into(),
        ValType::V128 => "v128".into(),
        ValType::Ref(r) => r.to_string(),
    }
}

fn describe_expected(ty: &ValType) -> String {
    match ty {
        ValType::I32 => "i32 (an integer from -2147483648 to 4294967295)".into(),
        ValType::I64 => "i64 (an integer from -2^63 to 2^64-1)".into(),
        ValType::F32 | ValType::F64 => {
            format!(
                "{} (a number, or \"nan\", \"inf\", \"-inf\")",
                type_name(ty)
            )
        }
        ValType::V128 => "v128 (a string of 32 hex digits)".into(),
        ValType::Ref(_) => format!("{} (only null can be passed)", type_name(ty)),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn lower(ty: &ValType, value: &Value) -> Option<Val> {
    match ty {
        ValType::I32 => integer(value, i64::from(i32::MIN), i64::from(u32::MAX))
            .map(|v| Val::I32(v as u32 as i32)),
        ValType::I64 => wide_integer(value).map(Val::I64),
        ValType::F32 => float(value).map(|v| Val::F32((v as f32).to_bits())),
        ValType::F64 => float(value).map(|v| Val::F64(v.to_bits())),
        ValType::V128 => value
            .as_str()
            .filter(|s| s.len() == 32)
            .and_then(|s| u128::from_str_radix(s, 16).ok())
            .map(|v| Val::V128(v.into())),
        ValType::Ref(r) => value.is_null().then(|| Val::null_ref(r.heap_type())),
    }
}

fn integer(value: &Value, min: i64, max: i64) -> Option<i64> {
    let v = match value {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        _ => return None,
    };
    (min..=max).contains(&v).then_some(v)
}

fn wide_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_u64().map(|u| u as i64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<u64>().ok().map(|u| u as i64))
        }
        _ => None,
    }
}

fn float(value: &Value) -> Option<f64> {
    match value {
        // A JSON integer too large for f64 still has a nearest double; accept it like a literal.
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "nan" => Some(f64::NAN),
            "inf" | "+inf" | "infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
            other => other.parse::<f64>().ok(),
        },
        _ => None,
    }
}

fn raise(val: &Val) -> Value {
    match val {
        Val::I32(v) => Value::from(*v),
        Val::I64(v) => Value::from(*v),
        Val::F32(bits) => raise_float(f64::from(f32::from_bits(*bits)), || {
            f32::from_bits(*bits).to_string()
        }),
        Val::F64(bits) => raise_float(f64::from_bits(*bits), || f64::from_bits(*bits).to_string()),
        Val::V128(v) => Value::String(format!("{:032x}", v.as_u128())),
        Val::FuncRef(None) | Val::ExternRef(None) | Val::AnyRef(None) | Val::ExnRef(None) => {
            Value::Null
        }
        Val::FuncRef(Some(_))
        | Val::ExternRef(Some(_))
        | Val::AnyRef(Some(_))
        | Val::ExnRef(Some(_))
        | Val::ContRef(_) => Value::String("<ref>".into()),
    }
}

/// Finite floats print in their shortest round-trip form for their own width (so an f32 `0.1`
/// prints as `0.1`, not `0.10000000149011612`).
fn raise_float(v: f64, shortest: impl FnOnce() -> String) -> Value {
    if v.is_nan() {
        Value::String("nan".into())
    } else if v.is_infinite() {
        Value::String(if v > 0.0 { "inf" } else { "-inf" }.into())
    } else {
        shortest()
            .parse::<serde_json::Number>()
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(params: &[ValType], args: Value, expect: &str) {
        let got = match lower_args("f", params, &args) {
            Ok(vals) => raise_results(&vals).to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn integers_round_trip_and_wrap() {
        check(&[ValType::I32, ValType::I32], json!([1, -2]), "[1,-2]");
        check(&[ValType::I32], json!([4294967295u64]), "[-1]");
        check(&[ValType::I64], json!(["18446744073709551615"]), "[-1]");
        check(&[ValType::I64], json!([i64::MIN]), "[-9223372036854775808]");
    }

    #[test]
    fn floats_keep_their_width() {
        check(&[ValType::F32], json!([0.1]), "[0.1]");
        check(&[ValType::F64], json!([0.1]), "[0.1]");
        check(
            &[ValType::F32, ValType::F64],
            json!(["nan", "-inf"]),
            "[\"nan\",\"-inf\"]",
        );
        check(&[ValType::F32], json!([3]), "[3]");
    }

    #[test]
    fn bad_arguments_name_the_argument() {
        check(
            &[ValType::I32],
            json!([1.5]),
            "error: argument 0 of `f`: expected i32 (an integer from -2147483648 to 4294967295), got 1.5",
        );
        check(
            &[ValType::I32],
            json!([4294967296u64]),
            "error: argument 0 of `f`: expected i32 (an integer from -2147483648 to 4294967295), got 4294967296",
        );
        check(
            &[ValType::I32, ValType::I32],
            json!([1]),
            "error: `f` takes 2 argument(s) (i32, i32), but 1 were given",
        );
        check(
            &[],
            json!({"a": 1}),
            "error: arguments must be a JSON array such as [1, 2.5]: got an object",
        );
        check(
            &[ValType::F64],
            json!([true]),
            "error: argument 0 of `f`: expected f64 (a number, or \"nan\", \"inf\", \"-inf\"), got true",
        );
    }

    #[test]
    fn v128_and_refs() {
        check(
            &[ValType::V128],
            json!(["000000000000000000000000000000ff"]),
            "[\"000000000000000000000000000000ff\"]",
        );
        check(&[ValType::FUNCREF], json!([null]), "[null]");
        check(
            &[ValType::V128],
            json!(["ff"]),
            "error: argument 0 of `f`: expected v128 (a string of 32 hex digits), got \"ff\"",
        );
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(matches!(parse_args("[1,"), Err(Error::ArgsJson(_))));
    }
}
