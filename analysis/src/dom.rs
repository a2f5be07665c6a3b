//! Dominators of one function's CFG (Cooper, Harvey and Kennedy, "A Simple, Fast Dominance
//! Algorithm"), over the blocks reachable from `block0`.
//!
//! Used by the loop analysis (which updates run once per iteration) and by the detector. It must
//! never fail: unreachable blocks simply have no immediate dominator.

use crate::ir::{Block, FunctionIr};

/// The dominator tree of one function.
#[derive(Clone, Debug)]
pub struct DomTree {
    idom: Vec<Option<Block>>,
    rpo_index: Vec<Option<usize>>,
    rpo: Vec<Block>,
    preds: Vec<Vec<Block>>,
}

impl DomTree {
    /// Computes dominators for `func`.
    pub fn new(func: &FunctionIr) -> DomTree {
        let n = func.blocks.len();
        let mut preds = vec![Vec::new(); n];
        for (i, b) in func.blocks.iter().enumerate() {
            for s in b.term.successors() {
                if let Some(p) = preds.get_mut(s.block.index()) {
                    p.push(Block(i as u32));
                }
            }
        }
        let rpo = reverse_postorder(func);
        let mut rpo_index = vec![None; n];
        for (i, b) in rpo.iter().enumerate() {
            rpo_index[b.index()] = Some(i);
        }
        let mut idom: Vec<Option<Block>> = vec![None; n];
        if n > 0 {
            idom[0] = Some(Block(0));
        }
        let mut changed = true;
        while changed {
            changed = false;
            for &b in rpo.iter().skip(1) {
                let mut new_idom: Option<Block> = None;
                for &p in &preds[b.index()] {
                    if idom[p.index()].is_none() {
                        continue;
                    }
                    new_idom = Some(match new_idom {
                        None => p,
                        Some(cur) => intersect(&idom, &rpo_index, p, cur),
                    });
                }
                if new_idom.is_some() && idom[b.index()] != new_idom {
                    idom[b.index()] = new_idom;
                    changed = true;
                }
            }
        }
        DomTree {
            idom,
            rpo_index,
            rpo,
            preds,
        }
    }

    /// Whether `a` dominates `b` (every block dominates itself). False if either is unreachable.
    pub fn dominates(&self, a: Block, b: Block) -> bool {
        if !self.is_reachable(a) || !self.is_reachable(b) {
            return false;
        }
        let mut cur = b;
        loop {
            if cur == a {
                return true;
            }
            match self.idom.get(cur.index()).copied().flatten() {
                Some(next) if next != cur => cur = next,
                _ => return false,
            }
        }
    }

    /// The immediate dominator of `b` (the entry's is itself); `None` if `b` is unreachable.
    pub fn idom(&self, b: Block) -> Option<Block> {
        self.idom.get(b.index()).copied().flatten()
    }

    /// Whether control can reach `b` from the entry.
    pub fn is_reachable(&self, b: Block) -> bool {
        self.rpo_index.get(b.index()).copied().flatten().is_some()
    }

    /// The blocks control can reach, in reverse postorder (the entry first; a block before
    /// its successors except along back edges).
    pub fn rpo(&self) -> &[Block] {
        &self.rpo
    }

    /// The predecessors of `b` (one entry per edge).
    pub fn preds(&self, b: Block) -> &[Block] {
        self.preds.get(b.index()).map_or(&[], Vec::as_slice)
    }
}

fn intersect(idom: &[Option<Block>], rpo: &[Option<usize>], a: Block, b: Block) -> Block {
    let (mut x, mut y) = (a, b);
    let pos = |b: Block| rpo[b.index()].unwrap_or(usize::MAX);
    // Each step moves one finger strictly up the tree, so this ends within `n` steps.
    for _ in 0..=2 * idom.len() {
        if x == y {
            return x;
        }
        while pos(x) > pos(y) {
            match idom[x.index()] {
                Some(p) if p != x => x = p,
                _ => return Block(0),
            }
        }
        while pos(y) > pos(x) {
            match idom[y.index()] {
                Some(p) if p != y => y = p,
                _ => return Block(0),
            }
        }
    }
    Block(0)
}

fn reverse_postorder(func: &FunctionIr) -> Vec<Block> {
    let n = func.blocks.len();
    let mut seen = vec![false; n];
    let mut post = Vec::with_capacity(n);
    if n == 0 {
        return post;
    }
    // Iterative DFS: (block, next successor index).
    let mut stack = vec![(Block(0), 0usize)];
    seen[0] = true;
    while let Some((b, i)) = stack.pop() {
        if let Some(s) = func.blocks[b.index()].term.successors().nth(i) {
            stack.push((b, i + 1));
            let t = s.block;
            if t.index() < n && !seen[t.index()] {
                seen[t.index()] = true;
                stack.push((t, 0));
            }
        } else {
            post.push(b);
        }
    }
    post.reverse();
    post
}
