//! Constant propagation of the locals over a whole function, for the values a loop nest's
//! locals hold on entry: a local that holds the same constant on every path into the nest's
//! header is folded into the kernel instead of passed ([`crate::symbolic::NestEval`]'s
//! `entry_constants`).
//!
//! **Method.** A forward data-flow analysis over the function's reachable blocks (locals start
//! at zero, parameters unknown), each local one of: not reached yet, one constant, or anything.
//! A block's effect on the locals does not depend on the state it starts from (a `local.set` or
//! `local.tee` of an `iN.const` makes the local that constant, any other write makes it
//! unknown), so it is found once per block. The propagation runs once per function
//! ([`LocalConsts`], cached by [`FuncInfo::local_consts`]) and keeps only the end states of the
//! blocks that branch to a loop header; [`entry_constants`] joins those on the edges into one
//! nest's header. It claims nothing for functions too large to analyse cheaply or when it does
//! not settle.

use crate::ir::{Block, FunctionIr, Imm, Loop, Opcode};
use crate::loops::FuncInfo;
use crate::opcode::ScalarOpcode as S;
use crate::symbolic::is_within;
use std::collections::BTreeMap;

/// A local's value in [`LocalConsts`]: not reached yet, one constant, or anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum C {
    Unset,
    Const(i64),
    Any,
}

/// A forward constant propagation of the locals over a whole function (locals start at zero,
/// parameters unknown): for every block, the state at its end, `None` where not reached. It does
/// not depend on the nest, so it is computed once per function ([`FuncInfo::local_consts`]) and
/// [`entry_constants`] only joins the states on the edges into a nest's header.
#[derive(Debug)]
pub struct LocalConsts {
    /// `None`: the propagation was skipped (function too large) or did not settle; claim nothing.
    out: Option<Vec<Option<Vec<C>>>>,
}

impl LocalConsts {
    /// Runs the propagation over `func`, whose reachable blocks in reverse postorder are
    /// `rpo` ([`crate::dom::DomTree::rpo`]).
    pub fn new(func: &FunctionIr, rpo: &[Block]) -> LocalConsts {
        LocalConsts {
            out: local_consts(func, rpo),
        }
    }
}

fn join(a: C, b: C) -> C {
    match (a, b) {
        (C::Unset, x) | (x, C::Unset) => x,
        (C::Const(x), C::Const(y)) if x == y => a,
        _ => C::Any,
    }
}

