//! The Wasm numeric operators, loads and stores that KernelIR supports.
//!
//! Each enum is flat and named after the Wasm instruction (`I32Add` is `i32.add`), so a front end
//! maps a Wasm operator to KernelIR in one line. Each operator knows its text name, its operand
//! and result types, and whether it can trap; the emitter lowers it through its `kind`.
//! This module must never describe semantics that differ from the WebAssembly spec.

use serde::{Deserialize, Serialize};

use super::ValType;
use ValType::{F32, F64, I32, I64};

macro_rules! unops {
    ($($var:ident = $txt:literal, $arg:ident -> $res:ident, $kind:ident;)*) => {
        /// A unary Wasm operator: tests, bit counts, float unaries and every conversion.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum UnOp { $(#[doc = $txt] $var,)* }
        impl UnOp {
            /// Every unary operator, in declaration order.
            pub const ALL: &'static [UnOp] = &[$(UnOp::$var,)*];
            /// The Wasm text name (`i32.clz`).
            pub fn name(self) -> &'static str { match self { $(UnOp::$var => $txt,)* } }
            /// The operand type.
            pub fn operand(self) -> ValType { match self { $(UnOp::$var => $arg,)* } }
            /// The result type.
            pub fn result(self) -> ValType { match self { $(UnOp::$var => $res,)* } }
            /// What the operator does, independent of types.
            pub fn kind(self) -> UnKind { match self { $(UnOp::$var => UnKind::$kind,)* } }
        }
    };
}

macro_rules! binops {
    ($($var:ident = $txt:literal, $arg:ident, $kind:ident;)*) => {
        /// A binary Wasm operator: arithmetic, bitwise, shifts, comparisons, float min/max.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum BinOp { $(#[doc = $txt] $var,)* }
        impl BinOp {
            /// Every binary operator, in declaration order.
            pub const ALL: &'static [BinOp] = &[$(BinOp::$var,)*];
            /// The Wasm text name (`i32.add`).
            pub fn name(self) -> &'static str { match self { $(BinOp::$var => $txt,)* } }
            /// The type of both operands.
            pub fn operand(self) -> ValType { match self { $(BinOp::$var => $arg,)* } }
            /// What the operator does, independent of types.
            pub fn kind(self) -> BinKind { match self { $(BinOp::$var => BinKind::$kind,)* } }
        }
    };
}

macro_rules! memops {
    ($name:ident, $doc:literal, $($var:ident = $txt:literal, $ty:ident, $bytes:literal, $signed:literal;)*) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[doc = $txt] $var,)* }
        impl $name {
            /// Every operator, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var,)*];
            /// The Wasm text name.
            pub fn name(self) -> &'static str { match self { $($name::$var => $txt,)* } }
            /// The Wasm value type loaded or stored.
            pub fn value_type(self) -> ValType { match self { $($name::$var => $ty,)* } }
            /// How many bytes of memory are accessed.
            pub fn bytes(self) -> u32 { match self { $($name::$var => $bytes,)* } }
            /// Whether a narrow access sign-extends (only meaningful for loads).
            pub fn signed(self) -> bool { match self { $($name::$var => $signed,)* } }
        }
    };
}

/// The type-independent meaning of a [`UnOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum UnKind {
    Eqz,
    Clz,
    Ctz,
    Popcnt,
    Extend8S,
    Extend16S,
    Extend32S,
    Abs,
    Neg,
    Sqrt,
    Ceil,
    Floor,
    Trunc,
    Nearest,
    Wrap,
    ExtendS,
    ExtendU,
    TruncS,
    TruncU,
    TruncSatS,
    TruncSatU,
    ConvertS,
    ConvertU,
    Demote,
    Promote,
    Reinterpret,
}

/// The type-independent meaning of a [`BinOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinKind {
    Add,
    Sub,
    Mul,
    DivS,
    DivU,
    RemS,
    RemU,
    And,
    Or,
    Xor,
    Shl,
    ShrS,
    ShrU,
    Rotl,
    Rotr,
    Eq,
    Ne,
    LtS,
    LtU,
    GtS,
    GtU,
    LeS,
    LeU,
    GeS,
    GeU,
    FDiv,
    Min,
    Max,
    Copysign,
    FLt,
    FGt,
    FLe,
    FGe,
}

