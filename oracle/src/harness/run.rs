//! One case, both sides: the reference on a memory image, the kernel on device copies of the
//! buffers (copied back unless the trap flag is raised), and the comparison.
//!
//! Comparison policy (docs/ORACLE.md): the whole memory image must be byte-identical, except
//! that an `f32`/`f64` lane of a float buffer where both sides hold a NaN (any payload, any
//! sign) is equal. There is no other tolerance.

use crate::backend::{Backend, Launch, ParamValue};
use crate::compare::{FloatLanes, differences, hex};
use crate::memory::{BufferId, DeviceMemory};
use crate::ptx::ScalarType;

use super::HarnessError;
use super::inputs::{ArgInput, Case, buffer_lens, describe_sizes};
use super::plan::{Addressing, ElemType, KernelArg, ParamKind, Plan};
use super::reference::{Outcome, Reference, WasmValue};
use super::report::{Failure, Mismatch};

/// What a case did when it passed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Passed {
    pub(crate) trapped: bool,
    pub(crate) launched: bool,
    pub(crate) instructions: u64,
}

/// Runs cases of one plan against one reference and one kernel.
pub(crate) struct Runner<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) ptx: &'a str,
    pub(crate) entry: &'a str,
    pub(crate) param_types: Vec<(String, ScalarType)>,
    pub(crate) memory_size: usize,
    pub(crate) reference: &'a mut dyn Reference,
    pub(crate) backend: &'a mut dyn Backend,
}

