//! PLAN.toml: how a reference function's arguments map to a hand-written kernel's launch
//! (format in docs/ORACLE.md, "Plans").
//!
//! The TOML is walked by hand rather than through serde derive so that every error names the
//! field at fault (`param[2].elem: unknown element type "f16"`); syntax errors keep the TOML
//! parser's line and column. The result is a checked `tensorwasm_oracle::harness::Plan`.

use tensorwasm_oracle::harness::{
    Addressing, ElemType, KernelArg, ParamKind, Plan, PlanParam, SizeExpr, WasmType,
};
use toml::{Table, Value};

/// Parses and checks a plan.
pub fn parse_plan(text: &str) -> Result<Plan, String> {
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        let msg = e.message().trim_end().to_string();
        match e.span() {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                format!("TOML syntax error at line {line}, column {col}: {msg}")
            }
            None => format!("TOML syntax error: {msg}"),
        }
    })?;
    only_keys(&table, "", &["arena_bytes", "param", "kernel"])?;
    let arena = match table.get("arena_bytes") {
        None => None,
        Some(v) => Some(
            v.as_integer()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or("arena_bytes: expected a non-negative integer")?,
        ),
    };
    let params = match table.get("param") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| param(i, v))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("param: expected [[param]] tables".into()),
    };
    let kernel = match table.get("kernel") {
        Some(Value::Table(t)) => t,
        Some(_) => return Err("kernel: expected a [kernel] table".into()),
        None => return Err("missing [kernel] table (args, grid, block)".into()),
    };
    only_keys(kernel, "kernel.", &["args", "grid", "block"])?;
    let args = match kernel.get("args") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| kernel_arg(i, v, &params))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("kernel.args: expected an array".into()),
        None => return Err("kernel.args: missing (one entry per PTX parameter)".into()),
    };
    let grid = dims(kernel, "grid")?;
    let block = dims(kernel, "block")?;
    Plan::new(params, args, grid, block, arena)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |p| before.len() - p - 1)
        + 1;
    (line, col)
}

fn only_keys(t: &Table, prefix: &str, allowed: &[&str]) -> Result<(), String> {
    match t.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{prefix}{k}: unknown field (expected one of: {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn string<'a>(t: &'a Table, field: &str, key: &str) -> Result<&'a str, String> {
    match t.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("{field}.{key}: expected a string")),
        None => Err(format!("{field}.{key}: missing")),
    }
}

fn expr(field: &str, v: &Value) -> Result<SizeExpr, String> {
    match v {
        Value::Integer(n) => Ok(SizeExpr::int(*n)),
        Value::String(s) => SizeExpr::parse(s).map_err(|e| format!("{field}: {e}")),
        _ => Err(format!(
            "{field}: expected an integer or an expression string"
        )),
    }
}

fn param(i: usize, v: &Value) -> Result<PlanParam, String> {
    let field = format!("param[{i}]");
    let Value::Table(t) = v else {
        return Err(format!("{field}: expected a table"));
    };
    let name = string(t, &field, "name")?.to_string();
    let ty_name = string(t, &field, "type")?;
    let ty = WasmType::from_name(ty_name).ok_or_else(|| {
        format!("{field}.type: unknown type \"{ty_name}\" (expected i32, i64, f32 or f64)")
    })?;
    let kind = string(t, &field, "kind")?;
    let int = |key: &str| -> Result<Option<i64>, String> {
        match t.get(key) {
            None => Ok(None),
            Some(Value::Integer(n)) => Ok(Some(*n)),
            Some(_) => Err(format!("{field}.{key}: expected an integer")),
        }
    };
    let kind = match kind {
        "size" => {
            only_keys(
                t,
                &format!("{field}."),
                &["name", "type", "kind", "min", "max"],
            )?;
            let min = int("min")?.unwrap_or(0);
            let max = int("max")?.ok_or(format!("{field}.max: missing (sizes need a range)"))?;
            ParamKind::Size { min, max }
        }
        "buffer" => {
            only_keys(
                t,
                &format!("{field}."),
                &["name", "type", "kind", "elem", "len", "align"],
            )?;
            let elem_name = string(t, &field, "elem")?;
            let elem = ElemType::from_name(elem_name).ok_or_else(|| {
                format!(
                    "{field}.elem: unknown element type \"{elem_name}\" (expected i8, i16, i32, \
                     i64, f32 or f64)"
                )
            })?;
            let len = expr(
                &format!("{field}.len"),
                t.get("len").ok_or(format!("{field}.len: missing"))?,
            )?;
            let align = match int("align")? {
                None => elem.size() as u32,
                Some(a) => {
                    u32::try_from(a).map_err(|_| format!("{field}.align: {a} is out of range"))?
                }
            };
            ParamKind::Buffer { elem, len, align }
        }
        "scalar" => {
            only_keys(t, &format!("{field}."), &["name", "type", "kind"])?;
            ParamKind::Scalar
        }
        other => {
            return Err(format!(
                "{field}.kind: unknown kind \"{other}\" (expected size, buffer or scalar)"
            ));
        }
    };
    Ok(PlanParam { name, ty, kind })
}

