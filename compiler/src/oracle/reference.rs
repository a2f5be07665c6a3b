//! The oracle's CPU side: a Wasm function run in Wasmtime (Cranelift) over a memory image.
//!
//! [`WasmtimeReference`] implements `tensorwasm_oracle::harness::Reference`. The module is
//! compiled once; every case gets a fresh store and instance, its memory 0 overwritten with the
//! case's image, and fuel so that a runaway loop is an error rather than a hang. Memory 0 must be
//! exported or imported (an imported memory is created for it); any other import is refused.
//! This module never reports a Wasm trap as an error: traps are `Outcome::Trapped`.

use tensorwasm_oracle::harness::{Outcome, Reference, WasmType, WasmValue};
use wasmtime::{
    Engine, ExternType, Func, InstancePre, Linker, Memory, MemoryType, Module, Store, Trap, Val,
    ValType,
};

/// Fuel per case: far more than any sample needs, small enough to end a runaway loop quickly.
const FUEL: u64 = 1 << 28;

/// The largest initial memory the oracle takes (each case copies the whole image).
const MAX_MEMORY: u64 = 16 << 20;

/// How memory 0 is reached.
#[derive(Debug, Clone)]
enum MemorySource {
    Export(String),
    Import {
        module: String,
        name: String,
        ty: MemoryType,
    },
}

/// A Wasm export run by Wasmtime, as the oracle's reference.
pub struct WasmtimeReference {
    engine: Engine,
    module: Module,
    pre: Option<InstancePre<()>>,
    export: String,
    params: Vec<WasmType>,
    memory: MemorySource,
    memory_size: usize,
}

impl std::fmt::Debug for WasmtimeReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmtimeReference")
            .field("export", &self.export)
            .field("params", &self.params)
            .field("memory", &self.memory)
            .field("memory_size", &self.memory_size)
            .finish_non_exhaustive()
    }
}

