//! Validation and export signatures.
//!
//! Validates the module with exactly the Wasm features of the runtime's engine (so a module that
//! validates here will load there) and lists its exports with their types for the manifest.
//! Errors carry wasmparser's byte offset. This module never modifies the module.

use tensorwasm_bundle::{Export, ExportKind, ValType};
use wasmparser::types::EntityType;
use wasmparser::{CompositeInnerType, Validator, WasmFeatures};

/// Validates `wasm` under `features` and returns its exports in declaration order.
pub fn validate(wasm: &[u8], features: WasmFeatures) -> anyhow::Result<Vec<Export>> {
    let types = Validator::new_with_features(features)
        .validate_all(wasm)
        .map_err(|e| anyhow::anyhow!("invalid Wasm module: {e}"))?;
    let types = types.as_ref();
    let Some(exports) = types.core_exports() else {
        anyhow::bail!("invalid Wasm module: not a core module");
    };
    Ok(exports
        .map(|(name, entity)| {
            let kind = match entity {
                EntityType::Func(id) | EntityType::FuncExact(id) => {
                    match &types[id].composite_type.inner {
                        CompositeInnerType::Func(f) => ExportKind::Func {
                            params: f.params().iter().map(val_type).collect(),
                            results: f.results().iter().map(val_type).collect(),
                        },
                        _ => ExportKind::Func {
                            params: vec![],
                            results: vec![],
                        },
                    }
                }
                EntityType::Memory(_) => ExportKind::Memory,
                EntityType::Table(_) => ExportKind::Table,
                EntityType::Global(_) => ExportKind::Global,
                EntityType::Tag(_) => ExportKind::Tag,
            };
            Export {
                name: name.to_string(),
                kind,
            }
        })
        .collect())
}

fn val_type(ty: &wasmparser::ValType) -> ValType {
    match ty {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::V128 => ValType::V128,
        wasmparser::ValType::Ref(r) if r.is_func_ref() => ValType::FuncRef,
        wasmparser::ValType::Ref(r) if r.is_extern_ref() => ValType::ExternRef,
        wasmparser::ValType::Ref(_) => ValType::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(wat: &str, expect: &str) {
        let wasm = wat::parse_str(wat).expect("test input is valid text");
        let got = match validate(&wasm, WasmFeatures::default()) {
            Ok(exports) => exports
                .iter()
                .map(crate::pipeline::describe_export)
                .collect::<Vec<_>>()
                .join("; "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn lists_exports_with_types() {
        check(
            r#"(module (memory (export "mem") 1)
                 (func (export "add") (param i32 f32) (result f64) f64.const 0))"#,
            "mem: memory; add: func (i32, f32) -> (f64)",
        );
    }

    #[test]
    fn invalid_modules_name_the_offset() {
        let bad = [0, b'a', b's', b'm', 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 0x0a];
        let err = validate(&bad, WasmFeatures::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("offset 0x"), "{err}");
    }
}
