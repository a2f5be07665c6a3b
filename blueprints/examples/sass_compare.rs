//! Code-quality benchmark: our PTX against the same kernels written plainly in CUDA C and
//! compiled by `nvcc`, compared in SASS (the machine code `ptxas` makes of both).
//!
//! ```text
//! export PATH=$(scripts/cuda-tools --full):$PATH
//! cargo run --release -p tensorwasm-blueprints --example sass_compare [-- --dump DIR] [ARCH...]
//! ```
//!
//! (`benches/sass/compare.sh` does both.) For each kernel (vadd, saxpy, matmul, conv2d and the
//! Jacobi stencil `stencil2d`) and each arch (default `sm_80 sm_90`) it emits our PTX, runs
//! `ptxas -arch=ARCH -v`, compiles `benches/sass/kernels.cu` with
//! `nvcc -arch=ARCH -cubin -O3 -fmad=false -ftz=false -prec-div=true -prec-sqrt=true -Xptxas -v`,
//! disassembles both cubins with `cuobjdump -sass`, and prints a Markdown table.
//!
//! Counting rules (over the SASS instruction lines of one function):
//! - **total**: every instruction except the padding after the last `EXIT` (`NOP`s and the
//!   `BRA` to itself).
//! - **hot** for a kernel with a sequential loop (matmul, conv2d): a loop is a backward `BRA`
//!   (its target is at or before the branch and is not the branch itself); its body is every
//!   instruction from the target to the branch, both included. Among the innermost loops (no
//!   other backward branch inside), the hot loop is the one that runs the most source
//!   iterations per trip, counted as the `FADD`s in its body: each source iteration does
//!   exactly one `f32.add` (`acc += a * b`), so the `FADD` count is the unroll factor. Hot =
//!   body instructions / unroll factor: SASS instructions per source iteration.
//! - **hot** for a kernel without a loop (vadd, saxpy, stencil2d): the instructions a thread
//!   that passes the bounds checks executes, from the first instruction through the last
//!   `STG` (predicated early `EXIT`s included: every thread executes them), i.e. the total
//!   without the final `EXIT` tail. The kernel must have no branch before that `STG`.
//! - **registers**: `Used N registers` from `ptxas -v` (ours) and `nvcc -Xptxas -v`.
//!
//! The example fails (exit 1) if a kernel spills or a tool is missing, and prints the ratio
//! ours/nvcc of the hot counts; the target is ≤ 1.25.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use tensorwasm_blueprints::ptxas::{self, FunctionStats};
use tensorwasm_blueprints::{EmitOptions, Kernel, Target, emit_ptx, samples};

/// The target ratio of hot instructions, ours over nvcc's.
const TARGET_RATIO: f64 = 1.25;

/// One SASS instruction.
#[derive(Debug, Clone)]
struct Insn {
    /// Byte address inside the function.
    addr: u64,
    /// The opcode with its modifiers (`IMAD.WIDE.U32`), without the predicate.
    op: String,
    /// The whole instruction text, predicate included, without the `;`.
    text: String,
}

impl Insn {
    fn base_op(&self) -> &str {
        self.op.split('.').next().unwrap_or("")
    }
    /// The target of a direct `BRA`, if this is one.
    fn branch_target(&self) -> Option<u64> {
        if self.base_op() != "BRA" {
            return None;
        }
        let last = self.text.split([' ', ',']).rfind(|s| !s.is_empty())?;
        u64::from_str_radix(last.strip_prefix("0x")?, 16).ok()
    }
}

/// The SASS of each function in `cuobjdump -sass` output, by function name.
fn parse_sass(text: &str) -> BTreeMap<String, Vec<Insn>> {
    let mut out: BTreeMap<String, Vec<Insn>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("Function : ") {
            current = Some(name.trim().to_string());
            out.entry(name.trim().to_string()).or_default();
            continue;
        }
        let Some(name) = &current else { continue };
        // `/*0040*/   @!P0 BRA 0xd00 ;   /* 0x... */`
        let Some(rest) = t.strip_prefix("/*") else {
            continue;
        };
        let Some((addr, rest)) = rest.split_once("*/") else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr.trim(), 16) else {
            continue;
        };
        let Some((insn, _)) = rest.split_once(';') else {
            continue;
        };
        let insn = insn.trim().to_string();
        let mut words = insn.split_whitespace();
        let mut op = words.next().unwrap_or_default();
        if op.starts_with('@') {
            op = words.next().unwrap_or_default();
        }
        let op = op.to_string();
        if let Some(v) = out.get_mut(name) {
            v.push(Insn {
                addr,
                op,
                text: insn,
            });
        }
    }
    out
}