impl WasmtimeReference {
    /// Compiles `wasm` (a binary module) and prepares `export` for calls. Errors say what is
    /// wrong with the module: invalid, no such function, unsupported parameter types, memory 0
    /// neither exported nor imported, other imports.
    pub fn new(wasm: &[u8], export: &str) -> Result<WasmtimeReference, String> {
        let mut config = tensorwasmd::engine::base_config();
        config.consume_fuel(true).epoch_interruption(false);
        let engine = Engine::new(&config).map_err(|e| format!("cannot create an engine: {e}"))?;
        let module =
            Module::new(&engine, wasm).map_err(|e| format!("invalid Wasm module: {e:#}"))?;
        let params = match module.get_export(export) {
            Some(ExternType::Func(f)) => f
                .params()
                .enumerate()
                .map(|(i, t)| match t {
                    ValType::I32 => Ok(WasmType::I32),
                    ValType::I64 => Ok(WasmType::I64),
                    ValType::F32 => Ok(WasmType::F32),
                    ValType::F64 => Ok(WasmType::F64),
                    other => Err(format!(
                        "parameter {i} of `{export}` has type {other}; the oracle takes i32, i64, \
                         f32 and f64"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(format!("export `{export}` is not a function")),
            None => {
                let funcs: Vec<&str> = module
                    .exports()
                    .filter(|e| matches!(e.ty(), ExternType::Func(_)))
                    .map(|e| e.name())
                    .collect();
                return Err(format!(
                    "the module has no exported function `{export}` (it exports: {})",
                    if funcs.is_empty() {
                        "no functions".to_string()
                    } else {
                        funcs.join(", ")
                    }
                ));
            }
        };
        let memory = memory_zero(&module, wasm)?;
        let pages = match &memory {
            MemorySource::Import { ty, .. } => ty.minimum(),
            MemorySource::Export(name) => match module.get_export(name) {
                Some(ExternType::Memory(ty)) => ty.minimum(),
                _ => return Err(format!("export `{name}` is not a memory")),
            },
        };
        let bytes = pages.saturating_mul(65536);
        if bytes > MAX_MEMORY {
            return Err(format!(
                "memory 0 starts with {pages} pages ({bytes} bytes); the oracle takes at most \
                 {MAX_MEMORY} bytes"
            ));
        }
        for import in module.imports() {
            let is_memory0 = matches!(&memory, MemorySource::Import { module: m, name, .. }
                if m == import.module() && name == import.name());
            if !is_memory0 {
                return Err(format!(
                    "the module imports `{}::{}`; a reference function may import only its memory",
                    import.module(),
                    import.name()
                ));
            }
        }
        // With an exported memory the instance is pre-linked once; an imported memory is created
        // and linked per case.
        let pre = match memory {
            MemorySource::Export(_) => Some(
                Linker::new(&engine)
                    .instantiate_pre(&module)
                    .map_err(|e| format!("cannot link the module: {e:#}"))?,
            ),
            MemorySource::Import { .. } => None,
        };
        Ok(WasmtimeReference {
            engine,
            module,
            pre,
            export: export.to_string(),
            params,
            memory,
            memory_size: bytes as usize,
        })
    }

    fn instantiate(&self, store: &mut Store<()>) -> Result<(Func, Memory), String> {
        let fail = |e: wasmtime::Error| format!("cannot instantiate the module: {e:#}");
        let (instance, memory) = match (&self.memory, &self.pre) {
            (MemorySource::Export(name), Some(pre)) => {
                let instance = pre.instantiate(&mut *store).map_err(fail)?;
                let memory = instance
                    .get_memory(&mut *store, name)
                    .ok_or_else(|| format!("export `{name}` is not a memory"))?;
                (instance, memory)
            }
            (MemorySource::Import { module, name, ty }, _) => {
                let memory = Memory::new(&mut *store, ty.clone()).map_err(fail)?;
                let mut linker = Linker::new(&self.engine);
                linker.define(&*store, module, name, memory).map_err(fail)?;
                (
                    linker
                        .instantiate(&mut *store, &self.module)
                        .map_err(fail)?,
                    memory,
                )
            }
            (MemorySource::Export(_), None) => return Err("internal: module not linked".into()),
        };
        let func = instance
            .get_func(&mut *store, &self.export)
            .ok_or_else(|| format!("no function `{}`", self.export))?;
        Ok((func, memory))
    }
}

/// Finds memory 0: the first imported memory, else the first defined one, which must then be
/// exported (wasmparser gives the index space; Wasmtime's API does not).
fn memory_zero(module: &Module, wasm: &[u8]) -> Result<MemorySource, String> {
    for import in module.imports() {
        if let ExternType::Memory(ty) = import.ty() {
            if ty.is_64() {
                return Err("memory 0 is a 64-bit memory; the oracle takes 32-bit memories".into());
            }
            return Ok(MemorySource::Import {
                module: import.module().to_string(),
                name: import.name().to_string(),
                ty,
            });
        }
    }
    let mut has_memory = false;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| format!("invalid Wasm module: {e}"))? {
            wasmparser::Payload::MemorySection(s) => has_memory |= s.count() > 0,
            wasmparser::Payload::ExportSection(s) => {
                for export in s {
                    let export = export.map_err(|e| format!("invalid Wasm module: {e}"))?;
                    if export.kind == wasmparser::ExternalKind::Memory && export.index == 0 {
                        if let Some(ExternType::Memory(ty)) = module.get_export(export.name)
                            && ty.is_64()
                        {
                            return Err("memory 0 is a 64-bit memory; the oracle takes 32-bit \
                                        memories"
                                .into());
                        }
                        return Ok(MemorySource::Export(export.name.to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    Err(if has_memory {
        "memory 0 is not exported; export it, e.g. (memory (export \"memory\") 1)".into()
    } else {
        "the module has no memory; the reference function must use memory 0".into()
    })
}

impl Reference for WasmtimeReference {
    fn name(&self) -> &str {
        "wasmtime"
    }

    fn param_types(&self) -> Vec<WasmType> {
        self.params.clone()
    }

    fn memory_size(&self) -> usize {
        self.memory_size
    }

    fn run(&mut self, memory: &mut [u8], args: &[WasmValue]) -> Result<Outcome, String> {
        let mut store = Store::new(&self.engine, ());
        store.set_fuel(FUEL).map_err(|e| format!("{e:#}"))?;
        let (func, mem) = self.instantiate(&mut store)?;
        let data = mem.data_mut(&mut store);
        if data.len() != memory.len() {
            return Err(format!(
                "memory 0 has {} bytes after instantiation, expected {}",
                data.len(),
                memory.len()
            ));
        }
        data.copy_from_slice(memory);
        let vals: Vec<Val> = args
            .iter()
            .map(|a| match *a {
                WasmValue::I32(v) => Val::I32(v),
                WasmValue::I64(v) => Val::I64(v),
                WasmValue::F32(b) => Val::F32(b),
                WasmValue::F64(b) => Val::F64(b),
            })
            .collect();
        let mut results = vec![Val::I32(0); func.ty(&store).results().len()];
        let outcome = match func.call(&mut store, &vals, &mut results) {
            Ok(()) => Outcome::Returned,
            Err(e) => match e.downcast_ref::<Trap>() {
                Some(Trap::OutOfFuel) => {
                    return Err(format!(
                        "`{}` ran out of fuel ({FUEL} units): a loop that does not end for \
                         these inputs?",
                        self.export
                    ));
                }
                Some(trap) => Outcome::Trapped(trap.to_string()),
                None => return Err(format!("`{}` failed: {e:#}", self.export)),
            },
        };
        let data = mem.data(&store);
        if data.len() != memory.len() {
            return Err(format!(
                "`{}` grew memory 0 to {} bytes; reference functions must not grow memory",
                self.export,
                data.len()
            ));
        }
        memory.copy_from_slice(data);
        Ok(outcome)
    }
}
