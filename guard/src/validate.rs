//! Validation of a kernel table when it is read ([`OffloadTable::from_json`]): size caps, and
//! every index, width and shape the dispatch host relies on. The table is signed, so only a
//! holder of a trusted key can make a malformed one; still, a malformed table is an error when
//! the bundle is deployed or restored, never a panic or a silent decline at dispatch.
//!
//! The writer (`tensorwasm build`) validates the table it makes with the same function, so it
//! never signs one that a host refuses.

use std::collections::BTreeSet;

use crate::table::{
    ArgType, Check, Expr, OffloadKernel, OffloadTable, ParamValue, TableError, Var,
};

/// Largest kernel table, in bytes of JSON (the section is read whole before it is parsed).
pub const MAX_TABLE_BYTES: usize = 256 << 20;
/// Most kernels in one table.
pub const MAX_KERNELS: usize = 65536;
/// Longest kernel name (a PTX entry name: letters, digits, `_`, `$`).
pub const MAX_NAME: usize = 256;
/// Largest PTX module of one kernel, in bytes.
pub const MAX_PTX_BYTES: usize = 4 << 20;
/// Largest cubin of one kernel, in bytes.
pub const MAX_CUBIN_BYTES: usize = 16 << 20;
/// Most terms in one expression.
pub const MAX_TERMS: usize = 4096;
/// Most variables in one term of an expression.
pub const MAX_TERM_VARS: usize = 16;
/// Most of anything else one kernel lists: arguments, loops, parameters, accesses, checks,
/// live-outs, strides, conditions.
pub const MAX_ITEMS: usize = 65536;
/// Most threads in one block (CUDA's limit).
pub const MAX_BLOCK_THREADS: u64 = 1024;

fn err(k: usize, name: &str, what: impl std::fmt::Display) -> TableError {
    TableError(format!("kernel {k} ({name}): {what}"))
}

impl OffloadTable {
    /// Checks every kernel: names unique and well formed, launch shape within CUDA's limits,
    /// every expression variable, loop, group and parameter index in range, widths and bit
    /// counts that exist, and the size caps above.
    pub fn validate(&self) -> Result<(), TableError> {
        if self.kernels.len() > MAX_KERNELS {
            return Err(TableError(format!(
                "{} kernels, more than {MAX_KERNELS}",
                self.kernels.len()
            )));
        }
        let mut names = BTreeSet::new();
        for (k, kern) in self.kernels.iter().enumerate() {
            validate_kernel(k, kern)?;
            if !names.insert(kern.name.as_str()) {
                return Err(err(k, &kern.name, "a second kernel of this name"));
            }
        }
        Ok(())
    }
}