impl Runner<'_> {
    /// Checks that every kernel argument can fill its PTX parameter.
    pub(crate) fn check_args(&self) -> Result<(), HarnessError> {
        let args = self.plan.kernel_args();
        if args.len() != self.param_types.len() {
            return Err(HarnessError::Plan(format!(
                "kernel.args: {} arguments, but entry `{}` takes {} parameters",
                args.len(),
                self.entry,
                self.param_types.len()
            )));
        }
        for (i, (a, (pname, ty))) in args.iter().zip(&self.param_types).enumerate() {
            let int64 = ty.is_int() && ty.bits() == 64;
            let int = ty.is_int() && (ty.bits() == 32 || ty.bits() == 64);
            let ok = match a {
                KernelArg::Buffer { .. } | KernelArg::TrapFlag => int64,
                KernelArg::Expr(_) => int,
                KernelArg::Param(n) => match self.plan.param(n) {
                    Some((_, p)) => match (&p.kind, p.ty) {
                        (ParamKind::Size { .. }, _) => int,
                        (_, super::WasmType::I32) => ty.is_int() && ty.bits() == 32,
                        (_, super::WasmType::I64) => int64,
                        (_, super::WasmType::F32) => {
                            matches!(ty, ScalarType::F32 | ScalarType::B32)
                        }
                        (_, super::WasmType::F64) => {
                            matches!(ty, ScalarType::F64 | ScalarType::B64)
                        }
                    },
                    None => false,
                },
            };
            if !ok {
                return Err(HarnessError::Plan(format!(
                    "kernel.args[{i}]: {} cannot fill PTX parameter `{pname}` of type {ty}",
                    describe_arg(a)
                )));
            }
        }
        Ok(())
    }

    /// Runs one case. `Ok(Err(failure))` is a counterexample; `Err` is the harness's failure.
    pub(crate) fn run(&mut self, case: &Case) -> Result<Result<Passed, Failure>, HarnessError> {
        let plan = self.plan;
        buffer_lens(plan, case).map_err(HarnessError::Plan)?;
        let image = case.image(plan, self.memory_size);
        let mut expected = image.clone();
        let cpu = self
            .reference
            .run(&mut expected, &case.wasm_args(plan))
            .map_err(HarnessError::Reference)?;
        let mut actual = image;
        let ran = self.run_kernel(case, &mut actual)?;
        Ok(match (ran, cpu) {
            (Kernel::Fault(error), cpu) => Err(Failure::KernelFault {
                error,
                cpu: match cpu {
                    Outcome::Returned => "returned normally".into(),
                    Outcome::Trapped(t) => format!("trapped: {t}"),
                },
            }),
            (Kernel::Trapped(instructions), Outcome::Trapped(_)) => Ok(Passed {
                trapped: true,
                launched: true,
                instructions,
            }),
            (Kernel::Trapped(_), Outcome::Returned) => Err(Failure::SpuriousTrap),
            (Kernel::Done { .. }, Outcome::Trapped(cpu_trap)) => {
                Err(Failure::MissingTrap { cpu_trap })
            }
            (
                Kernel::Done {
                    launched,
                    instructions,
                },
                Outcome::Returned,
            ) => match compare(plan, case, &expected, &actual) {
                Some(m) => Err(Failure::Mismatch(Box::new(m))),
                None => Ok(Passed {
                    trapped: false,
                    launched,
                    instructions,
                }),
            },
        })
    }

    fn run_kernel(&mut self, case: &Case, memory: &mut [u8]) -> Result<Kernel, HarnessError> {
        let plan = self.plan;
        let eval_dims =
            |dims: &[super::SizeExpr; 3], what: &str| -> Result<[u32; 3], HarnessError> {
                let mut out = [0u32; 3];
                for (d, e) in dims.iter().enumerate() {
                    let v = case
                        .eval(plan, e)
                        .map_err(|err| HarnessError::Plan(format!("kernel.{what}[{d}] {err}")))?;
                    out[d] = u32::try_from(v).map_err(|_| {
                        HarnessError::Plan(format!(
                            "kernel.{what}[{d}] `{e}` is {v} for {}, outside 0..2^32",
                            describe_sizes(plan, case)
                        ))
                    })?;
                }
                Ok(out)
            };
        let grid = eval_dims(plan.grid(), "grid")?;
        let block = eval_dims(plan.block(), "block")?;
        if grid.contains(&0) {
            return Ok(Kernel::Done {
                launched: false,
                instructions: 0,
            });
        }
        let mut mem = DeviceMemory::new();
        let mut buffers: Vec<(BufferId, usize, usize)> = Vec::new();
        let mut ids: Vec<Option<(BufferId, u64)>> = vec![None; plan.params().len()];
        for (i, (p, a)) in plan.params().iter().zip(&case.args).enumerate() {
            if let (ParamKind::Buffer { elem, .. }, ArgInput::Buffer { addr, lanes }) = (&p.kind, a)
            {
                let start = *addr as usize;
                let end = start + lanes.len() * elem.size();
                let id = mem.alloc(memory[start..end].to_vec());
                buffers.push((id, start, end));
                ids[i] = Some((id, *addr));
            }
        }
        let trap = plan
            .kernel_args()
            .contains(&KernelArg::TrapFlag)
            .then(|| mem.alloc_zeroed(4));
        let mut params = Vec::new();
        for (i, (a, (_, ty))) in plan.kernel_args().iter().zip(&self.param_types).enumerate() {
            params.push(self.param_value(case, i, a, *ty, &ids, trap)?);
        }
        let launch = Launch {
            grid,
            block,
            params,
        };
        let stats = match self.backend.launch(self.ptx, self.entry, &launch, &mut mem) {
            Ok(stats) => stats,
            Err(e @ (crate::Error::Fault { .. } | crate::Error::DivergentBarrier { .. })) => {
                return Ok(Kernel::Fault(e.to_string()));
            }
            Err(e) => return Err(HarnessError::Kernel(e)),
        };
        if let Some(flag) = trap {
            let bytes = mem.read(flag).map_err(HarnessError::Kernel)?;
            if bytes.iter().any(|b| *b != 0) {
                return Ok(Kernel::Trapped(stats.instructions));
            }
        }
        for (id, start, end) in buffers {
            memory[start..end].copy_from_slice(mem.read(id).map_err(HarnessError::Kernel)?);
        }
        Ok(Kernel::Done {
            launched: true,
            instructions: stats.instructions,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn param_value(
        &self,
        case: &Case,
        i: usize,
        arg: &KernelArg,
        ty: ScalarType,
        ids: &[Option<(BufferId, u64)>],
        trap: Option<BufferId>,
    ) -> Result<ParamValue, HarnessError> {
        let plan = self.plan;
        let int = |v: i64| -> Result<ParamValue, HarnessError> {
            if ty.bits() == 64 {
                return Ok(ParamValue::S64(v));
            }
            if v >= i64::from(i32::MIN) && v <= i64::from(u32::MAX) {
                return Ok(ParamValue::U32(v as u32));
            }
            Err(HarnessError::Plan(format!(
                "kernel.args[{i}] is {v} for {}, which does not fit {ty}",
                describe_sizes(plan, case)
            )))
        };
        let missing = || HarnessError::Plan(format!("kernel.args[{i}]: no such parameter"));
        match arg {
            KernelArg::TrapFlag => trap.map(ParamValue::Ptr).ok_or_else(missing),
            KernelArg::Buffer { name, addressing } => {
                let (pi, _) = plan.param(name).ok_or_else(missing)?;
                let (id, wasm_addr) = ids[pi].ok_or_else(missing)?;
                Ok(match addressing {
                    Addressing::Start => ParamValue::Ptr(id),
                    Addressing::Wasm => {
                        ParamValue::PtrOffset(id, (wasm_addr as i64).wrapping_neg())
                    }
                })
            }
            KernelArg::Expr(e) => int(case
                .eval(plan, e)
                .map_err(|err| HarnessError::Plan(format!("kernel.args[{i}] {err}")))?),
            KernelArg::Param(n) => {
                let (pi, _) = plan.param(n).ok_or_else(missing)?;
                match case.args.get(pi).ok_or_else(missing)? {
                    ArgInput::Size(v) => int(*v),
                    ArgInput::Scalar(v) => Ok(match *v {
                        WasmValue::I32(x) => ParamValue::S32(x),
                        WasmValue::I64(x) => ParamValue::S64(x),
                        WasmValue::F32(b) => ParamValue::F32(f32::from_bits(b)),
                        WasmValue::F64(b) => ParamValue::F64(f64::from_bits(b)),
                    }),
                    ArgInput::Buffer { .. } => Err(missing()),
                }
            }
        }
    }
}

enum Kernel {
    Done { launched: bool, instructions: u64 },
    Trapped(u64),
    Fault(String),
}

fn describe_arg(a: &KernelArg) -> String {
    match a {
        KernelArg::Param(n) => format!("parameter `{n}`"),
        KernelArg::Buffer { name, .. } => format!("the address of buffer `{name}`"),
        KernelArg::Expr(e) => format!("the integer `{e}`"),
        KernelArg::TrapFlag => "the trap flag's address".into(),
    }
}

/// The first differing lane in address order, and how many differ. The decision is
/// [`crate::compare`]'s, with the float buffers' elements as the float lanes; this only names
/// each difference by its buffer and element.
pub(crate) fn compare(
    plan: &Plan,
    case: &Case,
    expected: &[u8],
    actual: &[u8],
) -> Option<Mismatch> {
    if expected == actual {
        return None;
    }
    let mut regions: Vec<(u64, usize, ElemType, &str)> = plan
        .params()
        .iter()
        .zip(&case.args)
        .filter_map(|(p, a)| match (&p.kind, a) {
            (ParamKind::Buffer { elem, .. }, ArgInput::Buffer { addr, lanes })
                if !lanes.is_empty() =>
            {
                Some((*addr, lanes.len(), *elem, p.name.as_str()))
            }
            _ => None,
        })
        .collect();
    regions.sort_by_key(|r| r.0);
    let mut floats = FloatLanes::none();
    for &(addr, len, elem, _) in &regions {
        if elem.is_float() {
            for k in 0..len {
                floats.add(addr as usize + k * elem.size(), elem.size() as u32);
            }
        }
    }
    floats.seal();
    // Each difference named by the buffer element it falls in (a loose byte outside every
    // buffer by its address); one element with several differing bytes counts once.
    let mut first: Option<Mismatch> = None;
    let mut count = 0u64;
    let mut last: Option<(usize, usize)> = None;
    for d in differences(expected, actual, &floats) {
        let region = regions.iter().find(|(addr, len, elem, _)| {
            let start = *addr as usize;
            d.at >= start && d.at < start + len * elem.size()
        });
        let (unit, m) = match region {
            Some(&(addr, _, elem, name)) => {
                let size = elem.size();
                let k = (d.at - addr as usize) / size;
                let at = addr as usize + k * size;
                let end = (at + size).min(expected.len()).min(actual.len());
                (
                    (at, size),
                    (format!("{name}[{k}]"), at, Some(elem), at..end),
                )
            }
            None => {
                let end = (d.at + 1).min(expected.len()).min(actual.len());
                (
                    (d.at, 1),
                    (format!("memory[{:#x}]", d.at), d.at, None, d.at..end),
                )
            }
        };
        if last == Some(unit) {
            continue;
        }
        last = Some(unit);
        count += 1;
        if first.is_none() {
            let (location, at, elem, range) = m;
            let (e, a) = (
                expected.get(range.clone()).unwrap_or_default(),
                actual.get(range).unwrap_or_default(),
            );
            first = Some(mismatch(location, at, elem, e, a));
        }
    }
    first.map(|mut m| {
        m.differing_lanes = count;
        m
    })
}

fn le_bits(b: &[u8]) -> u64 {
    b.iter()
        .rev()
        .fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
}

/// Prints a lane of `elem` given by its bits.
pub(crate) fn show_lane(elem: Option<ElemType>, bits: u64) -> String {
    match elem {
        Some(ElemType::F32) => format!("{:?} (0x{bits:08x})", f32::from_bits(bits as u32)),
        Some(ElemType::F64) => format!("{:?} (0x{bits:016x})", f64::from_bits(bits)),
        Some(ElemType::I8) => (bits as u8 as i8).to_string(),
        Some(ElemType::I16) => (bits as u16 as i16).to_string(),
        Some(ElemType::I32) => (bits as u32 as i32).to_string(),
        Some(ElemType::I64) => (bits as i64).to_string(),
        None => format!("0x{bits:02x}"),
    }
}

fn mismatch(location: String, addr: usize, elem: Option<ElemType>, e: &[u8], a: &[u8]) -> Mismatch {
    Mismatch {
        location,
        addr: addr as u64,
        elem: elem.map_or("u8", ElemType::name),
        expected: show_lane(elem, le_bits(e)),
        actual: show_lane(elem, le_bits(a)),
        expected_bytes: hex(e),
        actual_bytes: hex(a),
        differing_lanes: 0,
    }
}
