//! A plan: how a Wasm reference function's arguments map to a kernel's launch.
//!
//! Each parameter of the function is a *size* (an integer drawn from a range), a *buffer* (an
//! `i32` Wasm address of `len` elements of one type, placed by the harness inside linear memory)
//! or a *scalar* (a value drawn from biased edge cases). The kernel's parameters are filled from
//! those, in the kernel's order, and grid and block are expressions of the sizes.
//!
//! [`Plan::new`] checks everything that does not need the PTX or the reference: unique names,
//! types, ranges and that every expression names sizes only. Errors name the field at fault
//! (`param[2].len`, `kernel.args[0]`) and never end with a period.

use serde::Serialize;

use super::expr::SizeExpr;

/// A Wasm value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum WasmType {
    I32,
    I64,
    F32,
    F64,
}

impl WasmType {
    /// Parses `i32`, `i64`, `f32`, `f64`.
    pub fn from_name(s: &str) -> Option<WasmType> {
        Some(match s {
            "i32" => WasmType::I32,
            "i64" => WasmType::I64,
            "f32" => WasmType::F32,
            "f64" => WasmType::F64,
            _ => return None,
        })
    }

    /// The Wasm spelling.
    pub fn name(self) -> &'static str {
        match self {
            WasmType::I32 => "i32",
            WasmType::I64 => "i64",
            WasmType::F32 => "f32",
            WasmType::F64 => "f64",
        }
    }

    fn is_int(self) -> bool {
        matches!(self, WasmType::I32 | WasmType::I64)
    }
}

/// The element type of a buffer: how its bytes are generated, compared and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum ElemType {
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
}

impl ElemType {
    /// Parses `i8 i16 i32 i64 f32 f64` (`u8`..`u64` are accepted as the same widths).
    pub fn from_name(s: &str) -> Option<ElemType> {
        Some(match s {
            "i8" | "u8" => ElemType::I8,
            "i16" | "u16" => ElemType::I16,
            "i32" | "u32" => ElemType::I32,
            "i64" | "u64" => ElemType::I64,
            "f32" => ElemType::F32,
            "f64" => ElemType::F64,
            _ => return None,
        })
    }

    /// The spelling.
    pub fn name(self) -> &'static str {
        match self {
            ElemType::I8 => "i8",
            ElemType::I16 => "i16",
            ElemType::I32 => "i32",
            ElemType::I64 => "i64",
            ElemType::F32 => "f32",
            ElemType::F64 => "f64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElemType::I8 => 1,
            ElemType::I16 => 2,
            ElemType::I32 | ElemType::F32 => 4,
            ElemType::I64 | ElemType::F64 => 8,
        }
    }

    /// `f32` or `f64`: lanes where both sides hold a NaN compare equal.
    pub fn is_float(self) -> bool {
        matches!(self, ElemType::F32 | ElemType::F64)
    }
}

/// What one parameter of the reference function is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamKind {
    /// An integer drawn from `min..=max`, biased to the ends and to small values.
    Size {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// The Wasm address of a buffer of `len` elements of `elem` that the harness places in
    /// linear memory (at a multiple of `align` bytes, no overlap with other buffers).
    Buffer {
        /// Element type.
        elem: ElemType,
        /// Number of elements, in terms of the sizes.
        len: SizeExpr,
        /// Placement alignment in bytes (a power of two, at least the element size).
        align: u32,
    },
    /// A value drawn from edge cases of its type (NaN, ±0, ±inf, subnormals, extremes).
    Scalar,
}

/// One parameter of the reference function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanParam {
    /// Its name in the plan (used in expressions and kernel arguments).
    pub name: String,
    /// Its Wasm type.
    pub ty: WasmType,
    /// What it is.
    pub kind: ParamKind,
}

/// How a buffer's device address is passed to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    /// The device address of the buffer's first byte (the kernel indexes from 0).
    Start,
    /// The device address minus the buffer's Wasm address (wrapping), so the kernel indexes the
    /// buffer with Wasm addresses: KernelIR's pointer bias (`docs/OFFLOAD.md`).
    Wasm,
}

/// Where one kernel parameter's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelArg {
    /// The value of a size or scalar parameter, as is (bits of floats kept).
    Param(String),
    /// A buffer's device address.
    Buffer {
        /// The buffer parameter.
        name: String,
        /// How the address is formed.
        addressing: Addressing,
    },
    /// An integer expression of the sizes.
    Expr(SizeExpr),
    /// A zeroed `u32` flag the kernel sets to non-zero when it would trap.
    TrapFlag,
}

/// A checked plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    params: Vec<PlanParam>,
    kernel_args: Vec<KernelArg>,
    grid: [SizeExpr; 3],
    block: [SizeExpr; 3],
    arena: Option<u64>,
}

