//! End-to-end check of detection, lowering, the PTX emitter and the PTX interpreter against
//! Wasmtime, on the bare C samples: the kernel run on the memory the CPU had when it reached the
//! loop nest must leave memory exactly as the CPU loop leaves it, and every live-out's closed form
//! must give the value the CPU computed.
//!
//! How the CPU state at the nest's entry and exit is observed: two copies of the module, each
//! with a probe spliced into the function's bytes — before the nest's `loop` opcode, and before
//! the first instruction after the nest — that stores every local into a scratch page and hits
//! `unreachable`. Running a copy up to its probe gives the memory and locals at that point.
//!
//! This is a fixed-input smoke test of the whole path, not the randomized oracle (issue 5).

use std::path::Path;

#[path = "common/cases.rs"]
mod cases;
use cases::{cases, fill};

use tensorwasm_analysis::ir::{Block, FunctionIr, ValType as WasmTy};
use tensorwasm_analysis::poly::Sym;
use tensorwasm_analysis::{NestVerdict, Verdict, analyze, translate};
use tensorwasm_blueprints::kernel_ir::{ParamKind, ValType};
use tensorwasm_blueprints::{EmitOptions, LaunchPlan, Target, emit_ptx};
use tensorwasm_offload::lower::{ParamSource, lower};
use tensorwasm_oracle::record::LaunchRecord;
use tensorwasm_oracle::{Backend, DeviceMemory, Interpreter, Launch, ParamValue};
use wasm_encoder::{Encode, Instruction, MemArg};
use wasmtime::{Engine, Instance, Module, Store, Val};

const PAGES: u64 = 16;
const SCRATCH: u32 = (PAGES as u32 - 1) * 65536;

/// `wasm` with `probe` spliced in before the operator at byte offset `at` of defined function
/// `defined` (index among defined functions).
fn splice(wasm: &[u8], defined: usize, at: u32, probe: &[u8]) -> Vec<u8> {
    let mut module = wasm_encoder::Module::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.expect("valid sample");
        if let wasmparser::Payload::CodeSectionStart { range, .. } = &payload {
            let reader = wasmparser::CodeSectionReader::new(wasmparser::BinaryReader::new(
                &wasm[range.clone()],
                range.start,
            ))
            .expect("code section");
            let mut code = wasm_encoder::CodeSection::new();
            for (i, body) in reader.into_iter().enumerate() {
                let r = body.expect("body").range();
                let bytes = &wasm[r.clone()];
                if i == defined {
                    let cut = at as usize - r.start;
                    let mut new = bytes[..cut].to_vec();
                    new.extend_from_slice(probe);
                    new.extend_from_slice(&bytes[cut..]);
                    code.raw(&new);
                } else {
                    code.raw(bytes);
                }
            }
            module.section(&code);
            continue;
        }
        if matches!(payload, wasmparser::Payload::CodeSectionEntry(_)) {
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            module.section(&wasm_encoder::RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    module.finish()
}

/// Stores every local at `SCRATCH + 8*i`, then traps.
fn probe(func: &FunctionIr) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, t) in func.locals.iter().enumerate() {
        let mem = MemArg {
            offset: 0,
            align: 0,
            memory_index: 0,
        };
        Instruction::I32Const((SCRATCH + 8 * i as u32) as i32).encode(&mut out);
        Instruction::LocalGet(i as u32).encode(&mut out);
        match t {
            WasmTy::I32 => Instruction::I32Store(mem),
            WasmTy::I64 => Instruction::I64Store(mem),
            WasmTy::F32 => Instruction::F32Store(mem),
            WasmTy::F64 => Instruction::F64Store(mem),
            other => panic!("local of type {other}"),
        }
        .encode(&mut out);
    }
    Instruction::Unreachable.encode(&mut out);
    out
}

/// The offset of the first instruction control reaches when the nest exits, or `None` when the
/// function returns right after it.
fn exit_offset(func: &FunctionIr, nest: &NestVerdict) -> Option<u32> {
    let data = func.loop_data(nest.root).expect("root");
    let mut target: Option<Block> = None;
    for &b in &data.blocks {
        for s in func.block(b).expect("block").term.successors() {
            if !data.blocks.contains(&s.block) {
                target = Some(s.block);
            }
        }
    }
    let mut b = target.expect("the nest exits");
    for _ in 0..16 {
        let bd = func.block(b).expect("block");
        if let Some(first) = bd.insts.first() {
            return Some(first.offset);
        }
        match &bd.term {
            tensorwasm_analysis::ir::Terminator::Jump(c) => b = c.block,
            tensorwasm_analysis::ir::Terminator::Return(vals) if vals.is_empty() => return None,
            other => panic!("no instruction after the nest: {other:?}"),
        }
    }
    panic!("no instruction after the nest")
}