fn validate_kernel(k: usize, kern: &OffloadKernel) -> Result<(), TableError> {
    let name = if kern.name.len() <= MAX_NAME {
        kern.name.as_str()
    } else {
        "?"
    };
    let e = |what: String| err(k, name, what);
    if kern.name.is_empty()
        || kern.name.len() > MAX_NAME
        || !kern
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        || kern.name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(e(format!(
            "the name must be 1 to {MAX_NAME} letters, digits, `_` or `$`, not starting with a digit"
        )));
    }
    if kern.ptx.len() > MAX_PTX_BYTES {
        return Err(e(format!(
            "PTX of {} bytes, more than {MAX_PTX_BYTES}",
            kern.ptx.len()
        )));
    }
    for c in &kern.cubins {
        let arch_ok = c.arch.strip_prefix("sm_").is_some_and(|n| {
            !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !arch_ok {
            return Err(e(format!(
                "cubin architecture `{}` is not sm_NN",
                c.arch.escape_debug()
            )));
        }
        if c.image.len() > MAX_CUBIN_BYTES {
            return Err(e(format!(
                "cubin for {} of {} bytes, more than {MAX_CUBIN_BYTES}",
                c.arch,
                c.image.len()
            )));
        }
    }
    let threads = kern
        .block
        .iter()
        .try_fold(1u64, |acc, &b| (b >= 1).then(|| acc * u64::from(b)));
    match threads {
        Some(t) if t <= MAX_BLOCK_THREADS => {}
        _ => {
            return Err(e(format!(
                "block {:?}: each dimension at least 1 and at most {MAX_BLOCK_THREADS} threads in all",
                kern.block
            )));
        }
    }
    for (what, n) in [
        ("arguments", kern.args.len()),
        ("loops", kern.trips.len()),
        ("parameters", kern.params.len()),
        ("accesses", kern.accesses.len()),
        ("checks", kern.checks.len()),
        ("live-outs", kern.live_outs.len()),
    ] {
        if n > MAX_ITEMS {
            return Err(e(format!("{n} {what}, more than {MAX_ITEMS}")));
        }
    }
    let loops = kern.trips.len();
    let loop_ok = |j: u32| (j as usize) < loops;
    if kern.grid.is_empty() || kern.grid.len() > 3 {
        return Err(e(format!(
            "a grid of {} dimensions (1 to 3)",
            kern.grid.len()
        )));
    }
    let distinct: BTreeSet<u32> = kern.grid.iter().copied().collect();
    if distinct.len() != kern.grid.len() || !kern.grid.iter().all(|&g| loop_ok(g)) {
        return Err(e(format!(
            "grid loops {:?}: distinct loops of the {loops} it lists",
            kern.grid
        )));
    }
    // An expression may name integer arguments and, unless `args_only`, trip counts.
    let expr = |x: &Expr, args_only: bool, what: &str| -> Result<(), TableError> {
        if x.terms.len() > MAX_TERMS {
            return Err(e(format!("{what}: more than {MAX_TERMS} terms")));
        }
        for (_, vars) in &x.terms {
            if vars.len() > MAX_TERM_VARS {
                return Err(e(format!(
                    "{what}: a term of more than {MAX_TERM_VARS} variables"
                )));
            }
            for v in vars {
                match *v {
                    Var::Arg(i) => match kern.args.get(i as usize) {
                        Some(a) if matches!(a.ty, ArgType::I32 | ArgType::I64) => {}
                        Some(_) => {
                            return Err(e(format!("{what}: argument {i} is a float")));
                        }
                        None => {
                            return Err(e(format!("{what}: argument {i} of {}", kern.args.len())));
                        }
                    },
                    Var::Trip(i) if args_only => {
                        return Err(e(format!(
                            "{what}: names trip count {i}, which is computed from it"
                        )));
                    }
                    Var::Trip(i) if !loop_ok(i) => {
                        return Err(e(format!("{what}: trip count {i} of {loops}")));
                    }
                    Var::Trip(_) => {}
                }
            }
        }
        Ok(())
    };
    let bits = |b: u32, what: &str| -> Result<(), TableError> {
        if b == 32 || b == 64 {
            Ok(())
        } else {
            Err(e(format!("{what}: {b} bits (32 or 64)")))
        }
    };
    let strides = |s: &[(u32, Expr)], what: &str| -> Result<(), TableError> {
        if s.len() > MAX_ITEMS {
            return Err(e(format!("{what}: too many strides")));
        }
        for (j, x) in s {
            if !loop_ok(*j) {
                return Err(e(format!("{what}: moves with loop {j} of {loops}")));
            }
            expr(x, false, what)?;
        }
        Ok(())
    };
    for (i, t) in kern.trips.iter().enumerate() {
        let what = format!("trip count {i}");
        expr(&t.num, true, &what)?;
        if t.div < 1 {
            return Err(e(format!("{what}: divisor {} (at least 1)", t.div)));
        }
        for w in &t.wrap {
            expr(&w.base, false, &what)?;
            strides(&w.strides, &what)?;
            bits(w.bits, &what)?;
        }
    }
    let mut memory = 0;
    let mut flags = 0;
    for (i, p) in kern.params.iter().enumerate() {
        let what = format!("parameter {i}");
        match p {
            ParamValue::Memory => memory += 1,
            ParamValue::TrapFlag => flags += 1,
            ParamValue::Arg(a) if (*a as usize) < kern.args.len() => {}
            ParamValue::Arg(a) => {
                return Err(e(format!("{what}: argument {a} of {}", kern.args.len())));
            }
            ParamValue::Int { expr: x, bits: b } => {
                expr(x, false, &what)?;
                bits(*b, &what)?;
            }
        }
    }
    if memory > 1 || flags > 1 {
        return Err(e(
            "more than one memory window or trap flag parameter".to_string()
        ));
    }
    let mut groups = BTreeSet::new();
    for (i, a) in kern.accesses.iter().enumerate() {
        let what = format!("access {i}");
        if ![1, 2, 4, 8, 16].contains(&a.width) {
            return Err(e(format!(
                "{what}: {} bytes wide (1, 2, 4, 8 or 16)",
                a.width
            )));
        }
        expr(&a.base, false, &what)?;
        strides(&a.strides, &what)?;
        if a.when.len() > MAX_ITEMS {
            return Err(e(format!("{what}: too many conditions")));
        }
        for g in &a.when {
            expr(&g.expr, false, &what)?;
            bits(g.bits, &what)?;
        }
        groups.insert(a.group);
    }
    for (i, c) in kern.checks.iter().enumerate() {
        let ok = match *c {
            Check::AtLeastOnce(j) => loop_ok(j),
            Check::NoOverlap(a, b) => groups.contains(&a) && groups.contains(&b),
            Check::DisjointThreads(g) => groups.contains(&g),
        };
        if !ok {
            return Err(e(format!(
                "check {i} ({c:?}) names no loop or access group of the kernel"
            )));
        }
    }
    for (i, l) in kern.live_outs.iter().enumerate() {
        let what = format!("live-out {i}");
        if !matches!(l.ty, ArgType::I32 | ArgType::I64) {
            return Err(e(format!(
                "{what}: a float (only integer live-outs are computed)"
            )));
        }
        expr(&l.value, false, &what)?;
    }
    Ok(())
}
