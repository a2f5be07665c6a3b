//! The guarded rewrite of a module ([`rewrite`]), and the outlined module the build's oracle
//! tests ([`outline`]).
//!
//! **The rewrite.** Each offloaded nest's outermost `loop` becomes
//!
//! ```text
//! block                                   ;; inserted
//!   local.get/global.get <args>...
//!   call $dispatch_K                      ;; tensorwasm:offload, 0 = ran on the device
//!   i32.eqz
//!   if
//!     i32.const j  call $live_out  (i32.wrap_i64)  local.set <live-out j>   ;; per live-out
//!     br 1                                ;; past the loop
//!   end
//!   loop ... end                          ;; the original loop, untouched but for depths
//! end                                     ;; inserted
//! ```
//!
//! The host checks every condition (trip counts, alias checks, memory bounds, the launch
//! threshold) and declines — returns non-zero having written nothing — whenever one fails, so
//! the original loop runs. Branches inside the loop that leave it gain one level for the
//! inserted `block`; the two imports come after the module's own, so every function index
//! at or above the first defined function shifts by their number.
//!
//! **A copy for the fallback.** When no loop and nothing with an effect (a store, call, global
//! write) comes before a function's first nest, the declined path does not run the loop in
//! place: right after the guard's `if`, the function tail-calls
//! (`return_call`) a copy of itself appended to the module, with its arguments as they were on
//! entry. The copy is the function as it was (its other nests guarded in place), so a
//! declined nest runs the machine code of the original module: a guard in place adds a call
//! before the loop, which changes how Cranelift allocates the loop's registers.

use std::collections::HashMap;

use tensorwasm_analysis::ir::ValType as WasmTy;
use tensorwasm_guard::{ArgSource, ArgType, IMPORT_MODULE, LIVE_OUT_IMPORT, OffloadKernel};
use wasm_encoder::reencode::Reencode;
use wasm_encoder::{BlockType, Instruction};

/// Why the rewrite failed (the build then ships the module without kernels).
pub type RewriteError = String;

struct Rewriter<'k> {
    kernels: &'k [OffloadKernel],
    /// Kernels by function index.
    by_function: HashMap<u32, Vec<usize>>,
    imported_funcs: u32,
    num_types: u32,
    imports_done: bool,
    next_defined: u32,
    /// Outline mode: leave every function as it is and append, per kernel, a function
    /// that runs only its guarded nest (see [`outline`]): its parameter types (the nest's
    /// function's locals) and, once captured, its body.
    outline: Option<Vec<(Vec<wasm_encoder::ValType>, Option<wasm_encoder::Function>)>>,
    /// Defined functions in the original module.
    num_defined: u32,
    /// Nests that fall back by a tail call to a copy of their function ([`scan`]).
    versions: Vec<Version>,
    /// The copies' bodies, in the order of `versions`, once made.
    copies: Vec<Option<wasm_encoder::Function>>,
}

/// A function whose first offloaded nest falls back to a copy of the function instead of the
/// loop in place: when the nest declines, the function tail-calls the copy with its own
/// arguments, and the copy runs from the start — the code before the nest again (it has no
/// effect, see [`scan`]), then the nest's loop as the original module has it. Cranelift
/// compiles that copy exactly as it compiles the original function, so a declined nest runs
/// the original machine code; a guard in place changes the loop's register allocation (one
/// more call with values live across it), which cost some loops up to 10%
/// (docs/PERFORMANCE.md, "Guard overhead").
#[derive(Debug, Clone)]
struct Version {
    /// Function index in the original module.
    function: u32,
    /// The kernel whose decline tail-calls the copy.
    kernel: usize,
    /// The function's type index and parameter types.
    type_index: u32,
    params: Vec<wasmparser::ValType>,
    /// Parameters the code before the nest writes: the function keeps each one's value on
    /// entry in a local of its own, for the tail call.
    saved: Vec<u32>,
}

impl Rewriter<'_> {
    fn new_imports(&self) -> u32 {
        self.kernels.len() as u32 + 1
    }

    fn dispatch_index(&self, k: usize) -> u32 {
        self.imported_funcs + k as u32
    }

    fn live_out_index(&self) -> u32 {
        self.imported_funcs + self.kernels.len() as u32
    }

    /// The function index of `versions[j]`'s copy (copies follow the defined functions).
    fn copy_index(&self, j: usize) -> u32 {
        self.imported_funcs + self.new_imports() + self.num_defined + j as u32
    }

    fn add_imports(&mut self, imports: &mut wasm_encoder::ImportSection) {
        for (k, kern) in self.kernels.iter().enumerate() {
            imports.import(
                IMPORT_MODULE,
                &kern.import_name(),
                wasm_encoder::EntityType::Function(self.num_types + k as u32),
            );
        }
        imports.import(
            IMPORT_MODULE,
            LIVE_OUT_IMPORT,
            wasm_encoder::EntityType::Function(self.num_types + self.kernels.len() as u32),
        );
        self.imports_done = true;
    }
}