/// The function without the padding after its last `EXIT`.
fn trim_padding(insns: &[Insn]) -> &[Insn] {
    let mut end = insns.len();
    while end > 0 {
        let i = &insns[end - 1];
        let self_loop = i.branch_target() == Some(i.addr);
        if i.base_op() == "NOP" || self_loop {
            end -= 1;
        } else {
            break;
        }
    }
    &insns[..end]
}

/// How the hot count was obtained.
#[derive(Debug, Clone)]
enum Hot {
    /// Body instructions of the hot loop and its unroll factor.
    Loop { body: usize, unroll: usize },
    /// Instructions through the last `STG`.
    Straight(usize),
}

impl Hot {
    fn per_iteration(&self) -> f64 {
        match *self {
            Hot::Loop { body, unroll } => body as f64 / unroll as f64,
            Hot::Straight(n) => n as f64,
        }
    }
    fn describe(&self) -> String {
        match *self {
            Hot::Loop { body, unroll: 1 } => format!("{body}"),
            Hot::Loop { body, unroll } => {
                format!("{:.2} ({body}/{unroll})", body as f64 / unroll as f64)
            }
            Hot::Straight(n) => format!("{n}"),
        }
    }
}

fn hot(insns: &[Insn]) -> Result<Hot, String> {
    let loops: Vec<(usize, usize)> = insns
        .iter()
        .enumerate()
        .filter_map(|(bi, b)| {
            let t = b.branch_target()?;
            if t >= b.addr {
                return None;
            }
            let ti = insns.iter().position(|i| i.addr == t)?;
            Some((ti, bi))
        })
        .collect();
    if loops.is_empty() {
        let last_store = insns
            .iter()
            .rposition(|i| i.base_op() == "STG")
            .ok_or("no loop and no STG")?;
        if insns[..last_store].iter().any(|i| i.base_op() == "BRA") {
            return Err("a branch before the last STG in a kernel without loops".into());
        }
        return Ok(Hot::Straight(last_store + 1));
    }
    let innermost = loops.iter().filter(|&&(s, e)| {
        !loops
            .iter()
            .any(|&(s2, e2)| (s2, e2) != (s, e) && s <= s2 && e2 <= e)
    });
    innermost
        .map(|&(s, e)| {
            let body = &insns[s..=e];
            let unroll = body.iter().filter(|i| i.op == "FADD").count();
            (unroll, body.len())
        })
        .filter(|&(unroll, _)| unroll > 0)
        .max()
        .map(|(unroll, body)| Hot::Loop { body, unroll })
        .ok_or_else(|| "no innermost loop with an FADD".into())
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("{cmd:?} failed ({}):\n{log}", out.status));
    }
    Ok(log)
}

fn on_path(tool: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!("{tool} not found on PATH (export PATH=$(scripts/cuda-tools --full):$PATH)")
        })
}