unops! {
    I32Eqz = "i32.eqz", I32 -> I32, Eqz;
    I32Clz = "i32.clz", I32 -> I32, Clz;
    I32Ctz = "i32.ctz", I32 -> I32, Ctz;
    I32Popcnt = "i32.popcnt", I32 -> I32, Popcnt;
    I32Extend8S = "i32.extend8_s", I32 -> I32, Extend8S;
    I32Extend16S = "i32.extend16_s", I32 -> I32, Extend16S;
    I64Eqz = "i64.eqz", I64 -> I32, Eqz;
    I64Clz = "i64.clz", I64 -> I64, Clz;
    I64Ctz = "i64.ctz", I64 -> I64, Ctz;
    I64Popcnt = "i64.popcnt", I64 -> I64, Popcnt;
    I64Extend8S = "i64.extend8_s", I64 -> I64, Extend8S;
    I64Extend16S = "i64.extend16_s", I64 -> I64, Extend16S;
    I64Extend32S = "i64.extend32_s", I64 -> I64, Extend32S;
    F32Abs = "f32.abs", F32 -> F32, Abs;
    F32Neg = "f32.neg", F32 -> F32, Neg;
    F32Sqrt = "f32.sqrt", F32 -> F32, Sqrt;
    F32Ceil = "f32.ceil", F32 -> F32, Ceil;
    F32Floor = "f32.floor", F32 -> F32, Floor;
    F32Trunc = "f32.trunc", F32 -> F32, Trunc;
    F32Nearest = "f32.nearest", F32 -> F32, Nearest;
    F64Abs = "f64.abs", F64 -> F64, Abs;
    F64Neg = "f64.neg", F64 -> F64, Neg;
    F64Sqrt = "f64.sqrt", F64 -> F64, Sqrt;
    F64Ceil = "f64.ceil", F64 -> F64, Ceil;
    F64Floor = "f64.floor", F64 -> F64, Floor;
    F64Trunc = "f64.trunc", F64 -> F64, Trunc;
    F64Nearest = "f64.nearest", F64 -> F64, Nearest;
    I32WrapI64 = "i32.wrap_i64", I64 -> I32, Wrap;
    I64ExtendI32S = "i64.extend_i32_s", I32 -> I64, ExtendS;
    I64ExtendI32U = "i64.extend_i32_u", I32 -> I64, ExtendU;
    I32TruncF32S = "i32.trunc_f32_s", F32 -> I32, TruncS;
    I32TruncF32U = "i32.trunc_f32_u", F32 -> I32, TruncU;
    I32TruncF64S = "i32.trunc_f64_s", F64 -> I32, TruncS;
    I32TruncF64U = "i32.trunc_f64_u", F64 -> I32, TruncU;
    I64TruncF32S = "i64.trunc_f32_s", F32 -> I64, TruncS;
    I64TruncF32U = "i64.trunc_f32_u", F32 -> I64, TruncU;
    I64TruncF64S = "i64.trunc_f64_s", F64 -> I64, TruncS;
    I64TruncF64U = "i64.trunc_f64_u", F64 -> I64, TruncU;
    I32TruncSatF32S = "i32.trunc_sat_f32_s", F32 -> I32, TruncSatS;
    I32TruncSatF32U = "i32.trunc_sat_f32_u", F32 -> I32, TruncSatU;
    I32TruncSatF64S = "i32.trunc_sat_f64_s", F64 -> I32, TruncSatS;
    I32TruncSatF64U = "i32.trunc_sat_f64_u", F64 -> I32, TruncSatU;
    I64TruncSatF32S = "i64.trunc_sat_f32_s", F32 -> I64, TruncSatS;
    I64TruncSatF32U = "i64.trunc_sat_f32_u", F32 -> I64, TruncSatU;
    I64TruncSatF64S = "i64.trunc_sat_f64_s", F64 -> I64, TruncSatS;
    I64TruncSatF64U = "i64.trunc_sat_f64_u", F64 -> I64, TruncSatU;
    F32ConvertI32S = "f32.convert_i32_s", I32 -> F32, ConvertS;
    F32ConvertI32U = "f32.convert_i32_u", I32 -> F32, ConvertU;
    F32ConvertI64S = "f32.convert_i64_s", I64 -> F32, ConvertS;
    F32ConvertI64U = "f32.convert_i64_u", I64 -> F32, ConvertU;
    F64ConvertI32S = "f64.convert_i32_s", I32 -> F64, ConvertS;
    F64ConvertI32U = "f64.convert_i32_u", I32 -> F64, ConvertU;
    F64ConvertI64S = "f64.convert_i64_s", I64 -> F64, ConvertS;
    F64ConvertI64U = "f64.convert_i64_u", I64 -> F64, ConvertU;
    F32DemoteF64 = "f32.demote_f64", F64 -> F32, Demote;
    F64PromoteF32 = "f64.promote_f32", F32 -> F64, Promote;
    I32ReinterpretF32 = "i32.reinterpret_f32", F32 -> I32, Reinterpret;
    I64ReinterpretF64 = "i64.reinterpret_f64", F64 -> I64, Reinterpret;
    F32ReinterpretI32 = "f32.reinterpret_i32", I32 -> F32, Reinterpret;
    F64ReinterpretI64 = "f64.reinterpret_i64", I64 -> F64, Reinterpret;
}

