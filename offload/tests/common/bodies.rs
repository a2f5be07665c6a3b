//! Shared by the rewrite tests of `offload/` and `compiler/`: a module's function bodies as text.

/// The operators of each function body of `wasm`, in order, as text.
pub fn bodies(wasm: &[u8]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CodeSectionEntry(body) = payload.expect("parses") {
            let mut reader = body.get_operators_reader().expect("operators");
            let mut ops = Vec::new();
            while !reader.eof() {
                ops.push(format!("{:?}", reader.read().expect("operator")));
            }
            out.push(ops);
        }
    }
    out
}
