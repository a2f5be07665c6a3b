//! Reading a user's input file: a Wasm binary, WebAssembly text, or a `.twb` bundle.
//!
//! The type is decided by content, not name: `\0asm` starts a binary, the bundle magic starts a
//! bundle, and UTF-8 text starting with `(` (after comments and whitespace) is WAT. Components are
//! refused by name. This module must never guess: anything else is an error naming the file.

use std::path::Path;

/// What an input file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A core Wasm module (text inputs are already converted to binary).
    Module(Vec<u8>),
    /// A `.twb` bundle, unverified.
    Bundle(Vec<u8>),
}

/// Reads and classifies `path`.
pub fn read(path: &Path) -> anyhow::Result<Input> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    classify(path, bytes)
}

/// Reads `path`, which must hold a module (binary or text).
pub fn read_module(path: &Path) -> anyhow::Result<Vec<u8>> {
    match read(path)? {
        Input::Module(bytes) => Ok(bytes),
        Input::Bundle(_) => anyhow::bail!(
            "{} is a .twb bundle, not a Wasm module; pass the module it was built from",
            path.display()
        ),
    }
}

/// Classifies bytes read from `path` (used for messages only).
pub fn classify(path: &Path, bytes: Vec<u8>) -> anyhow::Result<Input> {
    if bytes.starts_with(&tensorwasm_bundle::MAGIC) {
        return Ok(Input::Bundle(bytes));
    }
    if bytes.starts_with(b"\0asm") {
        return match bytes.get(4..8) {
            Some([1, 0, 0, 0]) => Ok(Input::Module(bytes)),
            Some([_, _, 1, 0]) => anyhow::bail!(
                "{} is a WebAssembly component; TensorWasm takes core modules",
                path.display()
            ),
            _ => anyhow::bail!(
                "{}: unsupported Wasm binary version (at offset 0x4); expected a version 1 core module",
                path.display()
            ),
        };
    }
    if looks_like_wat(&bytes) {
        return wat::parse_bytes(&bytes)
            .map(|b| Input::Module(b.into_owned()))
            .map_err(|mut e| {
                e.set_path(path);
                anyhow::anyhow!("invalid WebAssembly text: {e}")
            });
    }
    anyhow::bail!(
        "{}: unknown file type: expected a Wasm binary (starting with \\0asm), WebAssembly text \
         (.wat) or a .twb bundle",
        path.display()
    )
}

fn looks_like_wat(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(";;") {
            rest = after.split_once('\n').map_or("", |(_, tail)| tail);
        } else if let Some(after) = rest.strip_prefix("(;") {
            rest = after.split_once(";)").map_or("", |(_, tail)| tail);
        } else {
            return rest.starts_with('(');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(bytes: &[u8], expect: &str) {
        let got = match classify(Path::new("in"), bytes.to_vec()) {
            Ok(Input::Module(b)) => format!("module {} bytes", b.len()),
            Ok(Input::Bundle(_)) => "bundle".into(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn classifies_by_content() {
        check(b"\0asm\x01\0\0\0", "module 8 bytes");
        check(b";; a comment\n(module)", "module 8 bytes");
        check(b"(; block ;) (module)", "module 8 bytes");
        check(
            b"\0asm\x0d\0\x01\0",
            "error: in is a WebAssembly component; TensorWasm takes core modules",
        );
        check(
            b"\0asm\x02\0\0\0",
            "error: in: unsupported Wasm binary version (at offset 0x4); expected a version 1 core module",
        );
        check(
            b"\x7fELF",
            "error: in: unknown file type: expected a Wasm binary (starting with \\0asm), WebAssembly text (.wat) or a .twb bundle",
        );
        check(&tensorwasm_bundle::MAGIC, "bundle");
    }

    #[test]
    fn wat_errors_name_file_line_and_column() {
        let err = classify(
            Path::new("bad.wat"),
            b"(module (func (i32.bogus)))".to_vec(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("bad.wat:1:"), "{text}");
    }
}
