//! [`Opcode`]: one variant per Wasm operator, generated from wasmparser's operator list, with
//! its text name and its [`OpClass`].
//!
//! The list comes from `for_each_visit_operator!`/`for_each_visit_simd_operator!`, so the IR knows
//! every operator wasmparser can decode. This module must never depend on anything but that list.

use serde::{Serialize, Serializer};
use std::fmt;

macro_rules! define_opcodes {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*) )*) => {
        /// A Wasm operator (scalar and control; SIMD operators are in [`SimdOpcode`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum ScalarOpcode { $($op,)* }

        impl ScalarOpcode {
            /// Every variant, in declaration order (`ALL[op as usize] == op`).
            const ALL: &'static [ScalarOpcode] = &[$(ScalarOpcode::$op,)*];

            fn visit_name(self) -> &'static str {
                match self { $(ScalarOpcode::$op => stringify!($visit),)* }
            }
        }
    };
}
wasmparser::for_each_visit_operator!(define_opcodes);

macro_rules! define_simd_opcodes {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*) )*) => {
        /// A Wasm SIMD or relaxed-SIMD operator.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum SimdOpcode { $($op,)* }

        impl SimdOpcode {
            /// Every variant, in declaration order (`ALL[op as usize] == op`).
            const ALL: &'static [SimdOpcode] = &[$(SimdOpcode::$op,)*];

            fn visit_name(self) -> &'static str {
                match self { $(SimdOpcode::$op => stringify!($visit),)* }
            }
        }
    };
}
wasmparser::for_each_visit_simd_operator!(define_simd_opcodes);

/// A Wasm operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// A scalar, control, memory, table or reference operator.
    Scalar(ScalarOpcode),
    /// A SIMD operator.
    Simd(SimdOpcode),
}

/// The class an operator is counted under in [`crate::ir::FeatureCounts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum OpClass {
    /// Integer arithmetic and bit operations.
    IntArith,
    /// Float arithmetic.
    FloatArith,
    /// Conversions between value types.
    Conversion,
    /// Comparisons.
    Compare,
    /// Constants.
    Const,
    /// Local and global accesses.
    Variable,
    /// Memory loads.
    Load,
    /// Memory stores.
    Store,
    /// Control flow.
    Control,
    /// Calls.
    Call,
    /// Non-memory SIMD operators.
    V128,
    /// Anything else.
    Other,
}

const TYPED_PREFIXES: &[&str] = &[
    "i32", "i64", "f32", "f64", "v128", "i8x16", "i16x8", "i32x4", "i64x2", "f32x4", "f64x2",
    "local", "global", "memory", "table", "ref", "data", "elem", "struct", "array", "any",
    "extern", "i31",
];

const CONTROL: &[&str] = &[
    "unreachable",
    "nop",
    "block",
    "loop",
    "if",
    "else",
    "end",
    "br",
    "br_if",
    "br_table",
    "return",
    "try",
    "catch",
    "catch_all",
    "delegate",
    "try_table",
    "throw",
    "rethrow",
    "throw_ref",
    "br_on_null",
    "br_on_non_null",
    "br_on_cast",
    "br_on_cast_fail",
];

const COMPARE_SUFFIXES: &[&str] = &[
    "eqz", "eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u", "lt", "gt",
    "le", "ge",
];

const CONVERSION_MARKERS: &[&str] = &[
    "wrap_",
    "extend",
    "trunc_f",
    "trunc_sat_f",
    "convert_",
    "demote_",
    "promote_",
    "reinterpret_",
];

/// Name and class of every operator, computed once: [`Opcode::name`] and [`Opcode::class`] are
/// called per instruction by the front end and the analyses.
struct Table {
    scalar: Vec<(String, OpClass)>,
    simd: Vec<(String, OpClass)>,
}

fn table() -> &'static Table {
    static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let entry = |op: Opcode| (op.compute_name(), op.compute_class());
        Table {
            scalar: ScalarOpcode::ALL
                .iter()
                .map(|&op| entry(Opcode::Scalar(op)))
                .collect(),
            simd: SimdOpcode::ALL
                .iter()
                .map(|&op| entry(Opcode::Simd(op)))
                .collect(),
        }
    })
}

