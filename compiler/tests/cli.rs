//! End-to-end tests of the `tensorwasm` command line, run as a user would run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

#[path = "common/cases.rs"]
mod cases;
#[path = "common/resign.rs"]
mod resign;

const ARITH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/wat/arith.wat");
const HELLO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/wat/hello-wasi.wat");

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        env.ok(&["keygen", "--out", &env.path("k")]);
        env
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn tw(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tensorwasm"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .expect("run tensorwasm")
    }

    /// `tensorwasm build INPUT -o OUT --key k.key EXTRA...`, whatever its outcome.
    fn try_build(&self, input: &str, out: &str, extra: &[&str]) -> Output {
        let key = self.path("k.key");
        let mut args = vec!["build", input, "-o", out, "--key", &key];
        args.extend_from_slice(extra);
        self.tw(&args)
    }

    /// Runs and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.tw(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and requires exit status 1 with `needle` in stderr; returns stderr.
    fn fails(&self, args: &[&str], needle: &str) -> String {
        let out = self.tw(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} should fail; stderr: {stderr}"
        );
        assert!(
            stderr.contains(needle),
            "{args:?}: expected `{needle}` in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }

    /// Builds `input` into `out` in the temp dir, quietly, and requires success; returns the
    /// bundle's path.
    fn build(&self, input: &str, out: &str, extra: &[&str]) -> String {
        let out = self.path(out);
        let mut args = vec!["--quiet"];
        args.extend_from_slice(extra);
        let built = self.try_build(input, &out, &args);
        assert!(
            built.status.success(),
            "build {input} failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        out
    }

    fn run_invoke(&self, bundle: &str, export: &str, json: &str) -> Output {
        self.tw(&[
            "run",
            bundle,
            "--trusted",
            &self.path("k.pub"),
            "--invoke",
            export,
            "--args",
            json,
        ])
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .collect();
        v.sort();
        v
    }
}

/// A supported target that is not this machine's.
fn other_target() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "x86_64-unknown-linux-gnu"
    } else {
        "aarch64-unknown-linux-gnu"
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn keygen_writes_a_private_key_and_a_public_key_with_its_id() {
    let env = Env::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path("k.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let public = std::fs::read_to_string(env.path("k.pub")).unwrap();
    assert!(public.starts_with("tensorwasm-public-key v1 "), "{public}");
    env.fails(
        &["keygen", "--out", &env.path("k")],
        "already exists; pass --force",
    );
    env.ok(&["keygen", "--out", &env.path("k"), "--force"]);
    assert_ne!(public, std::fs::read_to_string(env.path("k.pub")).unwrap());
}

#[test]
fn build_verify_inspect_and_invoke_from_the_bundle() {
    let env = Env::new();
    let bundle = env.build(ARITH, "arith.twb", &["--name", "arith", "--version", "7"]);
    let verified = env.ok(&["verify", &bundle, "--trusted", &env.path("k.pub")]);
    assert!(verified.starts_with("OK: "), "{verified}");
    assert!(verified.contains("arith v7"), "{verified}");

    let text = env.ok(&["inspect", &bundle]);
    for needle in [
        "name     arith v7",
        "add: func (i32, i32) -> (i32)",
        "scale: func (f32, f32) -> (f32)",
        "memory: memory",
        "code",
        "trust not checked",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    let json: Value = serde_json::from_str(&env.ok(&[
        "inspect",
        &bundle,
        "--json",
        "--trusted",
        &env.path("k.pub"),
    ]))
    .unwrap();
    assert_eq!(json["version"], 7);
    assert_eq!(json["signatures"][0]["trusted"], true);
    assert_eq!(json["sections"][0]["kind"], "wasm");
    assert_eq!(json["sections"][1]["kind"], "code");

    assert_eq!(stdout(&env.run_invoke(&bundle, "add", "[1, 2]")), "[3]");
    assert_eq!(
        stdout(&env.run_invoke(&bundle, "add", "[4294967295, 1]")),
        "[0]"
    );
    assert_eq!(
        stdout(&env.run_invoke(&bundle, "scale", "[0.5, 3]")),
        "[1.5]"
    );
    assert_eq!(
        stdout(&env.run_invoke(&bundle, "scale", "[\"inf\", -1]")),
        "[\"-inf\"]"
    );
    assert_eq!(
        stdout(&env.run_invoke(&bundle, "mul_wide", "[4294967296, 3]")),
        "[12884901888]"
    );
    assert_eq!(
        stdout(&env.run_invoke(&bundle, "sum_bytes", "[0, 16]")),
        "[0]"
    );
}

#[test]
fn f32_arguments_are_lowered_as_f32() {
    let env = Env::new();
    let bundle = env.build(ARITH, "arith.twb", &[]);
    // 0.1 as f32 times 3 as f32, rounded to f32: not the f64 product 0.30000000000000004.
    let expect = format!("[{}]", 0.1f32 * 3.0f32);
    assert_eq!(
        stdout(&env.run_invoke(&bundle, "scale", "[0.1, 3]")),
        expect
    );
}

#[test]
fn build_json_summary_is_machine_readable() {
    let env = Env::new();
    let out = env.path("a.twb");
    let json: Value = serde_json::from_str(&env.ok(&[
        "build",
        ARITH,
        "-o",
        &out,
        "--key",
        &env.path("k.key"),
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["name"], "arith");
    assert_eq!(json["targets"].as_array().unwrap().len(), 1);
    assert!(json["bundle_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        json["bundle_bytes"].as_u64().unwrap(),
        std::fs::metadata(&out).unwrap().len()
    );
}

#[test]
fn wasi_commands_get_stdio_arguments_and_their_exit_code() {
    let env = Env::new();
    let bundle = env.build(HELLO, "hello.twb", &[]);
    let pubkey = env.path("k.pub");
    let out = env.tw(&["run", &bundle, "--trusted", &pubkey]);
    assert_eq!(stdout(&out), "hello, stranger");
    assert_eq!(out.status.code(), Some(0));
    let out = env.tw(&["run", &bundle, "--trusted", &pubkey, "--", "world", "again"]);
    assert_eq!(stdout(&out), "hello, world");
    assert_eq!(out.status.code(), Some(2));
    // A plain module runs too, compiled in-process.
    let out = env.tw(&["run", HELLO, "--", "text"]);
    assert_eq!(stdout(&out), "hello, text");
}

#[test]
fn same_inputs_give_byte_identical_bundles() {
    let env = Env::new();
    let key = env.path("k.key");
    let build = |out: &str| {
        let out = env.path(out);
        let status = Command::new(env!("CARGO_BIN_EXE_tensorwasm"))
            .args([
                "build",
                ARITH,
                "-o",
                &out,
                "--key",
                &key,
                "--quiet",
                "--expires",
                "30d",
            ])
            .env("SOURCE_DATE_EPOCH", "1790000000")
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(out).unwrap()
    };
    let a = build("a.twb");
    let b = build("b.twb");
    assert!(a == b, "two builds differ");
    let json: Value =
        serde_json::from_str(&env.ok(&["inspect", &env.path("a.twb"), "--json"])).unwrap();
    assert_eq!(json["created_at"], 1_790_000_000u64);
    assert_eq!(json["expires_at"], 1_790_000_000u64 + 30 * 86_400);
}

#[test]
fn one_bundle_carries_code_for_several_targets() {
    let env = Env::new();
    let other = other_target();
    let bundle = env.build(ARITH, "multi.twb", &["--target", other, "--target", "host"]);
    let json: Value = serde_json::from_str(&env.ok(&["inspect", &bundle, "--json"])).unwrap();
    let triples: Vec<&str> = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["triple"].as_str().unwrap())
        .collect();
    assert_eq!(triples.len(), 2, "{triples:?}");
    assert_eq!(triples[0], other);
    assert_eq!(stdout(&env.run_invoke(&bundle, "add", "[20, 22]")), "[42]");

    let foreign = env.build(ARITH, "foreign.twb", &["--target", other]);
    let err = env.fails(
        &[
            "run",
            &foreign,
            "--trusted",
            &env.path("k.pub"),
            "--invoke",
            "add",
            "--args",
            "[1,2]",
        ],
        "bundle has no code for this host",
    );
    assert!(
        err.contains(other) && err.contains("tensorwasm build SOURCE --target"),
        "{err}"
    );
}

#[test]
fn malformed_and_unknown_inputs_are_refused_with_the_offset_and_no_output() {
    let env = Env::new();
    let key = env.path("k.key");
    let out = env.path("out.twb");
    let before = env.files();
    let bad = env.write(
        "bad.wasm",
        &[0, b'a', b's', b'm', 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 0x0a],
    );
    env.fails(&["build", &bad, "-o", &out, "--key", &key], "offset 0x");
    let invalid = env.write("invalid.wat", b"(module (func (result i32) f32.const 1))");
    env.fails(
        &["build", &invalid, "-o", &out, "--key", &key],
        "invalid Wasm module: type mismatch",
    );
    let text = env.write("typo.wat", b"(module (func (i32.bogus)))");
    env.fails(&["build", &text, "-o", &out, "--key", &key], "typo.wat:1:");
    let elf = env.write("prog.bin", b"\x7fELF\x02\x01\x01");
    env.fails(
        &["build", &elf, "-o", &out, "--key", &key],
        "unknown file type",
    );
    env.fails(
        &[
            "build",
            &env.path("missing.wasm"),
            "-o",
            &out,
            "--key",
            &key,
        ],
        "cannot read",
    );
    env.fails(
        &["build", ARITH, "-o", &out, "--key", &env.path("nokey.key")],
        "cannot read key",
    );
    env.fails(
        &["build", ARITH, "-o", &out, "--key", &env.path("k.pub")],
        "is not a tensorwasm secret key",
    );
    env.fails(
        &[
            "build",
            ARITH,
            "-o",
            &out,
            "--key",
            &key,
            "--expires",
            "soon",
        ],
        "invalid --expires",
    );
    env.fails(
        &[
            "build",
            ARITH,
            "-o",
            &out,
            "--key",
            &key,
            "--target",
            "nonsense-triple",
        ],
        "--target",
    );
    env.fails(
        &[
            "build",
            ARITH,
            "-o",
            &env.path("no/such/dir/out.twb"),
            "--key",
            &key,
        ],
        "out.twb",
    );
    let added: Vec<_> = env
        .files()
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    let names: Vec<String> = added
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["bad.wasm", "invalid.wat", "prog.bin", "typo.wat"],
        "no output or temp file may be left"
    );
}

#[test]
fn bundles_are_refused_unless_signed_by_a_trusted_key_and_intact() {
    let env = Env::new();
    let bundle = env.build(ARITH, "arith.twb", &[]);
    env.ok(&["keygen", "--out", &env.path("other")]);
    let other = env.path("other.pub");
    env.fails(
        &["verify", &bundle, "--trusted", &other],
        "verification failed",
    );
    env.fails(
        &[
            "run",
            &bundle,
            "--trusted",
            &other,
            "--invoke",
            "add",
            "--args",
            "[1,2]",
        ],
        "no signature by a trusted key",
    );
    env.fails(
        &["run", &bundle, "--invoke", "add", "--args", "[1,2]"],
        "pass --trusted",
    );
    env.fails(
        &["verify", &bundle, "--trusted", &env.path("k.key")],
        "is not a tensorwasm public key",
    );

    let bytes = std::fs::read(&bundle).unwrap();
    let truncated = env.write("truncated.twb", &bytes[..bytes.len() - 10]);
    env.fails(
        &["verify", &truncated, "--trusted", &env.path("k.pub")],
        "verification failed",
    );
    let mut tampered = bytes.clone();
    let last = tampered.len() - 3;
    tampered[last] ^= 0x40;
    let tampered = env.write("tampered.twb", &tampered);
    env.fails(
        &["verify", &tampered, "--trusted", &env.path("k.pub")],
        "verification failed",
    );
    env.fails(
        &[
            "run",
            &tampered,
            "--trusted",
            &env.path("k.pub"),
            "--invoke",
            "add",
            "--args",
            "[1,2]",
        ],
        "hash",
    );
    env.fails(
        &["verify", ARITH, "--trusted", &env.path("k.pub")],
        "not a .twb bundle",
    );
}

#[test]
fn expired_bundles_are_refused() {
    let env = Env::new();
    let bundle = env.build(ARITH, "old.twb", &["--expires", "2001-01-01"]);
    env.fails(
        &["verify", &bundle, "--trusted", &env.path("k.pub")],
        "expired",
    );
    env.fails(
        &[
            "run",
            &bundle,
            "--trusted",
            &env.path("k.pub"),
            "--invoke",
            "add",
            "--args",
            "[1,2]",
        ],
        "expired",
    );
}

#[test]
fn bad_invocations_get_clear_errors() {
    let env = Env::new();
    let bundle = env.build(ARITH, "arith.twb", &[]);
    let pubkey = env.path("k.pub");
    let fails = |export: &str, args: &str, needle: &str| {
        env.fails(
            &[
                "run",
                &bundle,
                "--trusted",
                &pubkey,
                "--invoke",
                export,
                "--args",
                args,
            ],
            needle,
        )
    };
    fails(
        "nope",
        "[]",
        "export `nope` not found; function exports: add(i32, i32) -> (i32)",
    );
    fails(
        "memory",
        "[]",
        "export `memory` is a memory, not a function",
    );
    fails(
        "add",
        "[1]",
        "`add` takes 2 argument(s) (i32, i32), but 1 were given",
    );
    fails("add", "[1, \"x\"]", "argument 1 of `add`: expected i32");
    fails("add", "[1, 2", "arguments must be a JSON array");
    fails("add", "{\"a\": 1}", "arguments must be a JSON array");
    fails("scale", "[1, true]", "argument 1 of `scale`: expected f32");
    env.fails(
        &["run", &bundle, "--trusted", &pubkey],
        "not a WASI command",
    );
}

#[test]
fn guests_that_trap_loop_or_hog_memory_are_stopped() {
    let env = Env::new();
    let bundle = env.build(ARITH, "arith.twb", &[]);
    let pubkey = env.path("k.pub");
    env.fails(
        &[
            "run",
            &bundle,
            "--trusted",
            &pubkey,
            "--invoke",
            "div",
            "--args",
            "[1, 0]",
        ],
        "integer divide by zero",
    );
    env.fails(
        &[
            "run",
            &bundle,
            "--trusted",
            &pubkey,
            "--invoke",
            "sum_bytes",
            "--args",
            "[65530, 100]",
        ],
        "out of bounds",
    );
    let started = std::time::Instant::now();
    env.fails(
        &[
            "run",
            &bundle,
            "--trusted",
            &pubkey,
            "--invoke",
            "spin",
            "--timeout",
            "300ms",
        ],
        "wall-time limit",
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let out = env.tw(&[
        "run",
        &bundle,
        "--trusted",
        &pubkey,
        "--invoke",
        "grow",
        "--args",
        "[4]",
        "--max-memory",
        "128KiB",
    ]);
    assert_eq!(
        stdout(&out),
        "[-1]",
        "memory.grow past the limit returns -1"
    );
    let out = env.tw(&[
        "run",
        &bundle,
        "--trusted",
        &pubkey,
        "--invoke",
        "grow",
        "--args",
        "[1]",
        "--max-memory",
        "128KiB",
    ]);
    assert_eq!(stdout(&out), "[1]");
    env.fails(
        &[
            "run",
            &bundle,
            "--trusted",
            &pubkey,
            "--invoke",
            "add",
            "--args",
            "[1,2]",
            "--max-memory",
            "1KiB",
        ],
        "over the limit",
    );
    env.fails(
        &[
            "run",
            &bundle,
            "--trusted",
            &pubkey,
            "--invoke",
            "add",
            "--timeout",
            "soon",
        ],
        "invalid --timeout",
    );
}

#[test]
fn usage_errors_exit_with_status_2() {
    let env = Env::new();
    let out = env.tw(&["build", ARITH]);
    assert_eq!(out.status.code(), Some(2));
    let help = env.ok(&["run", "--help"]);
    assert!(
        help.contains("--invoke") && help.contains("Examples"),
        "{help}"
    );
    let _ = Path::new(ARITH);
}

#[test]
fn analyze_reports_every_loop_and_inspect_prints_the_ir() {
    let env = Env::new();
    let text = env.ok(&["analyze", ARITH]);
    assert!(text.contains("loop nests"), "{text}");
    assert!(text.contains("function 4 loop0"), "{text}");
    let json: Value = serde_json::from_str(&env.ok(&["analyze", ARITH, "--json"])).unwrap();
    assert_eq!(json["loops"], 2, "sum_bytes and spin each have one loop");
    let ir = env.ok(&["inspect", "--ir", ARITH, "--func", "0"]);
    assert!(ir.starts_with("function 0"), "{ir}");
    env.fails(
        &["inspect", "--ir", ARITH, "--func", "99"],
        "no defined function 99",
    );
    let bad = env.write(
        "bad.wasm",
        &[0, b'a', b's', b'm', 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 0x0a],
    );
    env.fails(&["analyze", &bad], "offset 0x");
}

#[test]
fn analyze_json_prints_a_candidate_with_its_polynomials() {
    // A candidate's plan holds polynomials (addresses, ranges, trip counts): they must reach
    // JSON as their printed form, not fail the serializer.
    let env = Env::new();
    let vadd = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../samples/wasm/bare/vadd.wasm"
    );
    let json: Value = serde_json::from_str(&env.ok(&["analyze", vadd, "--json"])).unwrap();
    assert_eq!(json["candidates"], 1, "{json}");
    let plan = &json["plan"]["nests"][0]["verdict"]["Candidate"];
    let addrs: Vec<&str> = plan["accesses"]
        .as_array()
        .expect("accesses")
        .iter()
        .map(|a| a["addr"].as_str().expect("addr is a string"))
        .collect();
    assert!(addrs.iter().all(|a| a.contains("8*k0")), "{addrs:?}");
    let store = plan["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["writes"] == true)
        .expect("a written group");
    let range = store["range"].as_array().expect("range");
    assert_eq!(range.len(), 2, "{store}");
    assert!(
        range[1].as_str().expect("string").ends_with("8*T0"),
        "{store}"
    );
}

#[test]
fn a_closed_stdout_ends_quietly_not_in_a_panic() {
    // `tensorwasm inspect --ir BIG.wasm | head`: the reader goes away while the IR (hundreds of
    // KiB, more than a pipe holds) is being written.
    let wasm = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../samples/wasm/wasi/matmul.wasm"
    );
    for args in [
        vec!["inspect", "--ir", wasm],
        vec!["analyze", "--json", wasm],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tensorwasm"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
    }
}

#[test]
fn a_failing_stdout_is_an_error() {
    // Any other write error (here: no space left on /dev/full) is reported, exit status 1.
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full on this host");
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_tensorwasm"))
        .args(["analyze", ARITH])
        .stdout(full)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write to standard output"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn wasi_preopens_and_environment_are_checked() {
    let env = Env::new();
    let bundle = env.build(HELLO, "hello.twb", &[]);
    let pubkey = env.path("k.pub");
    let data = env.path("data");
    std::fs::create_dir(&data).unwrap();
    let guest_dir = format!("{data}::/data");
    let out = env.tw(&[
        "run",
        &bundle,
        "--trusted",
        &pubkey,
        "--dir",
        &guest_dir,
        "--env",
        "A=1",
        "--",
        "x",
    ]);
    assert_eq!(stdout(&out), "hello, x");
    let missing = format!("{}::/data", env.path("missing"));
    env.fails(
        &["run", &bundle, "--trusted", &pubkey, "--dir", &missing],
        "cannot preopen directory",
    );
    env.fails(
        &["run", &bundle, "--trusted", &pubkey, "--env", "NOEQUALS"],
        "invalid --env",
    );
}

const WASI_SAXPY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../samples/wasm/wasi/saxpy.wasm"
);

/// `tensorwasm run BUNDLE --trusted k.pub --backend BACKEND --stats EXTRA…`.
fn run_on(env: &Env, bundle: &str, backend: &str, extra: &[&str]) -> Output {
    let trusted = env.path("k.pub");
    let mut args = vec![
        "run",
        bundle,
        "--trusted",
        &trusted,
        "--backend",
        backend,
        "--stats",
    ];
    args.extend_from_slice(extra);
    env.tw(&args)
}

#[test]
fn offloaded_bundles_run_on_each_backend_with_the_same_output() {
    let env = Env::new();
    let key = env.path("k.key");
    let out = env.path("saxpy.twb");
    let built = env.try_build(WASI_SAXPY, &out, &["--oracle-cases", "100"]);
    let report = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{report}");
    assert!(report.contains("kernels in the bundle: "), "{report}");
    assert!(
        report.contains("tw_f6_loop2: function 6 loop at 0x28b: dispatches to the GPU"),
        "{report}"
    );
    assert!(
        report.contains("oracle: 100 cases on the interpreter"),
        "{report}"
    );
    // Its grid is a constant 2048 threads, so no case reaches the launch threshold; libc's
    // memcpy (a variable grid) gets 3 more cases at launch size.
    assert!(report.contains("largest grid 2048 threads"), "{report}");
    assert!(report.contains("oracle: 103 cases"), "{report}");
    let listed = env.ok(&["inspect", &out, "--trusted", &env.path("k.pub")]);
    assert!(
        listed.contains("tw_f6_loop2  function 6 loop at 0x28b"),
        "{listed}"
    );
    // The signed evidence of each kernel.
    assert!(
        listed.contains("evidence: 100 cases on the interpreter (100 ran the kernel), largest grid 2048 threads, seed 0x"),
        "{listed}"
    );
    assert!(listed.contains(", by tensorwasm "), "{listed}");

    let expected = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../samples/wasm/wasi/saxpy.stdout"
    ))
    .expect("expected stdout");
    let run = |backend: &str| run_on(&env, &out, backend, &["--min-threads", "1"]);
    let emulated = run("emulated");
    let stats = String::from_utf8_lossy(&emulated.stderr);
    assert!(emulated.status.success(), "{stats}");
    assert_eq!(emulated.stdout, expected);
    assert!(stats.contains("kernels (backend emulated):"), "{stats}");
    assert!(stats.contains("tw_f6_loop2: 1 dispatched"), "{stats}");
    let none = run("none");
    let stats = String::from_utf8_lossy(&none.stderr);
    assert_eq!(none.stdout, expected);
    assert!(stats.contains("tw_f6_loop2: 0 dispatched"), "{stats}");
    assert!(stats.contains("1 no-device"), "{stats}");

    env.fails(
        &[
            "run",
            &out,
            "--trusted",
            &env.path("k.pub"),
            "--backend",
            "gpu",
        ],
        "unknown backend `gpu`",
    );
    if !tensorwasm_oracle::CudaBackend::library_present() {
        env.fails(
            &[
                "run",
                &out,
                "--trusted",
                &env.path("k.pub"),
                "--backend",
                "cuda",
            ],
            "cannot use the cuda backend",
        );
    }
    // --no-offload: no kernel table, every loop on the CPU, the same output.
    let plain = env.path("plain.twb");
    env.ok(&[
        "build",
        WASI_SAXPY,
        "-o",
        &plain,
        "--key",
        &key,
        "--no-offload",
        "-q",
    ]);
    let listed = env.ok(&["inspect", &plain, "--trusted", &env.path("k.pub")]);
    assert!(listed.contains("kernels  none"), "{listed}");
    assert!(!listed.contains("rewritten-wasm"), "{listed}");
    let r = env.tw(&["run", &plain, "--trusted", &env.path("k.pub"), "--stats"]);
    assert_eq!(r.stdout, expected);
    // `tensorwasm oracle BUNDLE.twb` re-checks the shipped kernels.
    let pubkey = env.path("k.pub");
    let rechecked = env.ok(&[
        "oracle",
        &out,
        "--trusted",
        &pubkey,
        "--cases",
        "50",
        "--seed",
        "7",
    ]);
    assert!(
        rechecked.contains("tw_f6_loop2: oracle: 50 cases"),
        "{rechecked}"
    );
    assert!(
        rechecked.contains("kernels pass (replay: --seed 0x7)"),
        "{rechecked}"
    );
    let untrusted = env.tw(&["oracle", &out]);
    assert_eq!(untrusted.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&untrusted.stderr).contains("--trusted"));
    let none = env.ok(&[
        "oracle",
        &plain_for_oracle(&env, &key),
        "--trusted",
        &pubkey,
    ]);
    assert!(none.contains("no kernels"), "{none}");

    // Zero oracle cases is a usage error (exit 2): a kernel never ships unchecked.
    let zero = env.try_build(WASI_SAXPY, &plain, &["--oracle-cases", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--oracle-cases"));
}

/// The arith sample built into a bundle (no loops, so no kernels).
fn plain_for_oracle(env: &Env, key: &str) -> String {
    let out = env.path("arith-oracle.twb");
    env.ok(&["build", ARITH, "-o", &out, "--key", key, "-q"]);
    out
}

#[test]
fn a_module_the_offload_stages_cannot_handle_still_builds_without_kernels() {
    // It already imports from the dispatch module, so neither the oracle's outlining nor the
    // rewrite can add the imports; the loop stays on the CPU and the build says why.
    let env = Env::new();
    let wat = env.write(
        "clash.wat",
        br#"(module
  (import "tensorwasm:offload" "live_out" (func (param i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "inc") (param $p i32) (param $n i32)
    (local $i i32)
    (block (br_if 0 (i32.eqz (local.get $n)))
      (loop
        (i32.store (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))
          (i32.add (i32.const 1)
            (i32.load (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2))))))
        (br_if 0 (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                         (local.get $n)))))))"#,
    );
    let out = env.path("clash.twb");
    let built = env.tw(&["build", &wat, "-o", &out, "--key", &env.path("k.key")]);
    let report = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{report}");
    assert!(report.contains("kernels in the bundle: 0 of 1"), "{report}");
    assert!(
        report.contains("already imports from tensorwasm:offload"),
        "{report}"
    );
}

