//! Front end: a validated Wasm binary to [`ModuleIr`] (BlockIR), one [`FunctionIr`] per defined
//! function.
//!
//! The module is first run through wasmparser's `Validator` (default features); only a
//! malformed or invalid binary is an error, reported with its byte offset. Operators are then
//! walked through `VisitOperator`: the visit methods are generated from wasmparser's operator
//! list, every operator with a fixed stack effect (`arity N -> M`) becomes a generic [`Inst`],
//! and only control, calls, locals, globals and constants have their own handlers. Operators
//! with a variable stack effect that have no handler (GC, exceptions, stack switching) are
//! recorded as [`Unsupported`]; the rest of their enclosing construct is treated as unreachable
//! (the translator no longer knows the stack), but the function still gets an IR.
//!
//! Code that control cannot reach (after `br`, `return`, `unreachable`) is not translated and
//! not counted; its `loop`s are not in the loop forest.
//!
//! This module must never panic on any input, and never guess: what it does not model it
//! records as unsupported.

use crate::ir::{
    Block, BlockCall, BlockData, FeatureCounts, FunctionIr, Imm, Inst, LoopData, MemArg, ModuleIr,
    Opcode, Terminator, Unsupported, ValType, Value,
};
use crate::opcode::{ScalarOpcode, SimdOpcode};
use crate::{Error, Result};
use std::sync::Mutex;
use wasmparser::{
    BlockType, BrTable, CompositeInnerType, FuncToValidate, FunctionBody, Parser, Payload,
    ValidPayload, Validator, ValidatorResources, VisitOperator, VisitSimdOperator,
};

/// Validates `wasm` and translates every defined function to BlockIR, functions in parallel on
/// all available cores ([`translate_with_threads`]).
///
/// Fails only when the binary is malformed or invalid ([`Error::Invalid`], with the byte offset)
/// or on an internal inconsistency ([`Error::Bug`]).
pub fn translate(wasm: &[u8]) -> Result<ModuleIr> {
    translate_with_threads(wasm, crate::par::default_threads())
}

/// [`translate`] on at most `threads` threads. The module's sections are validated in order on
/// the calling thread; function bodies are validated and translated in parallel. The result, and
/// the error for an invalid module (the one at the lowest offset, as a sequential validator
/// reports it), do not depend on the number of threads.
pub fn translate_with_threads(wasm: &[u8], threads: usize) -> Result<ModuleIr> {
    let invalid = |e: wasmparser::BinaryReaderError| Error::Invalid {
        message: e.message().to_string(),
        offset: e.offset(),
    };
    let mut validator = Validator::new();
    let mut bodies: Vec<(
        Mutex<Option<FuncToValidate<ValidatorResources>>>,
        FunctionBody<'_>,
    )> = Vec::new();
    let mut types = None;
    let mut stopped: Option<Error> = None;
    let mut num_defined = 0u32;
    let mut function_names = std::collections::BTreeMap::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = match payload {
            Ok(p) => p,
            Err(e) => {
                stopped = Some(invalid(e));
                break;
            }
        };
        match validator.payload(&payload) {
            Ok(ValidPayload::Func(func, body)) => bodies.push((Mutex::new(Some(func)), body)),
            Ok(ValidPayload::End(t)) => types = Some(t),
            Ok(_) => {}
            Err(e) => {
                stopped = Some(invalid(e));
                break;
            }
        }
        if let Payload::CodeSectionStart { count, .. } = payload {
            num_defined = count;
        }
        if let Payload::CustomSection(reader) = &payload
            && let wasmparser::KnownCustom::Name(names) = reader.as_known()
        {
            // The name section is advisory: a malformed one is ignored, never an error.
            for sub in names.into_iter().flatten() {
                if let wasmparser::Name::Function(map) = sub {
                    for naming in map.into_iter().flatten() {
                        function_names.insert(naming.index, naming.name.to_string());
                    }
                }
            }
        }
    }
    let types = if stopped.is_none() { types } else { None };
    let ctx = types.as_ref().map(|types| ModuleCtx { types });
    let imported = ctx.as_ref().map_or(0, |c| {
        c.types
            .as_ref()
            .function_count()
            .saturating_sub(num_defined)
    });
    // Per body: its validation, then (on a valid module) its translation.
    let done = crate::par::map(bodies.len(), threads, |i| {
        let (func, body) = &bodies[i];
        let func = func
            .lock()
            .ok()
            .and_then(|mut f| f.take())
            .ok_or_else(|| Error::Bug(format!("function body {i} taken twice")))?;
        func.into_validator(Default::default())
            .validate(body)
            .map_err(invalid)?;
        Ok(ctx
            .as_ref()
            .map(|ctx| translate_function(ctx, imported.saturating_add(i as u32), body)))
    });
    // The first error in byte order: a body's validation error comes before a later section's.
    let mut functions = Vec::with_capacity(done.len());
    let mut first_invalid = stopped;
    let mut translated = Vec::with_capacity(done.len());
    for r in done {
        match r {
            Ok(t) => translated.push(t),
            Err(e) => {
                let earlier = match (&e, &first_invalid) {
                    (_, None) => true,
                    (Error::Invalid { offset: a, .. }, Some(Error::Invalid { offset: b, .. })) => {
                        a < b
                    }
                    _ => false,
                };
                if earlier {
                    first_invalid = Some(e);
                }
            }
        }
    }
    if let Some(e) = first_invalid {
        return Err(e);
    }
    let Some(ctx) = ctx else {
        return Err(Error::Bug(
            "the validator did not reach the module's end".into(),
        ));
    };
    for t in translated {
        functions.push(t.ok_or_else(|| Error::Bug("a function was not translated".into()))??);
    }
    Ok(ModuleIr {
        num_imported_functions: ctx
            .types
            .as_ref()
            .function_count()
            .saturating_sub(num_defined),
        functions,
        function_names,
    })
}