fn enc_ty(t: ArgType) -> wasm_encoder::ValType {
    match t {
        ArgType::I32 => wasm_encoder::ValType::I32,
        ArgType::I64 => wasm_encoder::ValType::I64,
        ArgType::F32 => wasm_encoder::ValType::F32,
        ArgType::F64 => wasm_encoder::ValType::F64,
    }
}

impl Reencode for Rewriter<'_> {
    type Error = String;

    fn function_index(
        &mut self,
        func: u32,
    ) -> Result<u32, wasm_encoder::reencode::Error<Self::Error>> {
        Ok(if func >= self.imported_funcs {
            func + self.new_imports()
        } else {
            func
        })
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        wasm_encoder::reencode::utils::parse_type_section(self, types, section)?;
        self.num_types = types.len();
        for k in self.kernels {
            types.ty().function(
                k.args.iter().map(|a| enc_ty(a.ty)),
                [wasm_encoder::ValType::I32],
            );
        }
        types
            .ty()
            .function([wasm_encoder::ValType::I32], [wasm_encoder::ValType::I64]);
        if let Some(out) = &self.outline {
            for (k, (params, _)) in self.kernels.iter().zip(out) {
                types.ty().function(
                    params.iter().copied(),
                    k.live_outs.iter().map(|l| enc_ty(l.ty)),
                );
            }
        }
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        self.num_defined = section.count();
        wasm_encoder::reencode::utils::parse_function_section(self, functions, section)?;
        for v in &self.versions {
            functions.function(v.type_index);
        }
        if self.outline.is_some() {
            let first = self.num_types + self.kernels.len() as u32 + 1;
            for k in 0..self.kernels.len() {
                functions.function(first + k as u32);
            }
        }
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        wasm_encoder::reencode::utils::parse_export_section(self, exports, section)?;
        if self.outline.is_some() {
            let first = self.imported_funcs + self.new_imports() + self.num_defined;
            for (k, kern) in self.kernels.iter().enumerate() {
                exports.export(
                    &outlined_export(kern),
                    wasm_encoder::ExportKind::Func,
                    first + k as u32,
                );
            }
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        wasm_encoder::reencode::utils::parse_code_section(self, code, section)?;
        for (v, body) in self.versions.iter().zip(&self.copies) {
            let body = body.as_ref().ok_or_else(|| {
                wasm_encoder::reencode::Error::UserError(format!(
                    "function {} was not found for its copy",
                    v.function
                ))
            })?;
            code.function(body);
        }
        if let Some(out) = &self.outline {
            for (kern, (_, body)) in self.kernels.iter().zip(out) {
                let body = body.as_ref().ok_or_else(|| {
                    wasm_encoder::reencode::Error::UserError(format!(
                        "the loop of {} was not found at {:#x}",
                        kern.name, kern.offset
                    ))
                })?;
                code.function(body);
            }
        }
        Ok(())
    }

    /// Function names as they were, and each copy named as its function, so that a trap in a
    /// declined nest's loop names the same function as in the original module.
    fn parse_custom_name_subsection(
        &mut self,
        names: &mut wasm_encoder::NameSection,
        section: wasmparser::Name<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        let wasmparser::Name::Function(map) = section else {
            return wasm_encoder::reencode::utils::parse_custom_name_subsection(
                self, names, section,
            );
        };
        let mut out = wasm_encoder::NameMap::new();
        let mut by_index = HashMap::new();
        for naming in map {
            let naming = naming?;
            out.append(self.function_index(naming.index)?, naming.name);
            by_index.insert(naming.index, naming.name);
        }
        for (j, v) in self.versions.iter().enumerate() {
            if let Some(name) = by_index.get(&v.function) {
                out.append(self.copy_index(j), name);
            }
        }
        names.functions(&out);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        wasm_encoder::reencode::utils::parse_import_section(self, imports, section)?;
        self.add_imports(imports);
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<wasm_encoder::SectionId>,
        before: Option<wasm_encoder::SectionId>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        use wasm_encoder::SectionId as S;
        let past_imports = match before {
            None => true,
            Some(S::Custom | S::Type | S::Import) => false,
            Some(_) => true,
        };
        if past_imports && !self.imports_done {
            let mut imports = wasm_encoder::ImportSection::new();
            self.add_imports(&mut imports);
            module.section(&imports);
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        let index = self.imported_funcs + self.next_defined;
        self.next_defined += 1;
        let Some(ks) = self.by_function.get(&index).cloned() else {
            return wasm_encoder::reencode::utils::parse_function_body(self, code, func);
        };
        if self.outline.is_some() {
            self.capture(&func, &ks)?;
            return wasm_encoder::reencode::utils::parse_function_body(self, code, func);
        }
        let version = self.versions.iter().position(|v| v.function == index);
        if let Some(j) = version {
            // The copy: every other nest guarded in place, this one's loop as it was.
            let kernel = self.versions[j].kernel;
            let others: Vec<usize> = ks.iter().copied().filter(|&k| k != kernel).collect();
            let copy = self.rewrite_body(&func, &others, None)?;
            self.copies[j] = Some(copy);
        }
        let f = self.rewrite_body(&func, &ks, version)?;
        code.function(&f);
        Ok(())
    }
}

impl Rewriter<'_> {
    /// `func` with each nest of `ks` guarded; when `version` names an entry of
    /// [`Rewriter::versions`], its nest falls back by tail-calling the function's copy.
    fn rewrite_body(
        &mut self,
        func: &wasmparser::FunctionBody<'_>,
        ks: &[usize],
        version: Option<usize>,
    ) -> Result<wasm_encoder::Function, wasm_encoder::reencode::Error<String>> {
        // The function's locals, and for a version one more per parameter it keeps.
        let mut locals = Vec::new();
        let mut declared = 0u32;
        for entry in func.get_locals_reader()? {
            let (count, ty) = entry?;
            declared += count;
            locals.push((count, self.val_type(ty)?));
        }
        let mut first_saved = 0;
        let versioned = version.map(|j| (self.copy_index(j), self.versions[j].clone()));
        if let Some((_, v)) = &versioned {
            first_saved = v.params.len() as u32 + declared;
            for &p in &v.saved {
                locals.push((1, self.val_type(v.params[p as usize])?));
            }
        }
        let mut f = wasm_encoder::Function::new(locals);
        if let Some((_, v)) = &versioned {
            for (i, &p) in v.saved.iter().enumerate() {
                f.instruction(&Instruction::LocalGet(p));
                f.instruction(&Instruction::LocalSet(first_saved + i as u32));
            }
        }
        let mut reader = func.get_operators_reader()?;
        // Open control frames, innermost last: whether each is a wrapped loop.
        let mut frames: Vec<bool> = Vec::new();
        while !reader.eof() {
            let (op, offset) = reader.read_with_offset()?;
            // A branch out of a wrapped loop crosses the block inserted around it.
            let shift =
                |n: u32| n + frames.iter().rev().take(n as usize).filter(|w| **w).count() as u32;
            if let Some(branch) = relabel(&op, shift)? {
                f.instruction(&branch);
                continue;
            }
            use wasmparser::Operator as O;
            match &op {
                O::Loop { blockty } => {
                    let k = self.kernel_at(ks, offset);
                    if let Some(k) = k {
                        if *blockty != wasmparser::BlockType::Empty {
                            return Err(wasm_encoder::reencode::Error::UserError(format!(
                                "the loop at {offset:#x} has a block type"
                            )));
                        }
                        self.emit_guard(&mut f, k);
                        if let Some((copy, v)) = &versioned
                            && v.kernel == k
                        {
                            for p in 0..v.params.len() as u32 {
                                let local = match v.saved.iter().position(|&s| s == p) {
                                    Some(i) => first_saved + i as u32,
                                    None => p,
                                };
                                f.instruction(&Instruction::LocalGet(local));
                            }
                            f.instruction(&Instruction::ReturnCall(*copy));
                        }
                    }
                    frames.push(k.is_some());
                    f.instruction(&self.instruction(op)?);
                }
                op if opens_frame(op) => {
                    frames.push(false);
                    f.instruction(&self.instruction(op.clone())?);
                }
                O::End => {
                    let wrapped = frames.pop().unwrap_or(false);
                    f.instruction(&Instruction::End);
                    if wrapped {
                        f.instruction(&Instruction::End);
                    }
                }
                O::BrOnNull { .. }
                | O::BrOnNonNull { .. }
                | O::BrOnCast { .. }
                | O::BrOnCastFail { .. }
                | O::Delegate { .. }
                | O::Rethrow { .. }
                    if frames.iter().any(|w| *w) =>
                {
                    return Err(wasm_encoder::reencode::Error::UserError(format!(
                        "operator at {offset:#x} branches out of an offloaded loop in a way \
                         the rewrite does not handle"
                    )));
                }
                _ => {
                    f.instruction(&self.instruction(op)?);
                }
            }
        }
        Ok(f)
    }

    /// Outline mode: copies each kernel's loop of `func` into its outlined function, behind
    /// the guard; every branch that leaves the loop goes to the end of the guard's block.
    fn capture(
        &mut self,
        func: &wasmparser::FunctionBody<'_>,
        ks: &[usize],
    ) -> Result<(), wasm_encoder::reencode::Error<String>> {
        let mut reader = func.get_operators_reader()?;
        // The kernel being captured, its body so far, and the frames open inside its loop.
        let mut cap: Option<(usize, wasm_encoder::Function, u32)> = None;
        while !reader.eof() {
            let (op, offset) = reader.read_with_offset()?;
            use wasmparser::Operator as O;
            let Some((k, f, m)) = cap.as_mut() else {
                if let O::Loop { .. } = op
                    && let Some(k) = self.kernel_at(ks, offset)
                {
                    let mut f = wasm_encoder::Function::new([]);
                    f.instruction(&Instruction::Block(BlockType::Empty));
                    self.emit_guard(&mut f, k);
                    f.instruction(&self.instruction(op)?);
                    cap = Some((k, f, 1));
                }
                continue;
            };
            // A branch out of the loop goes to the end of the guard's block, `m` levels up.
            let depth = *m;
            if let Some(branch) = relabel(&op, |n| n.min(depth))? {
                f.instruction(&branch);
                continue;
            }
            match &op {
                op if opens_frame(op) || matches!(op, O::Loop { .. }) => {
                    *m += 1;
                    f.instruction(&self.instruction(op.clone())?);
                }
                O::End => {
                    *m -= 1;
                    f.instruction(&Instruction::End);
                    if *m == 0 {
                        let k = *k;
                        f.instruction(&Instruction::End);
                        f.instruction(&Instruction::End);
                        for l in &self.kernels[k].live_outs {
                            f.instruction(&Instruction::LocalGet(l.local));
                        }
                        f.instruction(&Instruction::End);
                        let (_, f, _) = cap.take().expect("capturing");
                        if let Some(out) = self.outline.as_mut() {
                            out[k].1 = Some(f);
                        }
                    }
                }
                O::Return => {
                    return Err(wasm_encoder::reencode::Error::UserError(format!(
                        "the loop of {} returns",
                        self.kernels[*k].name
                    )));
                }
                _ => {
                    f.instruction(&self.instruction(op)?);
                }
            }
        }
        Ok(())
    }

    /// The kernel of `ks` whose loop opcode is at byte `offset`.
    fn kernel_at(&self, ks: &[usize], offset: usize) -> Option<usize> {
        ks.iter()
            .copied()
            .find(|&k| self.kernels[k].offset as usize == offset)
    }

    fn emit_guard(&self, f: &mut wasm_encoder::Function, k: usize) {
        let kern = &self.kernels[k];
        f.instruction(&Instruction::Block(BlockType::Empty));
        for a in &kern.args {
            match a.source {
                ArgSource::Local(l) => f.instruction(&Instruction::LocalGet(l)),
                ArgSource::Global(g) => f.instruction(&Instruction::GlobalGet(g)),
            };
        }
        f.instruction(&Instruction::Call(self.dispatch_index(k)));
        f.instruction(&Instruction::I32Eqz);
        f.instruction(&Instruction::If(BlockType::Empty));
        for (j, lo) in kern.live_outs.iter().enumerate() {
            f.instruction(&Instruction::I32Const(j as i32));
            f.instruction(&Instruction::Call(self.live_out_index()));
            if lo.ty == ArgType::I32 {
                f.instruction(&Instruction::I32WrapI64);
            }
            f.instruction(&Instruction::LocalSet(lo.local));
        }
        f.instruction(&Instruction::Br(1));
        f.instruction(&Instruction::End);
    }
}