#[test]
fn oracle_of_a_bundle_whose_kernel_table_does_not_fit_its_module_is_an_input_error() {
    use tensorwasm_bundle::{BundleWriter, Manifest, SectionKind, SigningKey};
    use tensorwasm_guard::{Expr, OffloadKernel, OffloadTable, Trip};
    let env = Env::new();
    let key = SigningKey::from_file_text(&std::fs::read_to_string(env.path("k.key")).expect("key"))
        .expect("key file");
    let kernel = OffloadKernel {
        name: "tw_f99_loop0".into(),
        function: 99,
        block: [256, 1, 1],
        min_threads: 4096,
        trips: vec![Trip {
            lp: 0,
            num: Expr::default(),
            div: 1,
            exact: false,
            add: 0,
            wrap: vec![],
        }],
        grid: vec![0],
        ..Default::default()
    };
    let table = OffloadTable {
        kernels: vec![kernel],
    };
    let write_table = |name: &str, wasm: Option<&[u8]>, table: &OffloadTable| {
        let mut w = BundleWriter::new(Manifest {
            name: "odd".into(),
            version: 1,
            created_at: None,
            expires_at: None,
            tool: "test".into(),
            source_hash: [0; 32],
            exports: vec![],
            targets: vec![],
            sections: vec![],
        });
        if let Some(wasm) = wasm {
            w.add_section(SectionKind::Wasm, wasm).expect("section");
        }
        w.add_section(SectionKind::Offload, &table.to_json())
            .expect("section");
        env.write(name, &w.finish(&[&key]).expect("signed"))
    };
    let write = |name: &str, wasm: Option<&[u8]>| write_table(name, wasm, &table);
    let pubkey = env.path("k.pub");
    let no_wasm = write("no-wasm.twb", None);
    let out = env.tw(&["oracle", &no_wasm, "--trusted", &pubkey]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no wasm section"));
    let arith = wat::parse_str(std::fs::read_to_string(ARITH).expect("arith")).expect("wat");
    let wrong = write("wrong.twb", Some(&arith));
    let out = env.tw(&["oracle", &wrong, "--trusted", &pubkey]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("names function 99"), "{err}");
    // A signed table that is malformed is refused when it is read, naming the kernel and the
    // field (`run` and the daemon: `a_malformed_signed_kernel_table_is_refused_on_restore`).
    for (what, mutate, says) in [
        (
            "a grid loop past the loops",
            (|k: &mut OffloadKernel| k.grid = vec![5]) as fn(&mut OffloadKernel),
            "grid loops [5]",
        ),
        (
            "a block of 2048 threads",
            |k: &mut OffloadKernel| k.block = [2048, 1, 1],
            "block [2048, 1, 1]",
        ),
        (
            "a wrap check of 0 bits",
            |k: &mut OffloadKernel| {
                k.trips[0].wrap.push(tensorwasm_guard::WrapCheck {
                    base: Expr::default(),
                    strides: vec![],
                    signed: false,
                    bits: 0,
                    top: false,
                })
            },
            "trip count 0: 0 bits",
        ),
    ] {
        let mut bad = table.clone();
        mutate(&mut bad.kernels[0]);
        let file = write_table("malformed.twb", Some(&arith), &bad);
        {
            let cmd = ["oracle", &file, "--trusted", &pubkey];
            let out = env.tw(&cmd);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                matches!(out.status.code(), Some(c) if c != 0 && c != 101),
                "{what}: {cmd:?}: {err}"
            );
            assert!(
                err.contains("kernel 0 (tw_f99_loop0)") && err.contains(says),
                "{what}: {cmd:?}: {err}"
            );
        }
    }
}

