//! Running NVIDIA's `ptxas`: the check that emitted PTX is valid, and the way to get cubins.
//!
//! [`find_ptxas`] looks at `$TENSORWASM_PTXAS`, then `PATH`. [`assemble`] writes the PTX to a
//! temporary directory, runs `ptxas -arch=<arch> -v`, and returns the cubin with the register
//! and spill counts parsed from the verbose output. This is the only place in the crate that
//! starts a process; it must never pass anything but a validated `sm_NN` and file paths to it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// What `ptxas -v` says about one function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionStats {
    /// The function name.
    pub name: String,
    /// Registers used per thread.
    pub registers: u32,
    /// Bytes of stack frame.
    pub stack_frame: u64,
    /// Bytes of spill stores.
    pub spill_stores: u64,
    /// Bytes of spill loads.
    pub spill_loads: u64,
}

/// The result of assembling one module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssembleReport {
    /// The `-arch` used.
    pub arch: String,
    /// Per-function statistics, in the order ptxas printed them.
    pub functions: Vec<FunctionStats>,
    /// The cubin.
    pub cubin: Vec<u8>,
    /// ptxas's combined output.
    pub log: String,
}

impl AssembleReport {
    /// Spill-store bytes over all functions.
    pub fn spill_stores(&self) -> u64 {
        self.functions.iter().map(|f| f.spill_stores).sum()
    }
    /// Spill-load bytes over all functions.
    pub fn spill_loads(&self) -> u64 {
        self.functions.iter().map(|f| f.spill_loads).sum()
    }
    /// The most registers any function uses.
    pub fn max_registers(&self) -> u32 {
        self.functions
            .iter()
            .map(|f| f.registers)
            .max()
            .unwrap_or(0)
    }
}

/// The `ptxas` to use: `$TENSORWASM_PTXAS` if it names a file, else the first `ptxas` on `PATH`.
pub fn find_ptxas() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TENSORWASM_PTXAS").map(PathBuf::from)
        && p.is_file()
    {
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ptxas"))
        .find(|p| p.is_file())
}

fn valid_arch(arch: &str) -> bool {
    let Some(rest) = arch.strip_prefix("sm_") else {
        return false;
    };
    let digits = rest.trim_end_matches(['a', 'f']);
    !digits.is_empty()
        && digits.len() <= 3
        && digits.chars().all(|c| c.is_ascii_digit())
        && rest.len() - digits.len() <= 1
}

/// Assembles `ptx` for `arch` (`sm_80`) with the `ptxas` that [`find_ptxas`] finds.
pub fn assemble(ptx: &str, arch: &str) -> Result<AssembleReport> {
    let ptxas = find_ptxas().ok_or(Error::PtxasNotFound)?;
    assemble_with(&ptxas, ptx, arch)
}

/// Assembles `ptx` for `arch` with the given `ptxas` binary.
pub fn assemble_with(ptxas: &Path, ptx: &str, arch: &str) -> Result<AssembleReport> {
    if !valid_arch(arch) {
        return Err(Error::Unsupported(format!("ptxas arch {arch:?}")));
    }
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("kernel.ptx");
    let output = dir.path().join("kernel.cubin");
    std::fs::write(&input, ptx)?;
    let out = Command::new(ptxas)
        .arg(format!("-arch={arch}"))
        .arg("-v")
        .arg("-o")
        .arg(&output)
        .arg(&input)
        .output()?;
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(Error::Ptxas {
            ptxas: ptxas.to_path_buf(),
            arch: arch.to_string(),
            status: out.status.to_string(),
            log,
        });
    }
    let cubin = std::fs::read(&output)?;
    Ok(AssembleReport {
        arch: arch.to_string(),
        functions: parse_verbose(&log),
        cubin,
        log,
    })
}

/// The number just before `unit` in `line` (`"12 bytes spill stores"` → 12).
fn number_before(line: &str, unit: &str) -> Option<u64> {
    let head = &line[..line.find(unit)?];
    head.split(|c: char| !c.is_ascii_digit())
        .rfind(|s| !s.is_empty())?
        .parse()
        .ok()
}

/// Parses the statistics of `ptxas -v` output.
pub fn parse_verbose(log: &str) -> Vec<FunctionStats> {
    let mut out: Vec<FunctionStats> = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap_or_default();
            out.push(FunctionStats {
                name: name.to_string(),
                ..FunctionStats::default()
            });
            continue;
        }
        let Some(f) = out.last_mut() else { continue };
        if line.contains("bytes spill stores") {
            f.stack_frame = number_before(line, " bytes stack frame").unwrap_or(0);
            f.spill_stores = number_before(line, " bytes spill stores").unwrap_or(0);
            f.spill_loads = number_before(line, " bytes spill loads").unwrap_or(0);
        } else if line.contains("Used ") && line.contains(" registers") {
            let regs = number_before(line, " registers").unwrap_or(0);
            f.registers = u32::try_from(regs).unwrap_or(u32::MAX);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_verbose_output() {
        let log = "ptxas info    : 0 bytes gmem\n\
                   ptxas info    : Compiling entry function 'k' for 'sm_75'\n\
                   ptxas info    : Function properties for k\n    \
                   8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads\n\
                   ptxas info    : Used 29 registers, used 0 barriers, 364 bytes cmem[0]\n";
        let f = parse_verbose(log);
        assert_eq!(
            f,
            vec![FunctionStats {
                name: "k".into(),
                registers: 29,
                stack_frame: 8,
                spill_stores: 4,
                spill_loads: 12
            }]
        );
    }

    #[test]
    fn rejects_odd_arches() {
        assert!(valid_arch("sm_75") && valid_arch("sm_100") && valid_arch("sm_90a"));
        for bad in ["", "sm_", "compute_80", "sm_80 -O0", "sm_8x", "sm_90af"] {
            assert!(!valid_arch(bad), "{bad}");
        }
    }
}