/// Whether `op` opens a control frame other than `loop` (which the callers treat apart).
fn opens_frame(op: &wasmparser::Operator<'_>) -> bool {
    use wasmparser::Operator as O;
    matches!(
        op,
        O::Block { .. } | O::If { .. } | O::TryTable { .. } | O::Try { .. }
    )
}

/// `op` with its branch labels (relative depths) mapped by `label`, when it is `br`, `br_if`
/// or `br_table`; `None` for any other operator.
fn relabel(
    op: &wasmparser::Operator<'_>,
    label: impl Fn(u32) -> u32,
) -> Result<Option<Instruction<'static>>, wasmparser::BinaryReaderError> {
    use wasmparser::Operator as O;
    Ok(match op {
        O::Br { relative_depth } => Some(Instruction::Br(label(*relative_depth))),
        O::BrIf { relative_depth } => Some(Instruction::BrIf(label(*relative_depth))),
        O::BrTable { targets } => {
            let ts = targets
                .targets()
                .map(|t| t.map(&label))
                .collect::<Result<Vec<u32>, _>>()?;
            Some(Instruction::BrTable(ts.into(), label(targets.default())))
        }
        _ => None,
    })
}

/// Rewrites `wasm` so that each kernel's nest dispatches first (see the module docs). The
/// result is validated.
pub fn rewrite(wasm: &[u8], kernels: &[OffloadKernel]) -> Result<Vec<u8>, RewriteError> {
    transform(wasm, kernels, None)
}