binops! {
    I32Add = "i32.add", I32, Add;
    I32Sub = "i32.sub", I32, Sub;
    I32Mul = "i32.mul", I32, Mul;
    I32DivS = "i32.div_s", I32, DivS;
    I32DivU = "i32.div_u", I32, DivU;
    I32RemS = "i32.rem_s", I32, RemS;
    I32RemU = "i32.rem_u", I32, RemU;
    I32And = "i32.and", I32, And;
    I32Or = "i32.or", I32, Or;
    I32Xor = "i32.xor", I32, Xor;
    I32Shl = "i32.shl", I32, Shl;
    I32ShrS = "i32.shr_s", I32, ShrS;
    I32ShrU = "i32.shr_u", I32, ShrU;
    I32Rotl = "i32.rotl", I32, Rotl;
    I32Rotr = "i32.rotr", I32, Rotr;
    I32Eq = "i32.eq", I32, Eq;
    I32Ne = "i32.ne", I32, Ne;
    I32LtS = "i32.lt_s", I32, LtS;
    I32LtU = "i32.lt_u", I32, LtU;
    I32GtS = "i32.gt_s", I32, GtS;
    I32GtU = "i32.gt_u", I32, GtU;
    I32LeS = "i32.le_s", I32, LeS;
    I32LeU = "i32.le_u", I32, LeU;
    I32GeS = "i32.ge_s", I32, GeS;
    I32GeU = "i32.ge_u", I32, GeU;
    I64Add = "i64.add", I64, Add;
    I64Sub = "i64.sub", I64, Sub;
    I64Mul = "i64.mul", I64, Mul;
    I64DivS = "i64.div_s", I64, DivS;
    I64DivU = "i64.div_u", I64, DivU;
    I64RemS = "i64.rem_s", I64, RemS;
    I64RemU = "i64.rem_u", I64, RemU;
    I64And = "i64.and", I64, And;
    I64Or = "i64.or", I64, Or;
    I64Xor = "i64.xor", I64, Xor;
    I64Shl = "i64.shl", I64, Shl;
    I64ShrS = "i64.shr_s", I64, ShrS;
    I64ShrU = "i64.shr_u", I64, ShrU;
    I64Rotl = "i64.rotl", I64, Rotl;
    I64Rotr = "i64.rotr", I64, Rotr;
    I64Eq = "i64.eq", I64, Eq;
    I64Ne = "i64.ne", I64, Ne;
    I64LtS = "i64.lt_s", I64, LtS;
    I64LtU = "i64.lt_u", I64, LtU;
    I64GtS = "i64.gt_s", I64, GtS;
    I64GtU = "i64.gt_u", I64, GtU;
    I64LeS = "i64.le_s", I64, LeS;
    I64LeU = "i64.le_u", I64, LeU;
    I64GeS = "i64.ge_s", I64, GeS;
    I64GeU = "i64.ge_u", I64, GeU;
    F32Add = "f32.add", F32, Add;
    F32Sub = "f32.sub", F32, Sub;
    F32Mul = "f32.mul", F32, Mul;
    F32Div = "f32.div", F32, FDiv;
    F32Min = "f32.min", F32, Min;
    F32Max = "f32.max", F32, Max;
    F32Copysign = "f32.copysign", F32, Copysign;
    F32Eq = "f32.eq", F32, Eq;
    F32Ne = "f32.ne", F32, Ne;
    F32Lt = "f32.lt", F32, FLt;
    F32Gt = "f32.gt", F32, FGt;
    F32Le = "f32.le", F32, FLe;
    F32Ge = "f32.ge", F32, FGe;
    F64Add = "f64.add", F64, Add;
    F64Sub = "f64.sub", F64, Sub;
    F64Mul = "f64.mul", F64, Mul;
    F64Div = "f64.div", F64, FDiv;
    F64Min = "f64.min", F64, Min;
    F64Max = "f64.max", F64, Max;
    F64Copysign = "f64.copysign", F64, Copysign;
    F64Eq = "f64.eq", F64, Eq;
    F64Ne = "f64.ne", F64, Ne;
    F64Lt = "f64.lt", F64, FLt;
    F64Gt = "f64.gt", F64, FGt;
    F64Le = "f64.le", F64, FLe;
    F64Ge = "f64.ge", F64, FGe;
}