/// The state at the end of every block that branches to a loop header (the only states
/// [`entry_constants`] reads; `None` for the other blocks and where not reached), or `None`
/// (too large, or not settled).
fn local_consts(func: &FunctionIr, rpo: &[Block]) -> Option<Vec<Option<Vec<C>>>> {
    let nl = func.locals.len();
    let nb = func.blocks.len();
    // Cost cap: skip very large functions rather than spend quadratic time.
    if nl.saturating_mul(nb) > 4_000_000 {
        return None;
    }
    let mut is_header = vec![false; nb];
    for d in &func.loops {
        if let Some(h) = is_header.get_mut(d.header.index()) {
            *h = true;
        }
    }
    let keep: Vec<bool> = func
        .blocks
        .iter()
        .map(|bd| {
            bd.term
                .successors()
                .any(|s| is_header.get(s.block.index()).copied().unwrap_or(false))
        })
        .collect();
    let mut at: Vec<Option<Vec<C>>> = vec![None; nb];
    let mut out: Vec<Option<Vec<C>>> = vec![None; nb];
    let init: Vec<C> = (0..nl)
        .map(|l| {
            if (l as u32) < func.num_params {
                C::Any
            } else {
                C::Const(0)
            }
        })
        .collect();
    if let Some(slot) = at.first_mut() {
        *slot = Some(init);
    }
    // Blocks whose state changed since they were last processed. Processing any other block
    // again would change nothing, so skipping it changes no result. A round visits the blocks
    // in reverse postorder, so a state crosses every forward edge in one round and only back
    // edges take more; the least fixed point does not depend on the order.
    let mut dirty = vec![false; nb];
    if let Some(d) = dirty.first_mut() {
        *d = true;
    }
    // What each block does to the locals does not depend on the state it starts from: a
    // `local.set`/`local.tee` of a constant (an `iN.const`, or the result of a `local.tee` of
    // one) makes the local that constant, any other makes it unknown. So each block's writes
    // are found once, the last write to a local winning, and applied on every visit.
    // Constants are only seen within the block that makes them: `consts[v]` is the block and
    // the constant of value `v`; `last_write[l]` the block and the index in its list of writes.
    let mut consts: Vec<(usize, i64)> = vec![(usize::MAX, 0); func.num_values as usize];
    let mut last_write: Vec<(usize, usize)> = vec![(usize::MAX, 0); nl];
    let writes: Vec<Vec<(usize, C)>> = func
        .blocks
        .iter()
        .enumerate()
        .map(|(bi, bd)| {
            let mut w: Vec<(usize, C)> = Vec::new();
            for inst in &bd.insts {
                match (inst.op, &inst.imm) {
                    (Opcode::Scalar(S::I32Const | S::I64Const), Imm::Int(c)) => {
                        if let Some(slot) =
                            inst.results.first().and_then(|r| consts.get_mut(r.index()))
                        {
                            *slot = (bi, *c);
                        }
                    }
                    (Opcode::Scalar(S::LocalSet | S::LocalTee), Imm::Local(l)) => {
                        let v = inst
                            .args
                            .first()
                            .and_then(|a| consts.get(a.index()))
                            .and_then(|&(b, c)| (b == bi).then_some(c));
                        let l = *l as usize;
                        if let Some(last) = last_write.get_mut(l) {
                            let c = v.map_or(C::Any, C::Const);
                            if last.0 == bi {
                                w[last.1].1 = c;
                            } else {
                                *last = (bi, w.len());
                                w.push((l, c));
                            }
                        }
                        if let (Some(slot), Some(c)) = (
                            inst.results.first().and_then(|r| consts.get_mut(r.index())),
                            v,
                        ) {
                            *slot = (bi, c);
                        }
                    }
                    _ => {}
                }
            }
            w
        })
        .collect();
    // The state being transferred through a block (one buffer, reused).
    let mut st: Vec<C> = Vec::with_capacity(nl);
    let mut changed = true;
    let mut rounds = 0;
    while changed && rounds < 32 {
        changed = false;
        rounds += 1;
        for &b in rpo {
            let bi = b.index();
            if !dirty.get(bi).copied().unwrap_or(false) {
                continue;
            }
            dirty[bi] = false;
            let Some(entry) = &at[bi] else {
                continue;
            };
            st.clear();
            st.extend_from_slice(entry);
            for &(l, c) in &writes[bi] {
                st[l] = c;
            }
            for s in func.blocks[bi].term.successors() {
                let t = s.block.index();
                let Some(slot) = at.get_mut(t) else {
                    continue;
                };
                match slot {
                    None => {
                        *slot = Some(st.clone());
                        changed = true;
                        dirty[t] = true;
                    }
                    Some(cur) => {
                        for (x, y) in cur.iter_mut().zip(&st) {
                            let j = join(*x, *y);
                            if j != *x {
                                *x = j;
                                changed = true;
                                dirty[t] = true;
                            }
                        }
                    }
                }
            }
            if keep[bi] {
                match &mut out[bi] {
                    Some(o) => o.copy_from_slice(&st),
                    slot => *slot = Some(st.clone()),
                }
            }
        }
    }
    if changed {
        return None; // did not settle: claim nothing
    }
    Some(out)
}

/// Locals that hold the same constant on every path into `root`'s header from outside it, from
/// the function's [`LocalConsts`]. (The states only grow while the propagation runs and a
/// block's transfer is monotone, so joining the settled end states of the blocks that branch to
/// the header from outside the nest is the join over every state the propagation saw there.)
pub fn entry_constants(info: &FuncInfo<'_>, root: Loop) -> BTreeMap<u32, i64> {
    let func = info.func;
    let mut out = BTreeMap::new();
    let Some(states) = &info.local_consts().out else {
        return out;
    };
    let Some(header) = func.loop_data(root).map(|d| d.header) else {
        return out;
    };
    // Join the states on the edges into the header from outside the nest (the header's
    // predecessors, one per edge: not a walk over the whole function for every nest).
    let mut into_header: Option<Vec<C>> = None;
    for &p in info.dom.preds(header) {
        let (Some(bd), Some(Some(st))) = (func.blocks.get(p.index()), states.get(p.index())) else {
            continue;
        };
        let from_inside = bd.innermost_loop.is_some_and(|l| is_within(func, l, root));
        if from_inside {
            continue;
        }
        let h = into_header.get_or_insert_with(|| vec![C::Unset; func.locals.len()]);
        for (x, y) in h.iter_mut().zip(st) {
            *x = join(*x, *y);
        }
    }
    if let Some(h) = into_header {
        for (l, c) in h.into_iter().enumerate() {
            if let C::Const(c) = c {
                out.insert(l as u32, c);
            }
        }
    }
    out
}