impl Plan {
    /// Checks and builds a plan. `arena`, if set, limits buffer placement to Wasm addresses
    /// `[0, arena)`; otherwise buffers go anywhere in the reference's memory.
    pub fn new(
        params: Vec<PlanParam>,
        kernel_args: Vec<KernelArg>,
        grid: [SizeExpr; 3],
        block: [SizeExpr; 3],
        arena: Option<u64>,
    ) -> Result<Plan, String> {
        let plan = Plan {
            params,
            kernel_args,
            grid,
            block,
            arena,
        };
        plan.check()?;
        Ok(plan)
    }

    /// The function's parameters, in order.
    pub fn params(&self) -> &[PlanParam] {
        &self.params
    }

    /// The kernel's arguments, in order.
    pub fn kernel_args(&self) -> &[KernelArg] {
        &self.kernel_args
    }

    /// Blocks per grid dimension.
    pub fn grid(&self) -> &[SizeExpr; 3] {
        &self.grid
    }

    /// Threads per block dimension.
    pub fn block(&self) -> &[SizeExpr; 3] {
        &self.block
    }

    /// The placement limit, if any.
    pub fn arena(&self) -> Option<u64> {
        self.arena
    }

    pub(crate) fn param(&self, name: &str) -> Option<(usize, &PlanParam)> {
        self.params.iter().enumerate().find(|(_, p)| p.name == name)
    }

    fn check(&self) -> Result<(), String> {
        let sizes: Vec<&str> = self
            .params
            .iter()
            .filter(|p| matches!(p.kind, ParamKind::Size { .. }))
            .map(|p| p.name.as_str())
            .collect();
        let check_expr = |field: String, e: &SizeExpr| -> Result<(), String> {
            match e.names().into_iter().find(|n| !sizes.contains(n)) {
                Some(n) if self.param(n).is_some() => Err(format!(
                    "{field}: `{n}` in `{e}` is not a size parameter (only sizes may appear in \
                     expressions)"
                )),
                Some(n) => Err(format!("{field}: unknown size `{n}` in `{e}`")),
                None => Ok(()),
            }
        };
        for (i, p) in self.params.iter().enumerate() {
            let field = format!("param[{i}]");
            if !is_ident(&p.name) {
                return Err(format!("{field}.name: `{}` is not a name", p.name));
            }
            if ["trap_flag", "min", "max", "cdiv"].contains(&p.name.as_str()) {
                return Err(format!("{field}.name: `{}` is reserved", p.name));
            }
            if self.params[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("{field}.name: duplicate name `{}`", p.name));
            }
            match &p.kind {
                ParamKind::Size { min, max } => {
                    if !p.ty.is_int() {
                        return Err(format!(
                            "{field}.type: a size must be i32 or i64, not {}",
                            p.ty.name()
                        ));
                    }
                    if min > max {
                        return Err(format!("{field}: min {min} is greater than max {max}"));
                    }
                    let (lo, hi) = match p.ty {
                        WasmType::I32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
                        _ => (i64::MIN, i64::MAX),
                    };
                    if *min < lo || *max > hi {
                        return Err(format!(
                            "{field}: range {min}..={max} does not fit {}",
                            p.ty.name()
                        ));
                    }
                }
                ParamKind::Buffer { elem, len, align } => {
                    if p.ty != WasmType::I32 {
                        return Err(format!(
                            "{field}.type: a buffer is an i32 Wasm address, not {}",
                            p.ty.name()
                        ));
                    }
                    check_expr(format!("{field}.len"), len)?;
                    if !align.is_power_of_two() || (*align as usize) < elem.size() {
                        return Err(format!(
                            "{field}.align: {align} is not a power of two of at least the \
                             element size {}",
                            elem.size()
                        ));
                    }
                }
                ParamKind::Scalar => {}
            }
        }
        for (i, a) in self.kernel_args.iter().enumerate() {
            let field = format!("kernel.args[{i}]");
            match a {
                KernelArg::Param(n) => match self.param(n) {
                    None => return Err(format!("{field}: unknown parameter `{n}`")),
                    Some((_, p)) if matches!(p.kind, ParamKind::Buffer { .. }) => {
                        return Err(format!(
                            "{field}: `{n}` is a buffer; pass it as a buffer address"
                        ));
                    }
                    Some(_) => {}
                },
                KernelArg::Buffer { name, .. } => match self.param(name) {
                    Some((_, p)) if matches!(p.kind, ParamKind::Buffer { .. }) => {}
                    Some(_) => return Err(format!("{field}: `{name}` is not a buffer")),
                    None => return Err(format!("{field}: unknown buffer `{name}`")),
                },
                KernelArg::Expr(e) => check_expr(field, e)?,
                KernelArg::TrapFlag => {}
            }
        }
        if self
            .kernel_args
            .iter()
            .filter(|a| **a == KernelArg::TrapFlag)
            .count()
            > 1
        {
            return Err("kernel.args: more than one trap_flag".into());
        }
        for (d, e) in self.grid.iter().enumerate() {
            check_expr(format!("kernel.grid[{d}]"), e)?;
        }
        for (d, e) in self.block.iter().enumerate() {
            check_expr(format!("kernel.block[{d}]"), e)?;
        }
        Ok(())
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