/// The export name of a kernel's outlined nest in the module [`outline`] makes.
pub fn outlined_export(k: &OffloadKernel) -> String {
    format!("__tensorwasm_nest_{}", k.name)
}

/// The oracle's module: `wasm` unchanged, plus the dispatch imports and, per kernel, an
/// exported function ([`outlined_export`]) whose parameters are all the locals of the nest's
/// function (`locals[k]`, parameters first, so local indices are unchanged) and whose
/// results are the kernel's live-outs. Its body is the guard and the nest's loop, as the
/// rewrite makes them: with a host that declines, it runs the original loop on the given
/// locals; with one that dispatches, the kernel.
pub fn outline(
    wasm: &[u8],
    kernels: &[OffloadKernel],
    locals: &[Vec<WasmTy>],
) -> Result<Vec<u8>, RewriteError> {
    let mut params = Vec::new();
    for ls in locals {
        let mut ps = Vec::new();
        for t in ls {
            ps.push(match t {
                WasmTy::I32 => wasm_encoder::ValType::I32,
                WasmTy::I64 => wasm_encoder::ValType::I64,
                WasmTy::F32 => wasm_encoder::ValType::F32,
                WasmTy::F64 => wasm_encoder::ValType::F64,
                WasmTy::V128 => wasm_encoder::ValType::V128,
                WasmTy::Ref => return Err("a nest's function has a reference local".into()),
            });
        }
        params.push((ps, None));
    }
    transform(wasm, kernels, Some(params))
}