struct ModuleCtx<'a> {
    types: &'a wasmparser::types::Types,
}

impl ModuleCtx<'_> {
    /// (params, results) of the function type with module type index `index`.
    fn type_arity(&self, index: u32) -> Option<(Vec<ValType>, Vec<ValType>)> {
        if index >= self.types.as_ref().core_type_count_in_module() {
            return None;
        }
        let id = self.types.as_ref().core_type_at_in_module(index);
        match &self.types[id].composite_type.inner {
            CompositeInnerType::Func(f) => Some((
                f.params().iter().map(|t| (*t).into()).collect(),
                f.results().iter().map(|t| (*t).into()).collect(),
            )),
            _ => None,
        }
    }

    fn func_arity(&self, func: u32) -> Option<(Vec<ValType>, Vec<ValType>)> {
        if func >= self.types.as_ref().function_count() {
            return None;
        }
        let id = self.types.as_ref().core_function_at(func);
        match &self.types[id].composite_type.inner {
            CompositeInnerType::Func(f) => Some((
                f.params().iter().map(|t| (*t).into()).collect(),
                f.results().iter().map(|t| (*t).into()).collect(),
            )),
            _ => None,
        }
    }

    fn block_arity(&self, ty: BlockType) -> Option<(usize, usize)> {
        match ty {
            BlockType::Empty => Some((0, 0)),
            BlockType::Type(_) => Some((0, 1)),
            BlockType::FuncType(i) => self.type_arity(i).map(|(p, r)| (p.len(), r.len())),
        }
    }
}