fn version_line(tool: &Path) -> String {
    run(Command::new(tool).arg("--version"))
        .ok()
        .and_then(|v| {
            v.lines()
                .find(|l| l.contains("release"))
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "unknown version".into())
}

/// One side (ours or nvcc) of one kernel on one arch.
#[derive(Debug)]
struct Side {
    stats: FunctionStats,
    total: usize,
    hot: Hot,
}

fn measure(stats: FunctionStats, sass: &[Insn]) -> Result<Side, String> {
    if stats.spill_stores + stats.spill_loads > 0 {
        return Err(format!("{} spills", stats.name));
    }
    let body = trim_padding(sass);
    Ok(Side {
        total: body.len(),
        hot: hot(body).map_err(|e| format!("{}: {e}", stats.name))?,
        stats,
    })
}

fn kernels() -> Result<Vec<Kernel>, String> {
    let s = |r: tensorwasm_blueprints::Result<Kernel>| r.map_err(|e| e.to_string());
    Ok(vec![
        s(samples::vadd())?,
        s(samples::saxpy())?,
        s(samples::matmul())?,
        s(samples::conv2d())?,
        s(samples::stencil2d())?,
    ])
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("sass_compare: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the comparison; `Ok(false)` when a kernel misses the target ratio.
fn real_main() -> Result<bool, String> {
    let mut args = std::env::args().skip(1);
    let mut dump: Option<PathBuf> = None;
    let mut archs = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dump" => dump = Some(args.next().ok_or("--dump needs a directory")?.into()),
            "-h" | "--help" => {
                println!("usage: sass_compare [--dump DIR] [sm_80 sm_90 ...]");
                return Ok(true);
            }
            arch => archs.push(arch.to_string()),
        }
    }
    if archs.is_empty() {
        archs = vec!["sm_80".into(), "sm_90".into()];
    }
    let ptxas_bin = ptxas::find_ptxas().ok_or("ptxas not found on PATH")?;
    let nvcc = on_path("nvcc")?;
    let cuobjdump = on_path("cuobjdump")?;
    let cu = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/sass/kernels.cu");
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    if let Some(d) = &dump {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, String> {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).map_err(|e| format!("{}: {e}", p.display()))?;
        if let Some(d) = &dump {
            std::fs::write(d.join(name), bytes).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        Ok(p)
    };

    println!("ptxas: {}", version_line(&ptxas_bin));
    println!("nvcc: {}", version_line(&nvcc));
    println!("cuobjdump: {}", version_line(&cuobjdump));
    println!();
    println!(
        "| kernel | arch | registers ours / nvcc | SASS total ours / nvcc | hot ours / nvcc | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    let mut all_ok = true;
    for arch in &archs {
        let target = Target::parse(arch).map_err(|e| e.to_string())?;
        let cubin = tmp.path().join(format!("nvcc.{arch}.cubin"));
        let log = run(Command::new(&nvcc)
            .arg(format!("-arch={arch}"))
            .args([
                "-cubin",
                "-O3",
                "-fmad=false",
                "-ftz=false",
                "-prec-div=true",
                "-prec-sqrt=true",
                "-Xptxas",
                "-v",
                "-o",
            ])
            .arg(&cubin)
            .arg(&cu))?;
        let nvcc_stats = ptxas::parse_verbose(&log);
        let nvcc_sass_text = run(Command::new(&cuobjdump).arg("-sass").arg(&cubin))?;
        if dump.is_some() {
            write(&format!("nvcc.{arch}.sass"), nvcc_sass_text.as_bytes())?;
        }
        let nvcc_sass = parse_sass(&nvcc_sass_text);
        for k in kernels()? {
            // The direct lowering: the CUDA C side is one output per thread too.
            let opts = EmitOptions {
                generic_only: true,
                ..EmitOptions::for_target(target)
            };
            let ptx = emit_ptx(&k, &opts).map_err(|e| e.to_string())?;
            write(&format!("{}.{arch}.ptx", k.name), ptx.as_bytes())?;
            let rep = ptxas::assemble_with(&ptxas_bin, &ptx, arch).map_err(|e| e.to_string())?;
            let ours_cubin = write(&format!("{}.{arch}.cubin", k.name), &rep.cubin)?;
            let ours_text = run(Command::new(&cuobjdump).arg("-sass").arg(&ours_cubin))?;
            if dump.is_some() {
                write(&format!("{}.{arch}.sass", k.name), ours_text.as_bytes())?;
            }
            let ours_sass = parse_sass(&ours_text);
            let find = |m: &BTreeMap<String, Vec<Insn>>, who: &str| {
                m.get(&k.name)
                    .cloned()
                    .ok_or_else(|| format!("{who}: no SASS for {}", k.name))
            };
            let stat = |s: &[FunctionStats], who: &str| {
                s.iter()
                    .find(|f| f.name == k.name)
                    .cloned()
                    .ok_or_else(|| format!("{who}: no ptxas -v statistics for {}", k.name))
            };
            let ours = measure(stat(&rep.functions, "ours")?, &find(&ours_sass, "ours")?)?;
            let theirs = measure(stat(&nvcc_stats, "nvcc")?, &find(&nvcc_sass, "nvcc")?)?;
            let ratio = ours.hot.per_iteration() / theirs.hot.per_iteration();
            let ok = ratio <= TARGET_RATIO;
            all_ok &= ok;
            println!(
                "| {} | {arch} | {} / {} | {} / {} | {} / {} | {ratio:.2}{} |",
                k.name,
                ours.stats.registers,
                theirs.stats.registers,
                ours.total,
                theirs.total,
                ours.hot.describe(),
                theirs.hot.describe(),
                if ok { "" } else { " (over target)" },
            );
        }
    }
    println!();
    println!(
        "hot: SASS instructions per inner-loop iteration (matmul, conv2d: hot-loop body / FADDs \
         in it = unroll factor) or per thread on the straight-line path (through the last STG); \
         target ratio <= {TARGET_RATIO}"
    );
    Ok(all_ok)
}
