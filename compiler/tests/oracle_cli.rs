//! `tensorwasm oracle` run as a kernel author runs it: a passing sample, the deliberately buggy
//! kernel (exit 1, a shrunk counterexample, and a seed that replays it), and every input error
//! (exit 2, a message naming the file and the field or line, never a panic).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/oracle");

fn sample(rel: &str) -> String {
    format!("{SAMPLES}/{rel}")
}

fn tw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tensorwasm"))
        .arg("oracle")
        .args(args)
        .output()
        .expect("run tensorwasm")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The arguments checking `ptx`/`entry` against `export` of `wat` with `plan`.
fn args(export: &str, wat: &str, ptx: &str, entry: &str, plan: &str) -> Vec<String> {
    [
        "--wasm", wat, "--export", export, "--ptx", ptx, "--entry", entry, "--plan", plan,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn vadd() -> Vec<String> {
    args(
        "vadd",
        &sample("vadd/vadd.wat"),
        &sample("vadd/vadd.ptx"),
        "vadd",
        &sample("vadd/plan.toml"),
    )
}

fn saxpy_fma() -> Vec<String> {
    args(
        "saxpy",
        &sample("saxpy/saxpy.wat"),
        &sample("buggy/saxpy_fma.ptx"),
        "saxpy_fma",
        &sample("saxpy/plan.toml"),
    )
}

fn run(a: &[String], extra: &[&str]) -> Output {
    let mut all: Vec<&str> = a.iter().map(String::as_str).collect();
    all.extend_from_slice(extra);
    tw(&all)
}

#[test]
fn a_correct_kernel_passes() {
    let a = vadd();
    let out = run(&a, &["--cases", "200", "--seed", "7"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with(
            "PASS: kernel `vadd` against the wasmtime reference on the interpreter backend"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("cases: 200 of 200"), "{stdout}");
    assert!(stdout.contains("seed: 0x7"), "{stdout}");

    let out = run(&a, &["--cases", "50", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["verdict"]["result"], "pass");
    assert_eq!(v["cases_run"], 50);
    assert_eq!(v["backend"], "interpreter");
    assert!(v["seed"].is_u64(), "a fresh seed is reported: {v}");
    assert!(v["replay"].is_null());
}

/// The counterexample part of a text report (from the failure line to the background line),
/// which a replay must reproduce exactly.
fn counterexample(stdout: &str) -> String {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("counterexample"))
        .skip(1)
        .take_while(|l| !l.starts_with("  replay:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_fused_multiply_add_is_reported_shrunk_and_replayable() {
    let out = run(&saxpy_fma(), &["--seed", "12345"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("FAIL: kernel `saxpy_fma`"), "{stdout}");
    assert!(
        stdout.contains("  memory differs at y[0] (address 0x"),
        "{stdout}"
    );
    assert!(
        stdout.contains("    n = 1 (size)"),
        "shrunk to one element: {stdout}"
    );
    assert!(
        stdout.contains("memory outside the buffers: zero"),
        "{stdout}"
    );
    let cx = counterexample(&stdout);
    assert!(
        cx.contains("expected") && cx.contains("kernel wrote"),
        "{cx}"
    );

    // The printed replay command carries the failing case's seed.
    let replay = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("tensorwasm oracle "))
        .expect("replay command");
    let seed = replay.rsplit("--seed ").next().unwrap().trim().to_string();
    assert!(
        stdout.contains(&format!("replay: --seed {seed}")),
        "{stdout}"
    );
    let again = run(&saxpy_fma(), &["--seed", &seed, "--cases", "1"]);
    let again_out = text(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{again_out}");
    assert!(again_out.contains("counterexample (case 0,"), "{again_out}");
    assert_eq!(
        counterexample(&again_out),
        cx,
        "the replay reproduces the counterexample"
    );

    let out = run(&saxpy_fma(), &["--seed", &seed, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["verdict"]["result"], "fail");
    assert_eq!(v["verdict"]["failure"]["kind"], "mismatch");
    assert_eq!(v["verdict"]["failure"]["location"], "y[0]");
    assert!(
        v["replay"]
            .as_str()
            .unwrap()
            .ends_with(&format!("--seed {seed}"))
    );
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

/// Requires exit status 2 with `needle` in stderr.
fn input_error(a: &[String], needle: &str) {
    let out = run(a, &["--cases", "5"]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{a:?}: {stderr}{}",
        text(&out.stdout)
    );
    assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn input_errors_exit_2_and_name_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (wat, ptx, plan) = (
        sample("saxpy/saxpy.wat"),
        sample("saxpy/saxpy.ptx"),
        sample("saxpy/plan.toml"),
    );
    let with = |wat: &str, export: &str, ptx: &str, entry: &str, plan: &str| {
        args(export, wat, ptx, entry, plan)
    };
    let plan_text = std::fs::read_to_string(&plan).unwrap();

    // Plans.
    let bad = write(
        d,
        "syntax.toml",
        &plan_text.replacen("name = \"x\"", "name = x", 1),
    );
    input_error(
        &with(&wat, "saxpy", &ptx, "saxpy", &bad),
        "syntax.toml: TOML syntax error at line 4, column 8",
    );
    let bad = write(
        d,
        "elem.toml",
        &plan_text.replacen("elem = \"f32\"", "elem = \"f16\"", 1),
    );
    input_error(
        &with(&wat, "saxpy", &ptx, "saxpy", &bad),
        "elem.toml: param[0].elem: unknown element type \"f16\"",
    );
    let bad = write(
        d,
        "len.toml",
        &plan_text.replacen("len = \"n\"", "len = \"n * m\"", 1),
    );
    input_error(
        &with(&wat, "saxpy", &ptx, "saxpy", &bad),
        "len.toml: param[0].len: unknown size `m` in `n * m`",
    );
    let bad = write(
        d,
        "args.toml",
        &plan_text.replace(
            "args = [\"x\", \"y\", \"alpha\", \"n\"]",
            "args = [\"x\", \"y\", \"n\"]",
        ),
    );
    input_error(
        &with(&wat, "saxpy", &ptx, "saxpy", &bad),
        "args.toml: kernel.args: 3 arguments, but entry `saxpy` takes 4 parameters",
    );
    let bad = write(
        d,
        "order.toml",
        &plan_text.replace(
            "args = [\"x\", \"y\", \"alpha\", \"n\"]",
            "args = [\"x\", \"y\", \"n\", \"alpha\"]",
        ),
    );
    input_error(
        &with(&wat, "saxpy", &ptx, "saxpy", &bad),
        "order.toml: kernel.args[2]: parameter `n` cannot fill PTX parameter `saxpy_param_2` of type .f32",
    );
    input_error(
        &with(&sample("vadd/vadd.wat"), "vadd", &ptx, "saxpy", &plan),
        "plan.toml: param[2].type: `alpha` is f32 in the plan but i32 in the reference function",
    );
    input_error(
        &with(
            &wat,
            "saxpy",
            &ptx,
            "saxpy",
            &d.join("none.toml").display().to_string(),
        ),
        "none.toml: cannot read",
    );

    // PTX.
    let bad = write(
        d,
        "parse.ptx",
        ".version 8.0\n.target sm_75\n.address_size 64\n.visible .entry saxpy(\n  .param .u64 x,\n  .param .u64 y\n{\n}\n",
    );
    input_error(
        &with(&wat, "saxpy", &bad, "saxpy", &plan),
        "parse.ptx: parse error at line 7",
    );
    input_error(
        &with(&wat, "saxpy", &ptx, "saxpy2", &plan),
        "saxpy.ptx: no kernel entry named `saxpy2`",
    );
    let ptx_text = std::fs::read_to_string(&ptx).unwrap();
    let bad = write(
        d,
        "implicit.ptx",
        &ptx_text.replace("add.rn.f32", "add.f32"),
    );
    input_error(
        &with(&wat, "saxpy", &bad, "saxpy", &plan),
        "implicit.ptx: unsupported at line 45: `add.f32` without a rounding modifier",
    );

    // Reference modules.
    input_error(
        &with(&wat, "saxpy_", &ptx, "saxpy", &plan),
        "saxpy.wat: the module has no exported function `saxpy_` (it exports: saxpy)",
    );
    let bad = write(
        d,
        "hidden.wat",
        "(module (memory 1) (func (export \"f\") (param i32)))",
    );
    input_error(
        &with(&bad, "f", &ptx, "saxpy", &plan),
        "hidden.wat: memory 0 is not exported",
    );
    let bad = write(
        d,
        "import.wat",
        "(module (import \"env\" \"g\" (func)) (memory (export \"m\") 1) (func (export \"f\") (param i32)))",
    );
    input_error(
        &with(&bad, "f", &ptx, "saxpy", &plan),
        "import.wat: the module imports `env::g`",
    );
    let bad = write(
        d,
        "invalid.wat",
        "(module (func (export \"f\") (result i32)))",
    );
    input_error(&with(&bad, "f", &ptx, "saxpy", &plan), "invalid.wat");
    let spin = write(
        d,
        "spin.wat",
        "(module (memory (export \"memory\") 1) (func (export \"saxpy\") (param i32 i32 f32 i32) (loop $l (br $l))))",
    );
    input_error(
        &with(&spin, "saxpy", &ptx, "saxpy", &plan),
        "spin.wat: `saxpy` ran out of fuel",
    );

    // Usage.
    let out = run(
        &with(&wat, "saxpy", &ptx, "saxpy", &plan),
        &["--cases", "0"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = run(
        &with(&wat, "saxpy", &ptx, "saxpy", &plan),
        &["--seed", "0xzz"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`0xzz` is not a seed"),
        "{}",
        text(&out.stderr)
    );

    // --json reports errors as JSON too.
    let out = run(&with(&wat, "saxpy", &ptx, "saxpy2", &plan), &["--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["result"], "error");
}

#[test]
fn the_cuda_backend_runs_the_same_check_or_says_why_not() {
    let a = vadd();
    let out = run(&a, &["--cases", "50", "--seed", "7", "--backend", "cuda"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    if !tensorwasm_oracle::CudaBackend::library_present() {
        // No NVIDIA driver on this host: an input error naming the cause, never a panic.
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        assert!(
            stderr.contains("--backend cuda: CUDA: libcuda is not installed"),
            "{stderr}"
        );
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("on the cuda backend"), "{stdout}");
    // The fused multiply-add is just as wrong on the hardware.
    let out = run(&saxpy_fma(), &["--seed", "12345", "--backend", "cuda"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
}

#[test]
fn an_unknown_backend_is_a_usage_error() {
    let out = run(&saxpy_fma(), &["--backend", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid value 'tpu'"),
        "{}",
        text(&out.stderr)
    );
}