#[allow(clippy::type_complexity)]
fn transform(
    wasm: &[u8],
    kernels: &[OffloadKernel],
    outline: Option<Vec<(Vec<wasm_encoder::ValType>, Option<wasm_encoder::Function>)>>,
) -> Result<Vec<u8>, RewriteError> {
    let mut by_function: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, k) in kernels.iter().enumerate() {
        by_function.entry(k.function).or_default().push(i);
    }
    let (imported_funcs, mut versions) = scan(wasm, kernels, &by_function)?;
    if outline.is_some() {
        versions.clear();
    }
    let copies = vec![None; versions.len()];
    let mut rw = Rewriter {
        kernels,
        by_function,
        imported_funcs,
        num_types: 0,
        imports_done: false,
        next_defined: 0,
        outline,
        num_defined: 0,
        versions,
        copies,
    };
    let mut module = wasm_encoder::Module::new();
    rw.parse_core_module(&mut module, wasmparser::Parser::new(0), wasm)
        .map_err(|e| match e {
            wasm_encoder::reencode::Error::UserError(s) => s,
            other => other.to_string(),
        })?;
    let out = module.finish();
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out)
        .map_err(|e| format!("the rewritten module does not validate: {e}"))?;
    Ok(out)
}

/// One pass over `wasm`: the number of imported functions (refusing a module that already
/// imports from [`IMPORT_MODULE`]), and the functions whose first nest can fall back to a copy
/// of the function ([`Version`]). For those, every operator before the nest's loop, in the
/// order of the code, is [`without_effect`] and none is a loop (so the nest is in no other loop
/// and runs at most once per call, and running the code before it again costs no more than its
/// length). Run a second time in the copy, from the same arguments (parameters it writes are
/// kept on entry), that code computes the same values and reaches the nest in the same state;
/// a trap in it would have happened the first time.
fn scan(
    wasm: &[u8],
    kernels: &[OffloadKernel],
    by_function: &HashMap<u32, Vec<usize>>,
) -> Result<(u32, Vec<Version>), RewriteError> {
    let mut imported_funcs = 0u32;
    let mut params: Vec<Option<Vec<wasmparser::ValType>>> = Vec::new();
    let mut types: Vec<u32> = Vec::new();
    let mut out = Vec::new();
    let mut index = 0;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| e.to_string())? {
            wasmparser::Payload::TypeSection(s) => {
                for group in s {
                    for ty in group.map_err(|e| e.to_string())?.into_types() {
                        params.push(match &ty.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => Some(f.params().to_vec()),
                            _ => None,
                        });
                    }
                }
            }
            wasmparser::Payload::ImportSection(s) => {
                for imp in s.into_imports() {
                    let imp = imp.map_err(|e| e.to_string())?;
                    if imp.module == IMPORT_MODULE {
                        return Err(format!("the module already imports from {IMPORT_MODULE}"));
                    }
                    if matches!(imp.ty, wasmparser::TypeRef::Func(_)) {
                        imported_funcs += 1;
                    }
                }
            }
            wasmparser::Payload::FunctionSection(s) => {
                for t in s {
                    types.push(t.map_err(|e| e.to_string())?);
                }
            }
            wasmparser::Payload::CodeSectionStart { .. } => index = imported_funcs,
            wasmparser::Payload::CodeSectionEntry(body) => {
                let function = index;
                index += 1;
                let Some(ks) = by_function.get(&function) else {
                    continue;
                };
                let Some(&kernel) = ks.iter().min_by_key(|&&k| kernels[k].offset) else {
                    continue;
                };
                let type_index = types[(function - imported_funcs) as usize];
                let Some(ps) = params.get(type_index as usize).cloned().flatten() else {
                    continue;
                };
                let first =
                    nest_runs_first(&body, kernels[kernel].offset as usize, ps.len() as u32)
                        .map_err(|e| e.to_string())?;
                if let Some(saved) = first {
                    out.push(Version {
                        function,
                        kernel,
                        type_index,
                        params: ps,
                        saved,
                    });
                }
            }
            _ => {}
        }
    }
    Ok((imported_funcs, out))
}