struct Snapshot {
    memory: Vec<u8>,
    locals: Vec<u64>,
}

/// Runs `export` of `wasm` with `args` after `setup`, expecting the probe's trap (or, with
/// `nlocals == 0`, a normal return).
fn run_to_probe(
    engine: &Engine,
    wasm: &[u8],
    export: &str,
    args: &[Val],
    setup: &dyn Fn(&mut [u8]),
    nlocals: usize,
) -> Snapshot {
    let module = Module::new(engine, wasm).expect("probed module compiles");
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiate");
    let memory = instance.get_memory(&mut store, "memory").expect("memory");
    let have = memory.size(&store);
    memory.grow(&mut store, PAGES - have).expect("grow");
    setup(memory.data_mut(&mut store));
    let f = instance.get_func(&mut store, export).expect("export");
    let result = f.call(&mut store, args, &mut []);
    if nlocals == 0 {
        result.expect("the function returns");
    } else {
        let err = result.expect_err("the probe traps");
        assert!(
            format!("{err:?}").contains("unreachable"),
            "unexpected trap: {err:?}"
        );
    }
    let data = memory.data(&store).to_vec();
    let locals = (0..nlocals)
        .map(|i| {
            let at = SCRATCH as usize + 8 * i;
            u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"))
        })
        .collect();
    Snapshot {
        memory: data,
        locals,
    }
}

fn local_value(func: &FunctionIr, snap: &Snapshot, l: u32) -> u64 {
    let raw = snap.locals[l as usize];
    match func.local_type(l) {
        Some(WasmTy::I32 | WasmTy::F32) => raw & 0xffff_ffff,
        _ => raw,
    }
}