fn kernel_arg(i: usize, v: &Value, params: &[PlanParam]) -> Result<KernelArg, String> {
    let field = format!("kernel.args[{i}]");
    match v {
        Value::String(s) if s == "trap_flag" => Ok(KernelArg::TrapFlag),
        Value::String(s) => match params.iter().find(|p| p.name == *s) {
            Some(PlanParam {
                kind: ParamKind::Buffer { .. },
                ..
            }) => Ok(KernelArg::Buffer {
                name: s.clone(),
                addressing: Addressing::Start,
            }),
            Some(_) => Ok(KernelArg::Param(s.clone())),
            None => Ok(KernelArg::Expr(expr(&field, v)?)),
        },
        Value::Integer(_) => Ok(KernelArg::Expr(expr(&field, v)?)),
        Value::Table(t) => {
            only_keys(t, &format!("{field}."), &["buffer", "addressing"])?;
            let name = string(t, &field, "buffer")?.to_string();
            let addressing = match t.get("addressing") {
                None => Addressing::Start,
                Some(Value::String(s)) if s == "start" => Addressing::Start,
                Some(Value::String(s)) if s == "wasm" => Addressing::Wasm,
                Some(_) => {
                    return Err(format!(
                        "{field}.addressing: expected \"start\" or \"wasm\""
                    ));
                }
            };
            Ok(KernelArg::Buffer { name, addressing })
        }
        _ => Err(format!(
            "{field}: expected a parameter name, an expression, \"trap_flag\" or a table \
             {{ buffer = \"...\", addressing = \"wasm\" }}"
        )),
    }
}

fn dims(kernel: &Table, key: &str) -> Result<[SizeExpr; 3], String> {
    let field = format!("kernel.{key}");
    let items = match kernel.get(key) {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(format!("{field}: expected an array of 1 to 3 dimensions")),
        None => return Err(format!("{field}: missing")),
    };
    if items.is_empty() || items.len() > 3 {
        return Err(format!(
            "{field}: expected 1 to 3 dimensions, found {}",
            items.len()
        ));
    }
    let mut out = [SizeExpr::int(1), SizeExpr::int(1), SizeExpr::int(1)];
    for (d, v) in items.iter().enumerate() {
        out[d] = expr(&format!("{field}[{d}]"), v)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAXPY: &str = r#"
[[param]]
name = "x"
type = "i32"
kind = "buffer"
elem = "f32"
len = "n"

[[param]]
name = "alpha"
type = "f32"
kind = "scalar"

[[param]]
name = "n"
type = "i32"
kind = "size"
max = 100

[kernel]
args = ["x", "alpha", "n", "n * 4", "trap_flag", { buffer = "x", addressing = "wasm" }]
grid = ["cdiv(n, 256)"]
block = [256]
"#;

    fn check(text: &str, expect: &str) {
        let got = match parse_plan(text) {
            Ok(plan) => format!(
                "{} params, args {:?}, grid {}",
                plan.params().len(),
                plan.kernel_args()
                    .iter()
                    .map(|a| match a {
                        KernelArg::Param(n) => format!("param {n}"),
                        KernelArg::Buffer { name, addressing } => {
                            format!("buffer {name} {addressing:?}")
                        }
                        KernelArg::Expr(e) => format!("expr {e}"),
                        KernelArg::TrapFlag => "trap".into(),
                    })
                    .collect::<Vec<_>>(),
                plan.grid()
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn parses_a_plan() {
        check(
            SAXPY,
            "3 params, args [\"buffer x Start\", \"param alpha\", \"param n\", \"expr n * 4\", \
             \"trap\", \"buffer x Wasm\"], grid cdiv(n, 256), 1, 1",
        );
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |from: &str, to: &str| SAXPY.replacen(from, to, 1);
        check(
            &bad("elem = \"f32\"", "elem = \"f16\""),
            "error: param[0].elem: unknown element type \"f16\" (expected i8, i16, i32, i64, f32 \
             or f64)",
        );
        check(
            &bad("len = \"n\"", "len = \"n *\""),
            "error: param[0].len: expected a number, a name or `(` at the end",
        );
        check(
            &bad("len = \"n\"", "len = \"m\""),
            "error: param[0].len: unknown size `m` in `m`",
        );
        check(
            &bad("kind = \"scalar\"", "kind = \"scaler\""),
            "error: param[1].kind: unknown kind \"scaler\" (expected size, buffer or scalar)",
        );
        check(
            &bad("max = 100", "maxx = 100"),
            "error: param[2].maxx: unknown field (expected one of: name, type, kind, min, max)",
        );
        check(
            &bad("type = \"f32\"", "type = \"float\""),
            "error: param[1].type: unknown type \"float\" (expected i32, i64, f32 or f64)",
        );
        check(&bad("name = \"x\"\n", ""), "error: param[0].name: missing");
        check(
            &bad("grid = [\"cdiv(n, 256)\"]", "grid = []"),
            "error: kernel.grid: expected 1 to 3 dimensions, found 0",
        );
        check(
            &bad("block = [256]", "block = [true]"),
            "error: kernel.block[0]: expected an integer or an expression string",
        );
        check(
            &bad("\"n * 4\"", "\"q * 4\""),
            "error: kernel.args[3]: unknown size `q` in `q * 4`",
        );
        check(
            &bad("addressing = \"wasm\"", "addressing = \"abs\""),
            "error: kernel.args[5].addressing: expected \"start\" or \"wasm\"",
        );
        check(
            &bad("[kernel]", "[kernal]"),
            "error: kernal: unknown field (expected one of: arena_bytes, param, kernel)",
        );
        check(
            &bad("name = \"alpha\"", "name = alpha"),
            "error: TOML syntax error at line 10, column 8: string values must be quoted, \
             expected literal string",
        );
        check("", "error: missing [kernel] table (args, grid, block)");
    }
}