/// When no loop comes before the loop at byte `offset` of `body` and everything before it is
/// [`without_effect`]: the parameters (of the first `params` locals) that code writes.
fn nest_runs_first(
    body: &wasmparser::FunctionBody<'_>,
    offset: usize,
    params: u32,
) -> Result<Option<Vec<u32>>, wasmparser::BinaryReaderError> {
    use wasmparser::Operator as O;
    let mut reader = body.get_operators_reader()?;
    let mut written = std::collections::BTreeSet::new();
    while !reader.eof() {
        let (op, at) = reader.read_with_offset()?;
        if at == offset {
            return Ok(Some(written.into_iter().collect()));
        }
        match &op {
            O::Loop { .. } => return Ok(None),
            O::LocalSet { local_index } | O::LocalTee { local_index } if *local_index < params => {
                written.insert(*local_index);
            }
            op if !without_effect(op) => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}

/// Whether running `op` changes nothing outside its function's locals and operand stack: no
/// store, call, global write, memory or table change. It may trap or branch. Anything not
/// known to be so (atomics, `v128` loads and stores, reference and exception operators
/// included) counts as having one.
fn without_effect(op: &wasmparser::Operator<'_>) -> bool {
    use wasmparser::Operator as O;
    if matches!(
        op,
        O::Nop
            | O::Unreachable
            | O::Block { .. }
            | O::Loop { .. }
            | O::If { .. }
            | O::Else
            | O::End
            | O::Br { .. }
            | O::BrIf { .. }
            | O::BrTable { .. }
            | O::Return
            | O::Drop
            | O::Select
            | O::TypedSelect { .. }
            | O::LocalGet { .. }
            | O::LocalSet { .. }
            | O::LocalTee { .. }
            | O::GlobalGet { .. }
            | O::MemorySize { .. }
    ) {
        return true;
    }
    // Scalar numeric operators and loads: their names start with the value type. Stores and
    // atomics of those types are the only ones with an effect.
    let name = format!("{op:?}");
    ["I32", "I64", "F32", "F64"]
        .iter()
        .any(|t| name.starts_with(t))
        && !name.contains("Store")
        && !name.contains("Atomic")
}