/// A real bundle whose signed kernel table is malformed (signed again by the same key): `run`
/// refuses it when it restores the bundle, naming the kernel and the field, before any
/// dispatch; the daemon's deploy shares that restore.
#[test]
fn a_malformed_signed_kernel_table_is_refused_on_restore() {
    use tensorwasm_bundle::{SigningKey, TrustedKeys, VerifiedBundle};
    let env = Env::new();
    let out = env.build(WASI_SAXPY, "saxpy-table.twb", &["--oracle-cases", "20"]);
    let key = SigningKey::from_file_text(&std::fs::read_to_string(env.path("k.key")).expect("key"))
        .expect("key file");
    let public = tensorwasm_bundle::PublicKey::from_file_text(
        &std::fs::read_to_string(env.path("k.pub")).expect("pub"),
    )
    .expect("public key");
    let bytes = std::fs::read(&out).expect("bundle");
    let bundle = VerifiedBundle::open(&bytes, &TrustedKeys::new(vec![public]), u64::MAX / 2)
        .expect("verifies");
    let resign = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| -> String {
        env.write(name, &resign::with_table(&bundle, &key, edit))
    };
    let pubkey = env.path("k.pub");
    // Unchanged, it runs.
    let same = resign("same.twb", &|_| {});
    let ok = env.tw(&["run", &same, "--trusted", &pubkey]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for (what, edit, says) in [
        (
            "a grid loop past the loops",
            (|v: &mut serde_json::Value| v["kernels"][0]["grid"] = serde_json::json!([7]))
                as fn(&mut serde_json::Value),
            "grid loops [7]",
        ),
        (
            "an access of 3 bytes",
            |v: &mut serde_json::Value| v["kernels"][0]["accesses"][0]["width"] = 3.into(),
            "access 0: 3 bytes wide",
        ),
        (
            "an expression naming a missing argument",
            |v: &mut serde_json::Value| {
                v["kernels"][0]["live_outs"] = serde_json::json!([
                    {"local": 0, "ty": "i32", "value": {"terms": [[1, [{"arg": 99}]]]}}
                ])
            },
            "live-out 0: argument 99",
        ),
        (
            "two kernels of one name",
            |v: &mut serde_json::Value| {
                let k = v["kernels"][0].clone();
                v["kernels"].as_array_mut().expect("kernels").push(k);
            },
            "a second kernel of this name",
        ),
    ] {
        let file = resign("malformed.twb", &edit);
        let run = env.tw(&["run", &file, "--trusted", &pubkey]);
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(
            matches!(run.status.code(), Some(c) if c != 0 && c != 101),
            "{what}: {err}"
        );
        assert!(
            err.contains("offload section: kernel") && err.contains(says),
            "{what}: {err}"
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
}

#[test]
fn a_wasi_cuda_guest_runs_its_own_kernel_on_emulated_and_its_cpu_path_on_none() {
    let env = Env::new();
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../samples/wasm/cuda/saxpy_cuda.wasm"
    );
    let out = env.build(sample, "saxpy_cuda.twb", &["--oracle-cases", "20"]);
    let expected = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../samples/wasm/cuda/saxpy_cuda.stdout"
    ))
    .expect("expected stdout");
    let run = |backend: &str| run_on(&env, &out, backend, &[]);
    let emulated = run("emulated");
    let err = String::from_utf8_lossy(&emulated.stderr);
    assert!(emulated.status.success(), "{err}");
    assert_eq!(emulated.stdout, expected, "{err}");
    assert!(
        err.contains("ran on the device (wasi:cuda); matches the CPU bit for bit"),
        "{err}"
    );
    assert!(err.contains("wasi:cuda/saxpy: 1 dispatched"), "{err}");
    let none = run("none");
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(none.status.success(), "{err}");
    assert_eq!(none.stdout, expected, "{err}");
    assert!(err.contains("no device; running on the CPU"), "{err}");
    assert!(!err.contains("wasi:cuda/saxpy"), "{err}");
}

