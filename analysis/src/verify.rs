//! The BlockIR verifier. It checks exactly these invariants, and nothing else:
//!
//! - every function has an entry block, `block0`;
//! - every branch target exists and receives exactly one argument per block parameter;
//! - every value is below `num_values` and is defined exactly once, as a block parameter or an
//!   instruction result;
//! - every value used is defined; a use in the defining block comes after the definition; a use
//!   in a block reachable from the entry is in a block dominated by the defining block;
//! - every loop's header is among its blocks and has that loop as its innermost loop; a loop's
//!   parent comes before it, has depth one less and holds all of its blocks; an outermost loop
//!   has depth 1;
//! - every block whose innermost loop is `L` is among `L`'s blocks;
//! - every unsupported operator names an existing block.
//!
//! Run it after the front end (and after every later pass) in tests. A failure is a bug in the
//! pass that produced the IR, never the input's fault. It must never panic.

use crate::dom::DomTree;
use crate::ir::{Block, FunctionIr, ModuleIr, Value};
use crate::{Error, Result};

/// Verifies every function of `module`.
pub fn verify(module: &ModuleIr) -> Result<()> {
    module.functions.iter().try_for_each(verify_function)
}

fn fail(func: &FunctionIr, msg: String) -> Error {
    Error::Verify(format!("function {}: {msg}", func.index))
}

/// Where a value is defined: block and position (`None` for a block parameter).
type Def = (Block, Option<usize>);

/// Verifies one function.
pub fn verify_function(func: &FunctionIr) -> Result<()> {
    if func.blocks.is_empty() {
        return Err(fail(func, "no entry block".into()));
    }
    let defs = definitions(func)?;
    let dom = DomTree::new(func);
    let nblocks = func.blocks.len();
    for (bi, b) in func.blocks.iter().enumerate() {
        let block = Block(bi as u32);
        for (ii, inst) in b.insts.iter().enumerate() {
            for &v in &inst.args {
                check_use(func, &defs, &dom, v, block, Some(ii))?;
            }
        }
        for v in b.term.uses() {
            check_use(func, &defs, &dom, v, block, None)?;
        }
        for s in b.term.successors() {
            let Some(target) = func.blocks.get(s.block.index()) else {
                return Err(fail(
                    func,
                    format!("{block} branches to missing {}", s.block),
                ));
            };
            if target.params.len() != s.args.len() {
                return Err(fail(
                    func,
                    format!(
                        "{block} passes {} args to {} which has {} params",
                        s.args.len(),
                        s.block,
                        target.params.len()
                    ),
                ));
            }
        }
        if let Some(l) = b.innermost_loop {
            let ok = func.loop_data(l).is_some_and(|d| d.blocks.contains(&block));
            if !ok {
                return Err(fail(
                    func,
                    format!("{block} has innermost {l} but is not in it"),
                ));
            }
        }
    }
    for (li, l) in func.loops.iter().enumerate() {
        let me = crate::ir::Loop(li as u32);
        let header_ok = l.blocks.contains(&l.header)
            && func
                .block(l.header)
                .is_some_and(|h| h.innermost_loop == Some(me));
        if !header_ok {
            return Err(fail(func, format!("{me}: bad header {}", l.header)));
        }
        if l.blocks.iter().any(|b| b.index() >= nblocks) {
            return Err(fail(func, format!("{me}: names a missing block")));
        }
        if l.blocks.windows(2).any(|w| w[0] >= w[1]) {
            return Err(fail(func, format!("{me}: blocks not in increasing order")));
        }
        match l.parent {
            None if l.depth != 1 => {
                return Err(fail(func, format!("{me}: outermost but depth {}", l.depth)));
            }
            None => {}
            Some(p) => {
                let Some(pd) = func.loop_data(p).filter(|_| p.index() < li) else {
                    return Err(fail(func, format!("{me}: parent {p} must come before it")));
                };
                if pd.depth.saturating_add(1) != l.depth
                    || !l.blocks.iter().all(|b| pd.blocks.contains(b))
                {
                    return Err(fail(func, format!("{me}: not properly nested in {p}")));
                }
            }
        }
    }
    if let Some(u) = func.unsupported.iter().find(|u| u.block.index() >= nblocks) {
        return Err(fail(
            func,
            format!("unsupported {} names missing {}", u.op, u.block),
        ));
    }
    Ok(())
}

fn definitions(func: &FunctionIr) -> Result<Vec<Option<Def>>> {
    let mut defs: Vec<Option<Def>> = vec![None; func.num_values as usize];
    let mut define = |v: Value, at: Def| -> Result<()> {
        match defs.get_mut(v.index()) {
            None => Err(fail(
                func,
                format!("{v} is not below num_values {}", func.num_values),
            )),
            Some(Some(_)) => Err(fail(func, format!("{v} is defined twice"))),
            Some(slot) => {
                *slot = Some(at);
                Ok(())
            }
        }
    };
    for (bi, b) in func.blocks.iter().enumerate() {
        let block = Block(bi as u32);
        for &p in &b.params {
            define(p, (block, None))?;
        }
        for (ii, inst) in b.insts.iter().enumerate() {
            for &r in &inst.results {
                define(r, (block, Some(ii)))?;
            }
        }
    }
    Ok(defs)
}

fn check_use(
    func: &FunctionIr,
    defs: &[Option<Def>],
    dom: &DomTree,
    v: Value,
    block: Block,
    pos: Option<usize>,
) -> Result<()> {
    let Some(Some((def_block, def_pos))) = defs.get(v.index()).copied() else {
        return Err(fail(func, format!("{v} used in {block} but never defined")));
    };
    if def_block == block {
        let before = match (def_pos, pos) {
            (None, _) => true,
            (Some(_), None) => true,
            (Some(d), Some(u)) => d < u,
        };
        if !before {
            return Err(fail(
                func,
                format!("{v} used in {block} before its definition"),
            ));
        }
    } else if dom.is_reachable(block) && !dom.dominates(def_block, block) {
        return Err(fail(
            func,
            format!("{v} defined in {def_block} does not dominate its use in {block}"),
        ));
    }
    Ok(())
}
