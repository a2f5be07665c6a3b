//! Which locals are live where: a backward dataflow over a function's blocks, used to find the
//! values a loop nest must leave behind (its live-outs).

use crate::ir::{Block, FunctionIr, Imm, Opcode};
use crate::opcode::ScalarOpcode as S;

/// A set of locals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalSet {
    words: Vec<u64>,
    /// When the function was too large to analyze: every local counts as live.
    all: bool,
}

impl LocalSet {
    fn new(n: usize) -> Self {
        LocalSet {
            words: vec![0; n.div_ceil(64)],
            all: false,
        }
    }

    /// Whether local `l` is in the set.
    pub fn contains(&self, l: u32) -> bool {
        self.all
            || self
                .words
                .get(l as usize / 64)
                .is_some_and(|w| w & (1 << (l % 64)) != 0)
    }

    fn set(&mut self, l: u32, on: bool) {
        if let Some(w) = self.words.get_mut(l as usize / 64) {
            if on {
                *w |= 1 << (l % 64);
            } else {
                *w &= !(1 << (l % 64));
            }
        }
    }
}

/// Largest `blocks × locals` analyzed exactly; beyond it every local is reported live (safe:
/// a nest whose live-outs cannot be shown closed is rejected, never miscompiled).
const MAX_WORK: usize = 16_000_000;

/// The locals live on entry to every block of one function: read on some path from the block
/// before being written. The dataflow runs once; the detector asks for it once per nest through
/// `FuncInfo::liveness`.
#[derive(Debug)]
pub struct Liveness {
    /// Locals in the function.
    locals: usize,
    /// Per block; `None` when the function was too large to analyze (every local is live).
    live_in: Option<Vec<LocalSet>>,
}

impl Liveness {
    /// Runs the dataflow over `func`.
    pub fn new(func: &FunctionIr) -> Liveness {
        let nl = func.locals.len();
        let nb = func.blocks.len();
        if nl.saturating_mul(nb) > MAX_WORK {
            return Liveness {
                locals: nl,
                live_in: None,
            };
        }
        // Per block: gen (read before written) and kill (written).
        let mut gens = Vec::with_capacity(nb);
        let mut kills = Vec::with_capacity(nb);
        for bd in &func.blocks {
            let (mut g, mut k) = (LocalSet::new(nl), LocalSet::new(nl));
            for inst in &bd.insts {
                match (inst.op, &inst.imm) {
                    (Opcode::Scalar(S::LocalGet), Imm::Local(l)) if !k.contains(*l) => {
                        g.set(*l, true)
                    }
                    (Opcode::Scalar(S::LocalSet | S::LocalTee), Imm::Local(l)) => k.set(*l, true),
                    _ => {}
                }
            }
            gens.push(g);
            kills.push(k);
        }
        let mut live_in: Vec<LocalSet> = (0..nb).map(|_| LocalSet::new(nl)).collect();
        // Scratch sets, reused for every block.
        let mut out = LocalSet::new(nl);
        let mut new = LocalSet::new(nl);
        let mut changed = true;
        while changed {
            changed = false;
            for bi in (0..nb).rev() {
                out.words.fill(0);
                for s in func.blocks[bi].term.successors() {
                    if let Some(li) = live_in.get(s.block.index()) {
                        for (o, w) in out.words.iter_mut().zip(&li.words) {
                            *o |= w;
                        }
                    }
                }
                new.words.copy_from_slice(&gens[bi].words);
                for ((n, o), k) in new.words.iter_mut().zip(&out.words).zip(&kills[bi].words) {
                    *n |= o & !k;
                }
                if new != live_in[bi] {
                    std::mem::swap(&mut live_in[bi], &mut new);
                    changed = true;
                }
            }
        }
        Liveness {
            locals: nl,
            live_in: Some(live_in),
        }
    }

    /// The locals live on entry to `block`.
    pub fn at_entry(&self, block: Block) -> LocalSet {
        match &self.live_in {
            None => {
                let mut s = LocalSet::new(0);
                s.all = true;
                s
            }
            Some(live_in) => live_in
                .get(block.index())
                .cloned()
                .unwrap_or_else(|| LocalSet::new(self.locals)),
        }
    }
}