#[test]
fn cubin_builds_ship_ptxas_output_beside_the_ptx_or_fail_clearly() {
    let env = Env::new();
    let key = env.path("k.key");
    let out = env.path("saxpy.twb");
    // Without ptxas anywhere: a clear error before any work, and no bundle.
    let none = Command::new(env!("CARGO_BIN_EXE_tensorwasm"))
        .args(["build", WASI_SAXPY, "-o", &out, "--key", &key])
        .args(["--cubin", "sm_80"])
        .current_dir(env.dir.path())
        .env("PATH", "")
        .env_remove("TENSORWASM_PTXAS")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&none.stderr);
    assert_eq!(none.status.code(), Some(1), "{err}");
    assert!(err.contains("--cubin needs NVIDIA's ptxas"), "{err}");
    assert!(!Path::new(&out).exists());

    if tensorwasm_blueprints::ptxas::find_ptxas().is_none() {
        let required =
            std::env::var_os("TENSORWASM_REQUIRE_PTXAS").is_some_and(|v| !v.is_empty() && v != "0");
        assert!(
            !required,
            "ptxas not found and TENSORWASM_REQUIRE_PTXAS is set"
        );
        eprintln!("skipped the cubin build: ptxas not found (scripts/cuda-tools)");
        return;
    }
    env.fails(
        &[
            "build",
            WASI_SAXPY,
            "-o",
            &out,
            "--key",
            &key,
            "--cubin",
            "sm_80,sm_8",
        ],
        "--cubin sm_8: ptxas",
    );
    assert!(!Path::new(&out).exists());

    let built = env.try_build(
        WASI_SAXPY,
        &out,
        &["--oracle-cases", "20", "--cubin", "sm_80,sm_90"],
    );
    let report = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{report}");
    assert!(report.contains("cubin sm_90: "), "{report}");
    assert!(report.contains(" registers, 0 bytes spilled"), "{report}");
    let listed = env.ok(&["inspect", &out, "--trusted", &env.path("k.pub")]);
    assert!(listed.contains("cubins sm_80,sm_90"), "{listed}");

    // The table holds one ELF image per kernel and architecture, beside the PTX.
    let public = tensorwasm_bundle::PublicKey::from_file_text(
        &std::fs::read_to_string(env.path("k.pub")).expect("pub"),
    )
    .expect("public key");
    let trusted = tensorwasm_bundle::TrustedKeys::new(vec![public]);
    let bytes = std::fs::read(&out).expect("bundle");
    let bundle =
        tensorwasm_bundle::VerifiedBundle::open(&bytes, &trusted, u64::MAX / 2).expect("verifies");
    let table = tensorwasm_guard::OffloadTable::from_json(
        &bundle
            .section_of_kind(tensorwasm_bundle::SectionKind::Offload)
            .expect("offload section")
            .expect("present"),
    )
    .expect("table");
    assert!(!table.kernels.is_empty());
    for k in &table.kernels {
        assert!(k.ptx.contains(".entry"), "PTX stays as the fallback");
        let archs: Vec<&str> = k.cubins.iter().map(|c| c.arch.as_str()).collect();
        assert_eq!(archs, ["sm_80", "sm_90"], "{}", k.name);
        for c in &k.cubins {
            assert_eq!(&c.image[..4], b"\x7fELF", "{} {}", k.name, c.arch);
        }
    }
}