fn translate_function(
    ctx: &ModuleCtx<'_>,
    index: u32,
    body: &FunctionBody<'_>,
) -> Result<FunctionIr> {
    let invalid = |e: wasmparser::BinaryReaderError| Error::Invalid {
        message: e.message().to_string(),
        offset: e.offset(),
    };
    let (params, results) = ctx
        .func_arity(index)
        .ok_or_else(|| Error::Bug(format!("function {index} has no function type")))?;
    let mut locals = params.clone();
    for local in body.get_locals_reader().map_err(invalid)? {
        let (count, ty) = local.map_err(invalid)?;
        locals.extend(std::iter::repeat_n(ValType::from(ty), count as usize));
    }
    let mut reader = body.get_operators_reader().map_err(invalid)?;
    let offset = reader.original_position() as u32;
    let mut b = FuncBuilder::new(ctx, results.len());
    while !reader.eof() {
        b.offset = reader.original_position() as u32;
        reader.visit_operator(&mut b).map_err(invalid)??;
    }
    Ok(FunctionIr {
        index,
        num_params: params.len() as u32,
        num_results: results.len() as u32,
        locals,
        blocks: b.blocks,
        loops: b.loops,
        num_values: b.next_value,
        unsupported: b.unsupported,
        offset,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrameKind {
    Function,
    Block,
    Loop,
    If,
    /// A construct the translator does not model (e.g. `try_table`); always dead inside.
    Opaque,
}

#[derive(Debug)]
struct Frame {
    kind: FrameKind,
    /// Whether control could reach the construct's start.
    live: bool,
    /// Stack height below the construct's parameters.
    height: usize,
    num_params: usize,
    num_results: usize,
    /// Continuation (`block`, `if`) or header (`loop`).
    dest: Block,
    /// `if` only: the parameters, re-pushed for the `else` arm.
    params: Vec<Value>,
    /// `if` only: the block for the false edge.
    else_block: Option<Block>,
    seen_else: bool,
    /// A branch targets the continuation.
    branched_to: bool,
}

struct FuncBuilder<'c, 'a> {
    ctx: &'c ModuleCtx<'a>,
    blocks: Vec<BlockData>,
    loops: Vec<LoopData>,
    open_loops: Vec<crate::ir::Loop>,
    stack: Vec<Value>,
    frames: Vec<Frame>,
    cur: Block,
    reachable: bool,
    next_value: u32,
    offset: u32,
    unsupported: Vec<Unsupported>,
}

impl<'c, 'a> FuncBuilder<'c, 'a> {
    fn new(ctx: &'c ModuleCtx<'a>, num_results: usize) -> Self {
        let mut b = FuncBuilder {
            ctx,
            blocks: Vec::new(),
            loops: Vec::new(),
            open_loops: Vec::new(),
            stack: Vec::new(),
            frames: Vec::new(),
            cur: Block(0),
            reachable: true,
            next_value: 0,
            offset: 0,
            unsupported: Vec::new(),
        };
        let entry = b.new_block(0);
        b.frames.push(Frame {
            kind: FrameKind::Function,
            live: true,
            height: 0,
            num_params: 0,
            num_results,
            dest: entry,
            params: Vec::new(),
            else_block: None,
            seen_else: false,
            branched_to: false,
        });
        b
    }

    fn value(&mut self) -> Value {
        let v = Value(self.next_value);
        self.next_value = self.next_value.saturating_add(1);
        v
    }

    fn new_block(&mut self, num_params: usize) -> Block {
        let block = Block(self.blocks.len() as u32);
        let params = (0..num_params).map(|_| self.value()).collect();
        self.blocks.push(BlockData {
            params,
            insts: Vec::new(),
            term: Terminator::Unreachable,
            innermost_loop: self.open_loops.last().copied(),
            counts: FeatureCounts::default(),
        });
        for lp in &self.open_loops {
            if let Some(data) = self.loops.get_mut(lp.index()) {
                data.blocks.push(block);
            }
        }
        block
    }

    fn bug(&self, what: &str) -> Error {
        Error::Bug(format!("{what} (at offset {:#x})", self.offset))
    }

    /// Where the top `n` operands start on the stack; an error if that reaches below the
    /// current frame's operands.
    fn top_of(&self, n: usize) -> Result<usize> {
        let floor = self.frames.last().map_or(0, |f| f.height);
        self.stack
            .len()
            .checked_sub(n)
            .filter(|&at| at >= floor)
            .ok_or_else(|| self.bug("operand stack underflow"))
    }

    fn pop(&mut self) -> Result<Value> {
        let at = self.top_of(1)?;
        Ok(self.stack.remove(at))
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Value>> {
        let at = self.top_of(n)?;
        Ok(self.stack.split_off(at))
    }

    fn peek_n(&self, n: usize) -> Result<Vec<Value>> {
        let len = self.stack.len();
        if len < n {
            return Err(self.bug("operand stack underflow at a branch"));
        }
        Ok(self.stack[len - n..].to_vec())
    }

    fn cur_data(&mut self) -> Result<&mut BlockData> {
        let off = self.offset;
        self.blocks
            .get_mut(self.cur.index())
            .ok_or_else(|| Error::Bug(format!("current block missing (at offset {off:#x})")))
    }

    fn count(&mut self, op: Opcode) -> Result<()> {
        let class = op.class();
        self.cur_data()?.counts.add(class);
        Ok(())
    }

    /// Appends an instruction popping `nargs` and pushing `nresults` fresh values.
    /// Appends an instruction taking `nargs` values off the stack and pushing `nresults`
    /// new ones (nothing when unreachable).
    fn emit(&mut self, op: Opcode, imm: Imm, nargs: usize, nresults: usize) -> Result<()> {
        if !self.reachable {
            return Ok(());
        }
        let args = self.pop_n(nargs)?;
        let results: Vec<Value> = (0..nresults).map(|_| self.value()).collect();
        self.stack.extend(&results);
        let offset = self.offset;
        self.count(op)?;
        self.cur_data()?.insts.push(Inst {
            op,
            imm,
            args,
            results,
            offset,
        });
        Ok(())
    }

    fn terminate(&mut self, term: Terminator) -> Result<()> {
        self.cur_data()?.term = term;
        self.reachable = false;
        Ok(())
    }

    fn switch_to(&mut self, block: Block) {
        self.cur = block;
        self.reachable = true;
    }

    /// The block call for a branch to relative depth `depth`, or `None` for the function label.
    fn branch_target(&mut self, depth: u32) -> Result<Option<BlockCall>> {
        let len = self.frames.len();
        let idx = len
            .checked_sub(1 + depth as usize)
            .ok_or_else(|| self.bug("branch depth out of range"))?;
        let (kind, arity, dest) = {
            let f = &self.frames[idx];
            let arity = if f.kind == FrameKind::Loop {
                f.num_params
            } else {
                f.num_results
            };
            (f.kind, arity, f.dest)
        };
        if kind == FrameKind::Function {
            return Ok(None);
        }
        if kind != FrameKind::Loop {
            self.frames[idx].branched_to = true;
        }
        let args = self.peek_n(arity)?;
        Ok(Some(BlockCall { block: dest, args }))
    }

    fn return_values(&self) -> Result<Vec<Value>> {
        let n = self.frames.first().map_or(0, |f| f.num_results);
        self.peek_n(n)
    }

    fn control(&mut self, op: ScalarOpcode) -> Result<()> {
        if self.reachable {
            self.count(Opcode::Scalar(op))?;
        }
        Ok(())
    }

    fn push_frame(&mut self, kind: FrameKind, ty: BlockType) -> Result<()> {
        let (num_params, num_results) = self
            .ctx
            .block_arity(ty)
            .ok_or_else(|| self.bug("block type is not a function type"))?;
        let live = self.reachable && kind != FrameKind::Opaque;
        let height = if live {
            self.stack
                .len()
                .checked_sub(num_params)
                .ok_or_else(|| self.bug("operand stack underflow at block entry"))?
        } else {
            self.stack.len()
        };
        let mut frame = Frame {
            kind,
            live,
            height,
            num_params,
            num_results,
            dest: self.cur,
            params: Vec::new(),
            else_block: None,
            seen_else: false,
            branched_to: false,
        };
        if live {
            match kind {
                FrameKind::Block => frame.dest = self.new_block(num_results),
                FrameKind::Loop => {
                    let params = self.pop_n(num_params)?;
                    let lp = crate::ir::Loop(self.loops.len() as u32);
                    self.loops.push(LoopData {
                        header: Block(0),
                        blocks: Vec::new(),
                        parent: self.open_loops.last().copied(),
                        depth: self.open_loops.len() as u32 + 1,
                        offset: self.offset,
                    });
                    self.open_loops.push(lp);
                    let header = self.new_block(num_params);
                    self.loops[lp.index()].header = header;
                    self.terminate(Terminator::Jump(BlockCall {
                        block: header,
                        args: params,
                    }))?;
                    self.switch_to(header);
                    let header_params = self.blocks[header.index()].params.clone();
                    self.stack.extend(header_params);
                    frame.dest = header;
                }
                FrameKind::If => {
                    let cond = self.pop()?;
                    frame.height = self
                        .stack
                        .len()
                        .checked_sub(num_params)
                        .ok_or_else(|| self.bug("operand stack underflow at if"))?;
                    frame.params = self.peek_n(num_params)?;
                    frame.dest = self.new_block(num_results);
                    let then = self.new_block(0);
                    let other = self.new_block(0);
                    frame.else_block = Some(other);
                    self.terminate(Terminator::BrIf {
                        cond,
                        then: BlockCall {
                            block: then,
                            args: Vec::new(),
                        },
                        otherwise: BlockCall {
                            block: other,
                            args: Vec::new(),
                        },
                    })?;
                    self.switch_to(then);
                }
                FrameKind::Function | FrameKind::Opaque => {}
            }
        }
        self.frames.push(frame);
        Ok(())
    }

    fn on_else(&mut self) -> Result<()> {
        let Some(frame) = self.frames.last() else {
            return Err(self.bug("else without a frame"));
        };
        if !frame.live || frame.kind != FrameKind::If {
            self.reachable = false;
            return Ok(());
        }
        let (dest, n, height, params, other) = (
            frame.dest,
            frame.num_results,
            frame.height,
            frame.params.clone(),
            frame.else_block,
        );
        if self.reachable {
            let args = self.pop_n(n)?;
            self.terminate(Terminator::Jump(BlockCall { block: dest, args }))?;
        }
        self.stack.truncate(height);
        self.stack.extend(params);
        if let Some(last) = self.frames.last_mut() {
            last.seen_else = true;
        }
        match other {
            Some(other) => self.switch_to(other),
            None => return Err(self.bug("if frame without an else block")),
        }
        Ok(())
    }

    fn on_end(&mut self) -> Result<()> {
        let frame = self
            .frames
            .pop()
            .ok_or_else(|| self.bug("end without a frame"))?;
        if !frame.live {
            self.stack.truncate(frame.height);
            self.reachable = false;
            return Ok(());
        }
        match frame.kind {
            FrameKind::Function => {
                if self.reachable {
                    let vals = self.pop_n(frame.num_results)?;
                    self.terminate(Terminator::Return(vals))?;
                }
            }
            FrameKind::Loop => {
                self.open_loops.pop();
                if self.reachable {
                    let cont = self.new_block(0);
                    self.terminate(Terminator::Jump(BlockCall {
                        block: cont,
                        args: Vec::new(),
                    }))?;
                    self.switch_to(cont);
                }
            }
            FrameKind::Block | FrameKind::If => {
                let mut reaches = frame.branched_to;
                if self.reachable {
                    let args = self.pop_n(frame.num_results)?;
                    self.terminate(Terminator::Jump(BlockCall {
                        block: frame.dest,
                        args,
                    }))?;
                    reaches = true;
                }
                if let (FrameKind::If, false, Some(other)) =
                    (frame.kind, frame.seen_else, frame.else_block)
                {
                    self.switch_to(other);
                    self.terminate(Terminator::Jump(BlockCall {
                        block: frame.dest,
                        args: frame.params.clone(),
                    }))?;
                    reaches = true;
                }
                self.stack.truncate(frame.height);
                if reaches {
                    self.switch_to(frame.dest);
                    let params = self.blocks[frame.dest.index()].params.clone();
                    self.stack.extend(params);
                } else {
                    self.reachable = false;
                }
            }
            FrameKind::Opaque => {}
        }
        Ok(())
    }

    fn on_br(&mut self, depth: u32) -> Result<()> {
        if !self.reachable {
            return Ok(());
        }
        self.control(ScalarOpcode::Br)?;
        let term = match self.branch_target(depth)? {
            Some(call) => Terminator::Jump(call),
            None => Terminator::Return(self.return_values()?),
        };
        self.terminate(term)
    }

    fn on_br_if(&mut self, depth: u32) -> Result<()> {
        if !self.reachable {
            return Ok(());
        }
        self.control(ScalarOpcode::BrIf)?;
        let cond = self.pop()?;
        let next = self.new_block(0);
        let then = match self.branch_target(depth)? {
            Some(call) => call,
            None => {
                // A conditional return: branch to a block that returns.
                let vals = self.return_values()?;
                let ret = self.new_block(0);
                self.blocks[ret.index()].term = Terminator::Return(vals);
                BlockCall {
                    block: ret,
                    args: Vec::new(),
                }
            }
        };
        self.terminate(Terminator::BrIf {
            cond,
            then,
            otherwise: BlockCall {
                block: next,
                args: Vec::new(),
            },
        })?;
        self.switch_to(next);
        Ok(())
    }

    fn on_br_table(&mut self, table: BrTable<'_>) -> Result<()> {
        if !self.reachable {
            return Ok(());
        }
        self.control(ScalarOpcode::BrTable)?;
        let index = self.pop()?;
        let mut calls = Vec::new();
        let depths = table
            .targets()
            .collect::<std::result::Result<Vec<u32>, _>>()
            .map_err(|e| Error::Invalid {
                message: e.message().to_string(),
                offset: e.offset(),
            })?;
        for depth in depths.into_iter().chain(std::iter::once(table.default())) {
            let call = match self.branch_target(depth)? {
                Some(call) => call,
                None => {
                    let vals = self.return_values()?;
                    let ret = self.new_block(0);
                    self.blocks[ret.index()].term = Terminator::Return(vals);
                    BlockCall {
                        block: ret,
                        args: Vec::new(),
                    }
                }
            };
            calls.push(call);
        }
        let default = calls
            .pop()
            .ok_or_else(|| self.bug("br_table without default"))?;
        self.terminate(Terminator::BrTable {
            index,
            targets: calls,
            default,
        })
    }

    fn on_return(&mut self) -> Result<()> {
        if !self.reachable {
            return Ok(());
        }
        self.control(ScalarOpcode::Return)?;
        let vals = self.return_values()?;
        self.terminate(Terminator::Return(vals))
    }

    fn on_call(
        &mut self,
        op: ScalarOpcode,
        imm: Imm,
        sig: Option<(Vec<ValType>, Vec<ValType>)>,
        tail: bool,
    ) -> Result<()> {
        let (params, results) = sig.ok_or_else(|| self.bug("call to a non-function type"))?;
        let extra = usize::from(matches!(imm, Imm::Indirect { .. }));
        self.emit(Opcode::Scalar(op), imm, params.len() + extra, results.len())?;
        if tail && self.reachable {
            // A tail call returns the callee's results: the values it just pushed.
            let res = self
                .stack
                .split_off(self.stack.len().saturating_sub(results.len()));
            self.terminate(Terminator::Return(res))?;
        }
        Ok(())
    }

    /// An operator whose stack effect the translator does not know.
    fn on_unsupported(&mut self, op: Opcode) -> Result<()> {
        if !self.reachable {
            return Ok(());
        }
        let offset = self.offset;
        self.unsupported.push(Unsupported {
            op,
            offset,
            block: self.cur,
        });
        self.count(op)?;
        self.cur_data()?.insts.push(Inst {
            op,
            imm: Imm::None,
            args: Vec::new(),
            results: Vec::new(),
            offset,
        });
        self.terminate(Terminator::Unreachable)
    }
}

fn mem(m: wasmparser::MemArg) -> MemArg {
    MemArg {
        offset: m.offset,
        align: m.align,
        memory: m.memory,
    }
}

/// One immediate operand of a generic operator.
enum Part {
    Mem(MemArg),
    Lane(u8),
    Text(String),
}

/// Immediate operand types of fixed-arity operators.
trait ImmArg {
    fn part(&self) -> Part;
}

impl ImmArg for wasmparser::MemArg {
    fn part(&self) -> Part {
        Part::Mem(mem(*self))
    }
}

impl ImmArg for u8 {
    fn part(&self) -> Part {
        Part::Lane(*self)
    }
}

macro_rules! imm_as_text {
    ($($t:ty),*) => {$(
        impl ImmArg for $t {
            fn part(&self) -> Part {
                Part::Text(format!("{self:?}"))
            }
        }
    )*};
}

imm_as_text!(
    u32,
    [u8; 16],
    wasmparser::HeapType,
    wasmparser::Ordering,
    wasmparser::V128,
    wasmparser::ValType,
    wasmparser::RefType,
    wasmparser::Ieee32,
    wasmparser::Ieee64,
    i32,
    i64
);

fn imm(parts: &[Part]) -> Imm {
    match parts {
        [] => Imm::None,
        [Part::Mem(m)] => Imm::Mem(*m),
        [Part::Mem(m), Part::Lane(l)] => Imm::MemLane(*m, *l),
        _ => Imm::Other(
            parts
                .iter()
                .map(|p| match p {
                    Part::Mem(m) => format!("{m:?}"),
                    Part::Lane(l) => l.to_string(),
                    Part::Text(t) => t.clone(),
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
    }
}

/// The body of one visit method. Specific operators first, then generic rules by annotation.
macro_rules! visit_body {
    ($s:ident, $k:ident $e:ident, Unreachable, $ann:tt) => {{
        if $s.reachable {
            $s.emit(Opcode::$k($e::Unreachable), Imm::None, 0, 0)?;
            $s.terminate(Terminator::Unreachable)?;
        }
        Ok(())
    }};
    ($s:ident, $k:ident $e:ident, Block, $ann:tt, $bt:ident) => {{
        $s.control($e::Block)?;
        $s.push_frame(FrameKind::Block, $bt)
    }};
    ($s:ident, $k:ident $e:ident, Loop, $ann:tt, $bt:ident) => {{
        $s.control($e::Loop)?;
        $s.push_frame(FrameKind::Loop, $bt)
    }};
    ($s:ident, $k:ident $e:ident, If, $ann:tt, $bt:ident) => {{
        $s.control($e::If)?;
        $s.push_frame(FrameKind::If, $bt)
    }};
    ($s:ident, $k:ident $e:ident, Try, $ann:tt, $bt:ident) => {{
        $s.on_unsupported(Opcode::$k($e::Try))?;
        $s.push_frame(FrameKind::Opaque, $bt)
    }};
    ($s:ident, $k:ident $e:ident, TryTable, $ann:tt, $tt:ident) => {{
        $s.on_unsupported(Opcode::$k($e::TryTable))?;
        $s.push_frame(FrameKind::Opaque, $tt.ty)
    }};
    ($s:ident, $k:ident $e:ident, Else, $ann:tt) => {{
        $s.control($e::Else)?;
        $s.on_else()
    }};
    ($s:ident, $k:ident $e:ident, End, $ann:tt) => {{
        $s.control($e::End)?;
        $s.on_end()
    }};
    ($s:ident, $k:ident $e:ident, Delegate, $ann:tt, $d:ident) => {{
        let _ = $d;
        $s.on_end()
    }};
    ($s:ident, $k:ident $e:ident, Br, $ann:tt, $d:ident) => { $s.on_br($d) };
    ($s:ident, $k:ident $e:ident, BrIf, $ann:tt, $d:ident) => { $s.on_br_if($d) };
    ($s:ident, $k:ident $e:ident, BrTable, $ann:tt, $t:ident) => { $s.on_br_table($t) };
    ($s:ident, $k:ident $e:ident, Return, $ann:tt) => { $s.on_return() };
    ($s:ident, $k:ident $e:ident, Call, $ann:tt, $f:ident) => {{
        let sig = $s.ctx.func_arity($f);
        $s.on_call($e::Call, Imm::Func($f), sig, false)
    }};
    ($s:ident, $k:ident $e:ident, ReturnCall, $ann:tt, $f:ident) => {{
        let sig = $s.ctx.func_arity($f);
        $s.on_call($e::ReturnCall, Imm::Func($f), sig, true)
    }};
    ($s:ident, $k:ident $e:ident, CallIndirect, $ann:tt, $t:ident, $tab:ident) => {{
        let sig = $s.ctx.type_arity($t);
        $s.on_call($e::CallIndirect, Imm::Indirect { type_index: $t, table: $tab }, sig, false)
    }};
    ($s:ident, $k:ident $e:ident, ReturnCallIndirect, $ann:tt, $t:ident, $tab:ident) => {{
        let sig = $s.ctx.type_arity($t);
        $s.on_call($e::ReturnCallIndirect, Imm::Indirect { type_index: $t, table: $tab }, sig, true)
    }};
    ($s:ident, $k:ident $e:ident, LocalGet, $ann:tt, $i:ident) => {
        $s.emit(Opcode::$k($e::LocalGet), Imm::Local($i), 0, 1)
    };
    ($s:ident, $k:ident $e:ident, LocalSet, $ann:tt, $i:ident) => {
        $s.emit(Opcode::$k($e::LocalSet), Imm::Local($i), 1, 0)
    };
    ($s:ident, $k:ident $e:ident, LocalTee, $ann:tt, $i:ident) => {
        $s.emit(Opcode::$k($e::LocalTee), Imm::Local($i), 1, 1)
    };
    ($s:ident, $k:ident $e:ident, GlobalGet, $ann:tt, $i:ident) => {
        $s.emit(Opcode::$k($e::GlobalGet), Imm::Global($i), 0, 1)
    };
    ($s:ident, $k:ident $e:ident, GlobalSet, $ann:tt, $i:ident) => {
        $s.emit(Opcode::$k($e::GlobalSet), Imm::Global($i), 1, 0)
    };
    ($s:ident, $k:ident $e:ident, I32Const, $ann:tt, $v:ident) => {
        $s.emit(Opcode::$k($e::I32Const), Imm::Int(i64::from($v)), 0, 1)
    };
    ($s:ident, $k:ident $e:ident, I64Const, $ann:tt, $v:ident) => {
        $s.emit(Opcode::$k($e::I64Const), Imm::Int($v), 0, 1)
    };
    ($s:ident, $k:ident $e:ident, F32Const, $ann:tt, $v:ident) => {
        $s.emit(Opcode::$k($e::F32Const), Imm::FloatBits(u64::from($v.bits())), 0, 1)
    };
    ($s:ident, $k:ident $e:ident, F64Const, $ann:tt, $v:ident) => {
        $s.emit(Opcode::$k($e::F64Const), Imm::FloatBits($v.bits()), 0, 1)
    };
    // Generic rule: a fixed stack effect.
    ($s:ident, $k:ident $e:ident, $op:ident, (arity $a:literal -> $b:literal) $(, $x:ident)*) => {
        $s.emit(Opcode::$k($e::$op), imm(&[$(ImmArg::part(&$x)),*]), $a, $b)
    };
    // Everything else has a variable stack effect the translator does not model.
    ($s:ident, $k:ident $e:ident, $op:ident, $ann:tt $(, $x:ident)*) => {{
        $(let _ = $x;)*
        $s.on_unsupported(Opcode::$k($e::$op))
    }};
}

macro_rules! define_visit {
    ($k:ident $e:ident; $( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*) )*) => {
        $(
            fn $visit(&mut self $($(, $arg: $argty)*)?) -> Result<()> {
                visit_body!(self, $k $e, $op, ($($ann)*) $($(, $arg)*)?)
            }
        )*
    };
}

macro_rules! define_scalar_visit {
    ($($t:tt)*) => { define_visit!(Scalar ScalarOpcode; $($t)*); };
}

macro_rules! define_simd_visit {
    ($($t:tt)*) => { define_visit!(Simd SimdOpcode; $($t)*); };
}

impl<'a> VisitOperator<'a> for FuncBuilder<'_, '_> {
    type Output = Result<()>;

    fn simd_visitor(&mut self) -> Option<&mut dyn VisitSimdOperator<'a, Output = Self::Output>> {
        Some(self)
    }

    wasmparser::for_each_visit_operator!(define_scalar_visit);
}

impl<'a> VisitSimdOperator<'a> for FuncBuilder<'_, '_> {
    wasmparser::for_each_visit_simd_operator!(define_simd_visit);
}