#[test]
fn bare_sample_kernels_match_wasmtime() {
    let engine = Engine::default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/wasm/bare");
    let mut checked = 0;
    for case in cases() {
        let wasm = std::fs::read(root.join(format!("{}.wasm", case.name))).expect("sample");
        let module = translate(&wasm).expect("translate");
        let (plan, _) = analyze(&module);
        let setup = |mem: &mut [u8]| {
            for (k, &(at, n)) in case.inputs.iter().enumerate() {
                fill(mem, at, n, k as u32 + 1);
            }
        };
        for nest in &plan.nests {
            let Verdict::Candidate(cand) = &nest.verdict else {
                continue;
            };
            let what = format!("{} {}", case.name, nest.root);
            let func = module.function(nest.function).expect("function");
            let defined = (nest.function - module.num_imported_functions) as usize;
            let p = probe(func);
            let entry_wasm = splice(&wasm, defined, nest.offset, &p);
            let n = func.locals.len();
            let entry = run_to_probe(&engine, &entry_wasm, case.name, &case.args, &setup, n);
            let exit = match exit_offset(func, nest) {
                Some(at) => {
                    let exit_wasm = splice(&wasm, defined, at, &p);
                    run_to_probe(&engine, &exit_wasm, case.name, &case.args, &setup, n)
                }
                None => {
                    // The function returns right after the nest: nothing is live after it.
                    assert!(
                        cand.live_outs.is_empty(),
                        "{what}: live-outs before a return"
                    );
                    run_to_probe(&engine, &wasm, case.name, &case.args, &setup, 0)
                }
            };

            // Symbol values at the nest's entry.
            let sym = |s: Sym| -> Option<i128> {
                match s {
                    Sym::Local(l) => Some(i128::from(local_value(func, &entry, l))),
                    Sym::Trip(lp) => cand.trips.get(&lp)?.eval(&|s| match s {
                        Sym::Local(l) => Some(i128::from(local_value(func, &entry, l))),
                        _ => None,
                    }),
                    _ => None,
                }
            };
            // Live-outs: the closed form gives what the CPU computed.
            for (l, poly) in &cand.live_outs {
                let v = poly.eval(&sym).expect("closed form evaluates");
                let mask: u128 = match func.local_type(*l) {
                    Some(WasmTy::I64) => u64::MAX.into(),
                    _ => u32::MAX.into(),
                };
                assert_eq!(
                    (v as u128) & mask,
                    u128::from(local_value(func, &exit, *l)),
                    "{what}: live-out l{l} = {poly}"
                );
            }

            // The kernel on the memory the CPU had at the nest's entry.
            let low = lower(func, nest, cand, "k").unwrap_or_else(|e| panic!("{what}: {e}"));
            let ptx = emit_ptx(&low.kernel, &EmitOptions::for_target(Target::SM_75)).expect("emit");
            let mut dev = DeviceMemory::new();
            let mut window = entry.memory.clone();
            window.truncate(SCRATCH as usize);
            let mem_id = dev.alloc(window);
            let mut params = Vec::new();
            for (src, param) in low.sources.iter().zip(&low.kernel.params) {
                let value = match src {
                    ParamSource::Memory => ParamValue::Ptr(mem_id),
                    ParamSource::TrapFlag => ParamValue::Ptr(dev.alloc_zeroed(4)),
                    ParamSource::Local(l) => {
                        let v = local_value(func, &entry, *l);
                        match param.kind {
                            ParamKind::Scalar(ValType::I32) => ParamValue::U32(v as u32),
                            ParamKind::Scalar(ValType::I64) => ParamValue::U64(v),
                            ParamKind::Scalar(ValType::F32) => {
                                ParamValue::F32(f32::from_bits(v as u32))
                            }
                            ParamKind::Scalar(ValType::F64) => ParamValue::F64(f64::from_bits(v)),
                            ParamKind::Ptr => panic!("{what}: local as pointer"),
                        }
                    }
                    ParamSource::Trip(lp) => {
                        let t = sym(Sym::Trip(tensorwasm_analysis::ir::Loop(*lp)))
                            .expect("trip count evaluates");
                        assert!(t >= 1, "{what}: trip count {t}");
                        match param.kind {
                            ParamKind::Scalar(ValType::I64) => ParamValue::U64(t as u64),
                            _ => ParamValue::U32(t as u32),
                        }
                    }
                    ParamSource::Product(syms) => {
                        let mut v: u64 = 1;
                        for s in syms {
                            v = v.wrapping_mul(sym(*s).expect("symbol evaluates") as u64);
                        }
                        ParamValue::U64(v)
                    }
                    ParamSource::Global(g) => panic!("{what}: reads global {g}"),
                };
                params.push(value);
            }
            let trips: Vec<u64> = cand
                .grid
                .iter()
                .map(|g| sym(Sym::Trip(*g)).expect("grid trip") as u64)
                .collect();
            let plan = LaunchPlan::for_kernel(&low.kernel, None).expect("launch plan");
            let launch = Launch {
                grid: plan.grid_dims(&trips).expect("grid"),
                block: plan.block,
                params,
            };
            let cpu = &exit.memory[..SCRATCH as usize];
            if let Some(dir) = std::env::var_os("TENSORWASM_RECORD_LAUNCHES") {
                record(&dir, &what, &ptx, &launch, &dev, mem_id, cpu);
            }
            Interpreter::new()
                .launch(&ptx, "k", &launch, &mut dev)
                .unwrap_or_else(|e| panic!("{what}: interpreter: {e}"));
            let gpu = dev.read(mem_id).expect("read back");
            if let Some(at) = gpu.iter().zip(cpu).position(|(a, b)| a != b) {
                panic!(
                    "{what}: memory differs at address {at:#x}: kernel {:02x?}, CPU {:02x?}",
                    &gpu[at..at + 4],
                    &cpu[at..at + 4]
                );
            }
            assert_ne!(
                entry.memory[..SCRATCH as usize],
                exit.memory[..SCRATCH as usize],
                "{what}: the nest wrote nothing (the test would prove nothing)"
            );
            checked += 1;
        }
    }
    eprintln!("{checked} kernels checked against Wasmtime");
    assert!(checked >= 8, "only {checked} kernels checked");
}

/// Writes the launch as a record for `oracle/examples/replay.rs` (e.g. on a host with a GPU):
/// the memory window Wasmtime left at the nest's exit is the expected window, and every trap
/// flag must stay 0 (the CPU did not trap).
fn record(
    dir: &std::ffi::OsStr,
    what: &str,
    ptx: &str,
    launch: &Launch,
    dev: &DeviceMemory,
    window: tensorwasm_oracle::BufferId,
    cpu: &[u8],
) {
    let expect = (0..dev.len())
        .map(|i| {
            let id = dev.id(i).expect("buffer");
            Some(if id == window {
                cpu.to_vec()
            } else {
                vec![0; dev.read(id).expect("buffer").len()]
            })
        })
        .collect();
    let rec = LaunchRecord::new(what, "wasmtime", ptx, "k", launch, dev, expect).expect("record");
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir).expect("record directory");
    let name: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    std::fs::write(dir.join(format!("{name}.json")), rec.to_json()).expect("write record");
}