impl Opcode {
    fn entry(self) -> &'static (String, OpClass) {
        let t = table();
        match self {
            Opcode::Scalar(op) => &t.scalar[op as usize],
            Opcode::Simd(op) => &t.simd[op as usize],
        }
    }

    /// The Wasm text name, e.g. `i32.add`, `local.get`, `br_if`.
    pub fn name(self) -> String {
        self.entry().0.clone()
    }

    /// [`Opcode::name`] without allocating.
    pub fn name_str(self) -> &'static str {
        &self.entry().0
    }

    /// The class this operator is counted under.
    pub fn class(self) -> OpClass {
        self.entry().1
    }

    fn compute_name(self) -> String {
        let visit = match self {
            Opcode::Scalar(op) => op.visit_name(),
            Opcode::Simd(op) => op.visit_name(),
        };
        let base = visit.strip_prefix("visit_").unwrap_or(visit);
        match base.split_once('_') {
            Some((head, rest)) if TYPED_PREFIXES.contains(&head) => format!("{head}.{rest}"),
            _ => base.to_string(),
        }
    }

    fn compute_class(self) -> OpClass {
        let name = self.compute_name();
        let (head, rest) = name.split_once('.').unwrap_or(("", name.as_str()));
        if rest.starts_with("load") || rest.contains(".load") {
            return OpClass::Load;
        }
        if rest.starts_with("store") || rest.contains(".store") {
            return OpClass::Store;
        }
        if rest.starts_with("atomic") {
            return OpClass::Other;
        }
        if matches!(self, Opcode::Simd(_)) {
            return OpClass::V128;
        }
        if CONTROL.contains(&name.as_str()) {
            return OpClass::Control;
        }
        if name.starts_with("call") || name.starts_with("return_call") {
            return OpClass::Call;
        }
        match head {
            "local" | "global" => return OpClass::Variable,
            "i32" | "i64" | "f32" | "f64" => {}
            _ => return OpClass::Other,
        }
        if rest == "const" {
            OpClass::Const
        } else if COMPARE_SUFFIXES.contains(&rest) {
            OpClass::Compare
        } else if CONVERSION_MARKERS.iter().any(|m| rest.contains(m)) {
            OpClass::Conversion
        } else if head.starts_with('f') {
            OpClass::FloatArith
        } else {
            OpClass::IntArith
        }
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_str())
    }
}

impl Serialize for Opcode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(op: Opcode, expect: &str) {
        assert_eq!(format!("{op} {:?}", op.class()), expect);
    }

    #[test]
    fn variant_tables_are_indexed_by_discriminant() {
        for (i, &op) in ScalarOpcode::ALL.iter().enumerate() {
            assert_eq!(op as usize, i);
            let op = Opcode::Scalar(op);
            assert_eq!(
                (op.name(), op.class()),
                (op.compute_name(), op.compute_class())
            );
        }
        for (i, &op) in SimdOpcode::ALL.iter().enumerate() {
            assert_eq!(op as usize, i);
            let op = Opcode::Simd(op);
            assert_eq!(
                (op.name(), op.class()),
                (op.compute_name(), op.compute_class())
            );
        }
    }

    #[test]
    fn names_and_classes() {
        check(Opcode::Scalar(ScalarOpcode::I32Add), "i32.add IntArith");
        check(Opcode::Scalar(ScalarOpcode::F64Sqrt), "f64.sqrt FloatArith");
        check(
            Opcode::Scalar(ScalarOpcode::F32Trunc),
            "f32.trunc FloatArith",
        );
        check(
            Opcode::Scalar(ScalarOpcode::I32TruncF32S),
            "i32.trunc_f32_s Conversion",
        );
        check(
            Opcode::Scalar(ScalarOpcode::I64ExtendI32U),
            "i64.extend_i32_u Conversion",
        );
        check(Opcode::Scalar(ScalarOpcode::I32LtS), "i32.lt_s Compare");
        check(Opcode::Scalar(ScalarOpcode::F32Ge), "f32.ge Compare");
        check(Opcode::Scalar(ScalarOpcode::I32Load8U), "i32.load8_u Load");
        check(Opcode::Scalar(ScalarOpcode::F64Store), "f64.store Store");
        check(Opcode::Scalar(ScalarOpcode::BrIf), "br_if Control");
        check(
            Opcode::Scalar(ScalarOpcode::CallIndirect),
            "call_indirect Call",
        );
        check(Opcode::Scalar(ScalarOpcode::LocalTee), "local.tee Variable");
        check(
            Opcode::Scalar(ScalarOpcode::MemoryGrow),
            "memory.grow Other",
        );
        check(Opcode::Scalar(ScalarOpcode::I64Const), "i64.const Const");
        check(Opcode::Simd(SimdOpcode::V128Load), "v128.load Load");
        check(Opcode::Simd(SimdOpcode::F32x4Add), "f32x4.add V128");
        check(
            Opcode::Scalar(ScalarOpcode::I32AtomicLoad),
            "i32.atomic_load Other",
        );
    }
}