memops! {
    LoadOp, "A Wasm load: value type, width and extension.",
    I32Load = "i32.load", I32, 4, false;
    I64Load = "i64.load", I64, 8, false;
    F32Load = "f32.load", F32, 4, false;
    F64Load = "f64.load", F64, 8, false;
    I32Load8S = "i32.load8_s", I32, 1, true;
    I32Load8U = "i32.load8_u", I32, 1, false;
    I32Load16S = "i32.load16_s", I32, 2, true;
    I32Load16U = "i32.load16_u", I32, 2, false;
    I64Load8S = "i64.load8_s", I64, 1, true;
    I64Load8U = "i64.load8_u", I64, 1, false;
    I64Load16S = "i64.load16_s", I64, 2, true;
    I64Load16U = "i64.load16_u", I64, 2, false;
    I64Load32S = "i64.load32_s", I64, 4, true;
    I64Load32U = "i64.load32_u", I64, 4, false;
}

memops! {
    StoreOp, "A Wasm store: value type and width (narrow stores keep the low bytes).",
    I32Store = "i32.store", I32, 4, false;
    I64Store = "i64.store", I64, 8, false;
    F32Store = "f32.store", F32, 4, false;
    F64Store = "f64.store", F64, 8, false;
    I32Store8 = "i32.store8", I32, 1, false;
    I32Store16 = "i32.store16", I32, 2, false;
    I64Store8 = "i64.store8", I64, 1, false;
    I64Store16 = "i64.store16", I64, 2, false;
    I64Store32 = "i64.store32", I64, 4, false;
}

impl UnOp {
    /// Whether the operator traps on some inputs (the trapping float→int truncations).
    pub fn can_trap(self) -> bool {
        matches!(self.kind(), UnKind::TruncS | UnKind::TruncU)
    }
}

impl BinOp {
    /// The result type: `i32` for comparisons, the operand type otherwise.
    pub fn result(self) -> ValType {
        if self.is_comparison() {
            I32
        } else {
            self.operand()
        }
    }

    /// Whether the operator is a comparison producing an `i32` 0 or 1.
    pub fn is_comparison(self) -> bool {
        use BinKind::*;
        matches!(
            self.kind(),
            Eq | Ne | LtS | LtU | GtS | GtU | LeS | LeU | GeS | GeU | FLt | FGt | FLe | FGe
        )
    }

    /// Whether the operator traps on some inputs (integer division and remainder).
    pub fn can_trap(self) -> bool {
        use BinKind::*;
        matches!(self.kind(), DivS | DivU | RemS | RemU)
    }
}