/// Per kernel line of `--stats`: (name, dispatched, declined, the line).
fn kernel_stats(stderr: &str) -> Vec<(String, u64, u64, String)> {
    let count = |line: &str, word: &str| -> u64 {
        let Some(end) = line.find(&format!(" {word}")) else {
            return 0;
        };
        let start = line[..end].rfind([' ', ',']).map_or(0, |i| i + 1);
        line[start..end].parse().unwrap_or(0)
    };
    stderr
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.trim_start().split_once(": ")?;
            if !name.starts_with("tw_") || !rest.contains(" dispatched") {
                return None;
            }
            Some((
                name.to_string(),
                count(rest, "dispatched"),
                count(rest, "declined"),
                l.to_string(),
            ))
        })
        .collect()
}

#[test]
fn every_offloadable_wasi_sample_prints_the_same_on_emulated_and_none() {
    let env = Env::new();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/wasm/wasi");
    // The offloadable C samples: those with fixed bare inputs in `common/cases.rs`.
    for name in cases::cases().iter().map(|c| c.name) {
        let wasm = format!("{root}/{name}.wasm");
        let out = env.build(&wasm, &format!("{name}.twb"), &["--oracle-cases", "20"]);
        let expected = std::fs::read(format!("{root}/{name}.stdout")).expect("expected stdout");
        // Every kernel the program enters, at any size.
        let emulated = run_on(&env, &out, "emulated", &["--min-threads", "1"]);
        let err = String::from_utf8_lossy(&emulated.stderr);
        assert!(emulated.status.success(), "{name}: {err}");
        assert_eq!(emulated.stdout, expected, "{name} on emulated: {err}");
        let stats = kernel_stats(&err);
        assert!(stats.iter().any(|s| s.1 > 0), "{name}: nothing ran: {err}");
        for (kernel, dispatched, declined, line) in &stats {
            if (name == "matmul" || name == "batched_matmul") && kernel == "tw_f8_loop2" {
                // The main nest: its remainder load `B[k'][j]` lies inside C when k is even,
                // but then no iteration runs it (the branch is on a live-in, docs/OFFLOAD.md).
                assert_eq!(*dispatched, 1, "{name}: {line}");
            }
            assert_eq!(*declined, 0, "{name}: {line}");
        }
        let none = run_on(&env, &out, "none", &[]);
        let err = String::from_utf8_lossy(&none.stderr);
        assert!(none.status.success(), "{name}: {err}");
        assert_eq!(none.stdout, expected, "{name} on none: {err}");
        assert!(
            kernel_stats(&err).iter().all(|s| s.1 == 0),
            "{name} on none: {err}"
        );
    }
}
