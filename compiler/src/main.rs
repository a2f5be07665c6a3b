//! `tensorwasm`: build signed bundles of precompiled Wasm, verify, inspect and run them.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use tensorwasm::pipeline::{self, BuildOptions, describe_export};
use tensorwasm::time::parse_duration;
use tensorwasm::{fsutil, source, time};
use tensorwasm_bundle::{
    Manifest, PublicKey, SignatureInfo, SigningKey, TrustedKeys, VerifiedBundle,
};
use tensorwasmd::invoke::{CommandIo, Runtime, Stdio};
use tensorwasmd::limits::Limits;
use tensorwasmd::offload::{BackendKind, Host, KernelStats, Kernels};

/// `println!` for results on standard output. When the reader has gone (`tensorwasm analyze
/// BIG.wasm | head`), the process ends quietly with status 141, as a Unix tool killed by SIGPIPE
/// does, instead of panicking; any other write error is reported.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            stdout_failed(e)
        }
    }};
}

/// `print!` with the same handling of a closed standard output as [`outln!`].
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($t)*) {
            stdout_failed(e)
        }
    }};
}

/// Ends the process after a failed write to standard output.
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(i32::from(FAILURE));
}

/// Exit status for every failure that is not the guest's own exit code.
const FAILURE: u8 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "tensorwasm",
    version,
    about = "Build WebAssembly into signed bundles of precompiled code, and run them",
    long_about = "TensorWasm turns a core WebAssembly module into a signed .twb bundle of code \
                  precompiled ahead of time by Wasmtime/Cranelift, and runs bundles without \
                  recompiling.\n\nA first session:\n  tensorwasm keygen --out release\n  \
                  tensorwasm build app.wasm -o app.twb --key release.key\n  tensorwasm verify \
                  app.twb --trusted release.pub\n  tensorwasm run app.twb --trusted release.pub \
                  --invoke add --args '[1, 2]'\n\nLoop nests that can run on a GPU become PTX \
                  kernels, each checked against the CPU loop by the oracle before it ships; the \
                  module is rewritten so each nest dispatches to the GPU and keeps its loop as \
                  the fallback (`run --backend`, `--stats`).",
    after_help = "Exit status: 0 on success, 1 on any error (with a message on stderr), 2 on a \
                  usage error; `run` of a WASI command exits with the guest's own exit code."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make a signing key pair: NAME.key (secret, mode 0600) and NAME.pub (share it).
    Keygen {
        /// Path prefix for the two files.
        #[arg(long, value_name = "NAME")]
        out: PathBuf,
        /// Replace existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Compile a .wasm/.wat module ahead of time and write a signed .twb bundle.
    #[command(
        after_help = "Examples:\n  tensorwasm build app.wasm -o app.twb --key release.key\n  \
                            tensorwasm build app.wat -o app.twb --key release.key --version 7 \
                            --expires 90d \\\n      --target x86_64-unknown-linux-gnu --target \
                            aarch64-unknown-linux-gnu --json\n\nSOURCE_DATE_EPOCH, when set, is \
                            recorded as the creation time; the same input, key and tool version \
                            always give a byte-identical bundle."
    )]
    Build(BuildArgs),
    /// Check a bundle's signature against trusted keys and every section's integrity.
    Verify {
        /// The bundle.
        bundle: PathBuf,
        /// Public key files (NAME.pub) to trust; repeatable.
        #[arg(long, value_name = "NAME.pub", required = true)]
        trusted: Vec<PathBuf>,
        /// Print a JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Show a bundle's manifest (targets, exports, sections, signatures), or a module's IR.
    #[command(
        after_help = "Without --trusted the signatures are checked only against the keys they \
                      name, which shows the bundle is intact but not who may be trusted; nothing \
                      is decompressed or run either way.\n\nWith --ir the file is a .wasm/.wat \
                      module and its block IR is printed."
    )]
    Inspect {
        /// The bundle (or, with --ir, a module).
        bundle: PathBuf,
        /// Public key files to check the signatures against.
        #[arg(long, value_name = "NAME.pub")]
        trusted: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Print the block IR of a .wasm/.wat module instead.
        #[arg(long)]
        ir: bool,
        /// With --ir: only this function (the index space includes imports).
        #[arg(long, value_name = "N", requires = "ir")]
        func: Option<u32>,
    },
    /// Report which loop nests of a module could run on a GPU, and why the others cannot.
    #[command(
        after_help = "Prints loop nests found, candidates, rejections with a histogram of \
                            reasons, and one line per loop (function, loop, byte offset, verdict). \
                            `build` turns the candidates into kernels (see its report)."
    )]
    Analyze {
        /// A .wasm or .wat module.
        input: PathBuf,
        /// Print JSON (the whole plan with loop facts).
        #[arg(long)]
        json: bool,
    },
    /// Run a bundle (or a plain .wasm/.wat): invoke an export, or run a WASI command.
    #[command(
        after_help = "Examples:\n  tensorwasm run app.twb --trusted release.pub --invoke \
                            add --args '[1, 2]'\n  tensorwasm run cmd.twb --trusted release.pub \
                            --dir data::/data -- --verbose input.txt\n  tensorwasm run app.wat \
                            --invoke scale --args '[2.5]'\n\nArguments are lowered by the \
                            export's parameter types: i32/i64 take integers (or decimal \
                            strings), f32/f64 take numbers or \"nan\", \"inf\", \"-inf\"; results \
                            print as a JSON array."
    )]
    Run(RunArgs),
    /// Deploy, list, show, delete, invoke and run bundles on a tensorwasmd over HTTP.
    #[command(
        after_help = "Examples:\n  export TENSORWASM_URL=http://127.0.0.1:7878\n  \
                      tensorwasm remote --token-file alice.token deploy arith.twb\n  \
                      tensorwasm remote --token-file alice.token list\n  \
                      tensorwasm remote --token-file alice.token invoke arith add --args '[1, 2]'\n  \
                      tensorwasm remote --token-file alice.token run hello-wasi --stats -- world\n\n\
                      The token comes from --token-file or $TENSORWASM_TOKEN, never from the \
                      command line. A refusal prints the daemon's error code and message and \
                      exits 1; `run` exits with the command's own exit code."
    )]
    Remote(tensorwasm::remote_cli::RemoteArgs),
    /// Check a hand-written PTX kernel against a Wasm reference function on random inputs.
    #[command(
        after_help = "Example:\n  tensorwasm oracle --wasm samples/oracle/saxpy/saxpy.wat --export saxpy \\\n      \
                      --ptx samples/oracle/saxpy/saxpy.ptx --entry saxpy --plan \
                      samples/oracle/saxpy/plan.toml\n\nThe plan (TOML, docs/ORACLE.md) says which \
                      function parameters are sizes, buffers and scalars and how they fill the \
                      kernel's parameters, grid and block. Each case runs the function in \
                      Wasmtime and the kernel on the PTX interpreter over the same memory; memory \
                      must be byte-identical afterwards except float lanes where both hold a NaN, \
                      and a CPU trap must raise the kernel's trap flag. A failing case is shrunk \
                      and printed with a seed that replays it (--seed).\n\n`tensorwasm oracle \
                      BUNDLE.twb --trusted K.pub` re-checks every kernel of a built bundle \
                      against its CPU loop, as `build` did, running every case asked for \
                      (the build stops a kernel at an iteration budget).\n\nExit status: 0 when \
                      every case passes, 1 on a counterexample, 2 on a usage or input error \
                      (plan, PTX, module)."
    )]
    Oracle(OracleArgs),
}

#[derive(Args, Debug)]
struct OracleArgs {
    /// A bundle whose kernels to re-check against their CPU loops (with --trusted), instead
    /// of a hand-written kernel.
    #[arg(value_name = "BUNDLE.twb", conflicts_with_all = ["wasm", "export", "ptx", "entry", "plan"])]
    bundle: Option<PathBuf>,
    /// With BUNDLE: public key files to trust; repeatable.
    #[arg(long, value_name = "NAME.pub", requires = "bundle")]
    trusted: Vec<PathBuf>,
    /// The reference module (.wasm or .wat); its memory 0 must be exported or imported.
    #[arg(long, value_name = "REF.wasm", required_unless_present = "bundle")]
    wasm: Option<PathBuf>,
    /// The exported reference function.
    #[arg(long, value_name = "F", required_unless_present = "bundle")]
    export: Option<String>,
    /// The kernel's PTX.
    #[arg(long, value_name = "K.ptx", required_unless_present = "bundle")]
    ptx: Option<PathBuf>,
    /// The kernel's .entry name.
    #[arg(long, value_name = "NAME", required_unless_present = "bundle")]
    entry: Option<String>,
    /// How the function's arguments map to the kernel's launch.
    #[arg(long, value_name = "PLAN.toml", required_unless_present = "bundle")]
    plan: Option<PathBuf>,
    /// Cases to run.
    #[arg(long, value_name = "N", default_value_t = tensorwasm_oracle::harness::DEFAULT_CASES,
          value_parser = clap::value_parser!(u32).range(1..))]
    cases: u32,
    /// Run seed (decimal or 0x hex); default: a fresh one, printed in the report.
    #[arg(long, value_name = "S", value_parser = parse_seed)]
    seed: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Where the kernel runs: `interpreter` (the PTX interpreter, any host) or `cuda` (GPU 0
    /// through the CUDA driver; exits 2 when the host has no GPU).
    #[arg(long, value_name = "B", default_value = "interpreter",
          value_parser = ["interpreter", "cuda"])]
    backend: String,
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("`{s}` is not a seed: expected a decimal or 0x-prefixed hex u64"))
}

#[derive(Args, Debug)]
struct BuildArgs {
    /// Input module: a Wasm binary or WebAssembly text.
    input: PathBuf,
    /// Output bundle.
    #[arg(short, long, value_name = "OUT.twb")]
    output: PathBuf,
    /// Secret key from `tensorwasm keygen`.
    #[arg(long, value_name = "NAME.key")]
    key: PathBuf,
    /// Bundle name (default: the input file's stem).
    #[arg(long)]
    name: Option<String>,
    /// Monotonic bundle version; a daemon refuses a lower one than it has.
    #[arg(long, default_value_t = 1)]
    version: u64,
    /// Expiry: 2027-01-31, 2027-01-31T12:00:00Z, @UNIX_SECONDS, or a duration like 90d/12h.
    #[arg(long, value_name = "WHEN")]
    expires: Option<String>,
    /// Target triple to compile for; repeatable (default: this machine's, or `host`).
    #[arg(long = "target", value_name = "TRIPLE")]
    targets: Vec<String>,
    /// Also write every kernel the detector finds, lowered and emitted as PTX, to DIR
    /// (NAME.ptx and its KernelIR as NAME.kir).
    #[arg(long, value_name = "DIR")]
    emit_ptx: Option<PathBuf>,
    /// PTX target for --emit-ptx (sm_75 and newer).
    #[arg(long, value_name = "SM", default_value = "sm_75")]
    ptx_arch: String,
    /// Also assemble every kernel with NVIDIA's ptxas for these GPU architectures
    /// (comma-separated, e.g. sm_80,sm_90) and ship the cubins beside the PTX: a host with such
    /// a GPU loads them and skips the driver's PTX JIT. Fails when ptxas is missing.
    #[arg(long, value_name = "SM,...", value_delimiter = ',')]
    cubin: Vec<String>,
    /// Compile the module as given: no kernels, no rewrite (every loop runs on the CPU).
    #[arg(long)]
    no_offload: bool,
    /// Random cases the oracle runs per kernel, comparing it with the CPU loop on the PTX
    /// interpreter; a kernel that fails, or never runs, stays out of the bundle.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    oracle_cases: u32,
    /// Seed of the oracle's cases (default: from the input's hash; a failure prints the seed
    /// that replays it).
    #[arg(long, value_name = "SEED", value_parser = parse_seed)]
    oracle_seed: Option<u64>,
    /// Print a JSON summary on stdout (for CI).
    #[arg(long)]
    json: bool,
    /// No progress or summary on stderr.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// A .twb bundle, or a .wasm/.wat module (compiled in-process).
    file: PathBuf,
    /// Public key files to trust (required for bundles); repeatable.
    #[arg(long, value_name = "NAME.pub")]
    trusted: Vec<PathBuf>,
    /// Call this exported function instead of running `_start`.
    #[arg(long, value_name = "EXPORT")]
    invoke: Option<String>,
    /// JSON array of arguments for --invoke.
    #[arg(long, value_name = "JSON", default_value = "[]", requires = "invoke")]
    args: String,
    /// Preopen a host directory for a WASI command: HOST or HOST::GUEST; repeatable.
    #[arg(long, value_name = "HOST[::GUEST]")]
    dir: Vec<String>,
    /// Environment variable for a WASI command: KEY=VALUE; repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Wall-time limit, e.g. 500ms, 10s, 2m.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    timeout: String,
    /// Linear-memory limit, e.g. 64MiB, 1GiB.
    #[arg(long, value_name = "SIZE", default_value = "1GiB")]
    max_memory: String,
    /// Where offloaded loop nests run: auto (cuda when a GPU is usable, else none), cuda,
    /// emulated (the PTX interpreter: exact and slow), or none (every loop on the CPU).
    #[arg(long, value_name = "BACKEND", default_value = "auto")]
    backend: String,
    /// Dispatch a kernel only for at least this many threads (default: each kernel's own
    /// threshold, 4096).
    #[arg(long, value_name = "N")]
    min_threads: Option<u64>,
    /// After the run, print to stderr per kernel: dispatched, declined by reason, device time.
    #[arg(long)]
    stats: bool,
    /// Arguments passed to the WASI command (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    guest_args: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(FAILURE)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Keygen { out, force } => keygen(&out, force),
        Command::Build(args) => build(args),
        Command::Verify {
            bundle,
            trusted,
            json,
        } => verify(&bundle, &trusted, json),
        Command::Inspect {
            bundle,
            ir: true,
            func,
            ..
        } => inspect_ir(&bundle, func),
        Command::Inspect {
            bundle,
            trusted,
            json,
            ..
        } => inspect(&bundle, &trusted, json),
        Command::Analyze { input, json } => analyze(&input, json),
        Command::Run(args) => run(args),
        Command::Remote(args) => {
            let code = tensorwasm::remote_cli::remote(
                args,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )
            .map_err(|e| {
                match e.downcast::<tensorwasm::remote_cli::OutputError>() {
                    Ok(o) => stdout_failed(o.0),
                    Err(e) => e,
                }
            })?;
            Ok(ExitCode::from(code))
        }
        Command::Oracle(args) => Ok(oracle(&args)),
    }
}

fn keygen(out: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let key_path = with_suffix(out, "key");
    let pub_path = with_suffix(out, "pub");
    for path in [&key_path, &pub_path] {
        if path.exists() && !force {
            anyhow::bail!(
                "{} already exists; pass --force to replace it",
                path.display()
            );
        }
    }
    let key = SigningKey::generate();
    let public = key.public();
    fsutil::write_atomic(&key_path, key.to_file_text().as_bytes(), Some(0o600))?;
    fsutil::write_atomic(&pub_path, public.to_file_text().as_bytes(), Some(0o644))?;
    outln!(
        "wrote {} (secret, mode 0600) and {} (key id {})",
        key_path.display(),
        pub_path.display(),
        public.key_id()
    );
    Ok(ExitCode::SUCCESS)
}

fn with_suffix(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let ptx_target = tensorwasm_blueprints::Target::parse(&args.ptx_arch)
        .map_err(|e| anyhow::anyhow!("--ptx-arch: {e}"))?;
    let opts = BuildOptions {
        input: args.input,
        output: args.output,
        key: args.key,
        name: args.name,
        version: args.version,
        expires: args.expires,
        targets: args.targets,
        offload: !args.no_offload,
        oracle_cases: args.oracle_cases,
        oracle_seed: args.oracle_seed,
        cubin_archs: args.cubin,
        emit_ptx: args.emit_ptx.clone().map(|dir| (dir, ptx_target)),
    };
    let progress = if args.quiet || args.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed}] {pos}/{len} targets  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    };
    let report = pipeline::build(&opts, &progress);
    progress.finish_and_clear();
    let report = report?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else if !args.quiet {
        eprintln!(
            "built {} ({} v{}, {} bytes) in {} ms, signed by {}",
            report.output,
            report.name,
            report.version,
            report.bundle_bytes,
            report.duration_ms,
            report.key_id
        );
        for t in &report.targets {
            eprintln!(
                "  {}: {} bytes of code in {} ms",
                t.triple, t.code_bytes, t.compile_ms
            );
        }
        if let (ks, Some(dir)) = (&report.emitted, &args.emit_ptx) {
            let ok = ks.iter().filter(|k| k.error.is_none()).count();
            eprintln!(
                "  kernels: {ok} of {} offloadable nests lowered to PTX ({}) in {}",
                ks.len(),
                args.ptx_arch,
                dir.display()
            );
            for k in ks.iter().filter(|k| k.error.is_some()) {
                eprintln!(
                    "    {}: not lowered: {}",
                    k.name,
                    k.error.as_deref().unwrap_or_default()
                );
            }
        }
        let shipped = report.kernels.iter().filter(|k| k.offloaded).count();
        eprintln!(
            "  kernels in the bundle: {shipped} of {} offloadable loop nests",
            report.kernels.len()
        );
        for k in &report.kernels {
            match &k.reason {
                None => eprintln!(
                    "    {}: function {} loop at {:#x}: dispatches to the GPU ({} kernel), CPU loop kept as fallback",
                    k.name,
                    k.function,
                    k.offset,
                    k.blueprint.unwrap_or("generic")
                ),
                Some(why) => eprintln!("    {}: stays on the CPU: {why}", k.name),
            }
            if let Some(o) = &k.oracle {
                eprintln!("      {}", o.summary());
            }
            for c in &k.cubins {
                eprintln!(
                    "      cubin {}: {} bytes, {} registers, {} bytes spilled",
                    c.arch, c.bytes, c.registers, c.spill_bytes
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_trusted(paths: &[PathBuf]) -> anyhow::Result<TrustedKeys> {
    let keys = paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read public key {}", path.display()))?;
            PublicKey::from_file_text(&text).map_err(|e| {
                anyhow::anyhow!("{} is not a tensorwasm public key: {e}", path.display())
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(TrustedKeys::new(keys))
}

fn read_bundle(path: &Path) -> anyhow::Result<Vec<u8>> {
    match source::read(path)? {
        source::Input::Bundle(bytes) => Ok(bytes),
        source::Input::Module(_) => anyhow::bail!(
            "{} is a Wasm module, not a .twb bundle; make one with `tensorwasm build`",
            path.display()
        ),
    }
}

fn verify(path: &Path, trusted: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let trusted = read_trusted(trusted)?;
    let bytes = read_bundle(path)?;
    let result = (|| {
        let bundle = VerifiedBundle::open(&bytes, &trusted, time::now())?;
        for index in 0..bundle.manifest().sections.len() as u32 {
            bundle.section(index)?;
        }
        Ok::<_, tensorwasm_bundle::Error>((bundle.manifest().clone(), bundle.signatures().to_vec()))
    })();
    match result {
        Ok((manifest, sigs)) => {
            let signers: Vec<String> = sigs
                .iter()
                .filter(|s| s.trusted)
                .map(|s| s.key_id.to_string())
                .collect();
            if json {
                outln!(
                    "{}",
                    json!({"ok": true, "bundle": path.display().to_string(), "name": manifest.name,
                           "version": manifest.version, "trusted_signers": signers,
                           "sections_verified": manifest.sections.len()})
                );
            } else {
                outln!(
                    "OK: {} is {} v{}, signed by trusted key {}; {} sections intact",
                    path.display(),
                    manifest.name,
                    manifest.version,
                    signers.join(", "),
                    manifest.sections.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                outln!(
                    "{}",
                    json!({"ok": false, "bundle": path.display().to_string(), "error": e.to_string()})
                );
            }
            eprintln!("error: {}: verification failed: {e}", path.display());
            Ok(ExitCode::from(FAILURE))
        }
    }
}

fn inspect(path: &Path, trusted: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let bytes = read_bundle(path)?;
    // The kernel table is read only from a bundle whose signature verified.
    let (manifest, sigs, checked, kernels) = if trusted.is_empty() {
        let (manifest, sigs, _) = tensorwasm_bundle::inspect_untrusted(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        (manifest, sigs, false, None)
    } else {
        let trusted = read_trusted(trusted)?;
        let bundle = VerifiedBundle::open(&bytes, &trusted, time::now())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let table = tensorwasm_guard::OffloadTable::from_bundle(&bundle)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .unwrap_or_default();
        (
            bundle.manifest().clone(),
            bundle.signatures().to_vec(),
            true,
            Some(table),
        )
    };
    if json {
        let mut v = manifest_json(&manifest, &sigs, checked, bytes.len());
        v["kernels"] = match &kernels {
            Some(t) => json!(
                t.kernels
                    .iter()
                    .map(|k| json!({
                "name": k.name, "function": k.function, "offset": k.offset,
                "block": k.block, "grid_dims": k.grid.len(), "params": k.params.len(),
                "ptx_bytes": k.ptx.len(), "oracle": k.oracle,
                "cubins": k.cubins.iter().map(|c| json!({"arch": c.arch, "bytes": c.image.len()}))
                    .collect::<Vec<_>>()}))
                    .collect::<Vec<_>>()
            ),
            None => serde_json::Value::Null,
        };
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        out!(
            "{}",
            manifest_text(path, &manifest, &sigs, checked, bytes.len())
        );
        let has_table = manifest
            .sections
            .iter()
            .any(|s| s.kind == tensorwasm_bundle::SectionKind::Offload);
        match (&kernels, has_table) {
            (_, false) => outln!("kernels  none: every loop runs on the CPU"),
            (None, true) => {
                outln!("kernels  in the offload section (pass --trusted to list them)")
            }
            (Some(t), true) => {
                outln!("kernels  {}", t.kernels.len());
                for k in &t.kernels {
                    let evidence = match &k.oracle {
                        Some(o) => format!("\n      evidence: {}", evidence_text(o)),
                        None => "\n      evidence: none (the oracle did not run)".into(),
                    };
                    let cubins = if k.cubins.is_empty() {
                        String::new()
                    } else {
                        let archs: Vec<&str> = k.cubins.iter().map(|c| c.arch.as_str()).collect();
                        format!("  cubins {}", archs.join(","))
                    };
                    outln!(
                        "  {}  function {} loop at {:#x}  {}-D grid, block {:?}{cubins}{evidence}",
                        k.name,
                        k.function,
                        k.offset,
                        k.grid.len(),
                        k.block
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of a kernel's oracle evidence for `inspect`.
fn evidence_text(o: &tensorwasm_guard::Evidence) -> String {
    let mut s = o.summary();
    if !o.tool.is_empty() {
        s.push_str(&format!(", by {}", o.tool));
    }
    if o.budget_exhausted {
        s.push_str(", stopped at its budget");
    }
    s
}

fn inspect_ir(path: &Path, func: Option<u32>) -> anyhow::Result<ExitCode> {
    let wasm = source::read_module(path)?;
    let ir = tensorwasm_analysis::translate(&wasm)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    match func {
        None => out!("{ir}"),
        Some(n) => match ir.functions.iter().find(|f| f.index == n) {
            Some(f) => out!("{f}"),
            None => {
                let have: Vec<String> = ir.functions.iter().map(|f| f.index.to_string()).collect();
                anyhow::bail!(
                    "{}: no defined function {n}; defined functions: {}",
                    path.display(),
                    have.join(", ")
                )
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn analyze(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let wasm = source::read_module(path)?;
    let report = tensorwasm::analyze::coverage(&wasm)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", tensorwasm::analyze::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn manifest_json(
    m: &Manifest,
    sigs: &[SignatureInfo],
    checked: bool,
    size: usize,
) -> serde_json::Value {
    json!({
        "name": m.name,
        "version": m.version,
        "created_at": m.created_at,
        "expires_at": m.expires_at,
        "tool": m.tool,
        "source_blake3": hex::encode(m.source_hash),
        "bundle_bytes": size,
        "trust_checked": checked,
        "signatures": sigs.iter().map(|s| json!({"key_id": s.key_id.to_string(), "trusted": s.trusted})).collect::<Vec<_>>(),
        "targets": m.targets.iter().map(|t| json!({
            "triple": t.triple, "wasmtime": t.wasmtime_version,
            "engine_fingerprint": hex::encode(t.engine_fingerprint), "engine_profile": t.engine_profile,
            "cpu_features": t.cpu_features, "code_section": t.code_section})).collect::<Vec<_>>(),
        "exports": m.exports.iter().map(describe_export).collect::<Vec<_>>(),
        "sections": m.sections.iter().map(|s| json!({
            "kind": s.kind.to_string(), "stored_bytes": s.stored_len, "raw_bytes": s.raw_len,
            "blake3": hex::encode(s.hash)})).collect::<Vec<_>>(),
        "kernels": null,
    })
}

fn manifest_text(
    path: &Path,
    m: &Manifest,
    sigs: &[SignatureInfo],
    checked: bool,
    size: usize,
) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "bundle   {} ({size} bytes)", path.display());
    let _ = writeln!(o, "name     {} v{}", m.name, m.version);
    let _ = writeln!(o, "tool     {}", m.tool);
    let _ = writeln!(o, "source   blake3:{}", hex::encode(m.source_hash));
    let when = |t: Option<u64>| t.map_or("-".to_string(), time::format_utc);
    let _ = writeln!(o, "created  {}", when(m.created_at));
    let _ = writeln!(o, "expires  {}", when(m.expires_at));
    let _ = writeln!(o, "signatures");
    for s in sigs {
        let status = match (checked, s.trusted) {
            (true, true) => "valid, trusted",
            (true, false) => "valid, not in the trusted set",
            (false, _) => "valid for the key it names (trust not checked: pass --trusted)",
        };
        let _ = writeln!(o, "  key {}  {status}", s.key_id);
    }
    let _ = writeln!(o, "targets");
    for t in &m.targets {
        let features = if t.cpu_features.is_empty() {
            "baseline".to_string()
        } else {
            t.cpu_features.join(",")
        };
        let _ = writeln!(
            o,
            "  {}  wasmtime {}  engine {}  cpu {features}  code in section {}",
            t.triple,
            t.wasmtime_version,
            hex::encode(&t.engine_fingerprint[..8]),
            t.code_section
        );
    }
    let _ = writeln!(o, "exports");
    for e in &m.exports {
        let _ = writeln!(o, "  {}", describe_export(e));
    }
    let _ = writeln!(o, "sections");
    for (i, s) in m.sections.iter().enumerate() {
        let _ = writeln!(
            o,
            "  {i}  {:<14} {:>10} bytes stored  {:>10} bytes raw  blake3:{}",
            s.kind.to_string(),
            s.stored_len,
            s.raw_len,
            &hex::encode(s.hash)[..16]
        );
    }
    o
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let limits = Limits {
        timeout: parse_duration(&args.timeout)?,
        max_memory: parse_size(&args.max_memory)?,
    };
    let engine = wasmtime::Engine::new(&tensorwasmd::engine::base_config())
        .map_err(|e| anyhow::anyhow!("cannot create the engine: {e:#}"))?;
    let backend =
        BackendKind::parse(&args.backend).map_err(|e| anyhow::anyhow!("--backend: {e}"))?;
    let (module, kernels) = match source::read(&args.file)? {
        source::Input::Bundle(bytes) => {
            if args.trusted.is_empty() {
                anyhow::bail!(
                    "{} is a bundle: pass --trusted NAME.pub with the key it must be signed by",
                    args.file.display()
                );
            }
            let trusted = read_trusted(&args.trusted)?;
            let restored = tensorwasmd::restore::restore(&engine, &bytes, &trusted, time::now())
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
            (
                restored.module,
                restored
                    .kernels
                    .map(|t| std::sync::Arc::new(Kernels::new(t))),
            )
        }
        source::Input::Module(wasm) => (
            wasmtime::Module::new(&engine, &wasm)
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", args.file.display()))?,
            None,
        ),
    };
    let runtime = Runtime::with_host(engine, Host::new(backend, args.min_threads)?)?;
    let prepared = runtime.prepare_with(&module, kernels)?;
    if let Some(export) = &args.invoke {
        let json_args = tensorwasmd::values::parse_args(&args.args)?;
        let (results, stats) =
            runtime.invoke_prepared_stats(&prepared, export, &json_args, &limits)?;
        outln!("{results}");
        if args.stats {
            print_kernel_stats(backend, &stats);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let program = args
        .file
        .file_name()
        .map_or("guest".into(), |n| n.to_string_lossy().into_owned());
    let mut guest_args = vec![program];
    guest_args.extend(args.guest_args);
    let io = CommandIo {
        args: guest_args,
        env: args
            .env
            .iter()
            .map(|kv| parse_env(kv))
            .collect::<anyhow::Result<_>>()?,
        dirs: args.dir.iter().map(|d| parse_dir(d)).collect(),
        stdio: Stdio::Inherit,
    };
    let outcome = runtime.run_prepared(&prepared, &io, &limits)?;
    if args.stats {
        print_kernel_stats(backend, &outcome.kernels);
    }
    Ok(ExitCode::from(
        u8::try_from(outcome.exit_code & 0xff).unwrap_or(FAILURE),
    ))
}

/// `--stats`: one line per kernel on stderr.
fn print_kernel_stats(backend: BackendKind, stats: &[KernelStats]) {
    if stats.is_empty() {
        eprintln!("kernels: none in this module (every loop ran on the CPU)");
        return;
    }
    eprintln!("kernels (backend {}):", backend.name());
    for s in stats {
        let declined: Vec<String> = s.declined.iter().map(|(r, n)| format!("{n} {r}")).collect();
        let copied = tensorwasm::remote_cli::copied_text(s.bytes_to_device, s.bytes_from_device);
        eprintln!(
            "  {}: {} dispatched ({:.3} ms on the device{copied}), {} declined{}",
            s.kernel,
            s.dispatched,
            s.device_ns as f64 / 1e6,
            s.declined.values().sum::<u64>(),
            if declined.is_empty() {
                String::new()
            } else {
                format!(" ({})", declined.join(", "))
            }
        );
        if let Some(d) = &s.last_decline {
            eprintln!("    last declined because: {d}");
        }
    }
}

fn parse_env(kv: &str) -> anyhow::Result<(String, String)> {
    kv.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| anyhow::anyhow!("invalid --env `{kv}`: expected KEY=VALUE"))
}

fn parse_dir(spec: &str) -> (PathBuf, String) {
    match spec.split_once("::") {
        Some((host, guest)) => (PathBuf::from(host), guest.to_string()),
        None => (PathBuf::from(spec), spec.to_string()),
    }
}

fn parse_size(text: &str) -> anyhow::Result<usize> {
    let t = text.trim();
    let bad = || anyhow::anyhow!("invalid --max-memory `{text}`: use e.g. 64MiB, 1GiB, or bytes");
    let units = [
        ("GiB", 1u64 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
        ("B", 1),
    ];
    let (number, scale) = units
        .iter()
        .find_map(|(suffix, scale)| t.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((t, 1));
    let n: u64 = number.trim().parse().map_err(|_| bad())?;
    let bytes = n.checked_mul(scale).ok_or_else(bad)?;
    usize::try_from(bytes).map_err(|_| bad())
}

/// Exit status of `tensorwasm oracle` on a usage or input error.
const INPUT_ERROR: u8 = 2;

fn oracle(args: &OracleArgs) -> ExitCode {
    if let Some(bundle) = &args.bundle {
        return match oracle_bundle(bundle, args) {
            Ok(code) => code,
            Err(e) => {
                if args.json {
                    outln!(
                        "{}",
                        json!({ "result": "error", "error": format!("{e:#}") })
                    );
                }
                eprintln!("error: {e:#}");
                ExitCode::from(INPUT_ERROR)
            }
        };
    }
    let (Some(wasm), Some(export), Some(ptx), Some(entry), Some(plan)) =
        (&args.wasm, &args.export, &args.ptx, &args.entry, &args.plan)
    else {
        eprintln!("error: --wasm, --export, --ptx, --entry and --plan are required without BUNDLE");
        return ExitCode::from(INPUT_ERROR);
    };
    let seed = args.seed.unwrap_or_else(fresh_seed);
    let config = tensorwasm_oracle::harness::Config {
        cases: args.cases,
        seed,
        ..Default::default()
    };
    let files = tensorwasm::oracle::OracleFiles {
        wasm,
        export,
        ptx,
        entry,
        plan,
    };
    let mut backend: Box<dyn tensorwasm_oracle::Backend> = if args.backend == "cuda" {
        match tensorwasm_oracle::CudaBackend::new(0) {
            Ok(b) => Box::new(b),
            Err(e) => {
                if args.json {
                    outln!("{}", json!({ "result": "error", "error": e.to_string() }));
                }
                eprintln!("error: --backend cuda: {e}");
                return ExitCode::from(INPUT_ERROR);
            }
        }
    } else {
        Box::new(tensorwasm_oracle::Interpreter::new())
    };
    let started = std::time::Instant::now();
    let report = match tensorwasm::oracle::check_files(&files, &config, backend.as_mut()) {
        Ok(report) => report,
        Err(e) => {
            if args.json {
                outln!("{}", json!({ "result": "error", "error": e.to_string() }));
            }
            eprintln!("error: {e}");
            return ExitCode::from(INPUT_ERROR);
        }
    };
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let replay = match &report.verdict {
        tensorwasm_oracle::harness::Verdict::Fail(c) => Some(format!(
            "tensorwasm oracle --wasm {} --export {} --ptx {} --entry {} --plan {} --seed {:#x}{}",
            wasm.display(),
            export,
            ptx.display(),
            entry,
            plan.display(),
            c.case_seed,
            if args.backend == "cuda" {
                " --backend cuda"
            } else {
                ""
            }
        )),
        tensorwasm_oracle::harness::Verdict::Pass => None,
    };
    if args.json {
        let mut value =
            serde_json::to_value(&report).unwrap_or_else(|e| json!({ "error": e.to_string() }));
        if let Some(obj) = value.as_object_mut() {
            obj.insert("elapsed_ms".into(), json!(elapsed_ms));
            obj.insert("replay".into(), json!(replay));
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        outln!("{report}");
        if let Some(cmd) = &replay {
            outln!("  {cmd}");
        }
        outln!("  time: {:.2} s", elapsed_ms as f64 / 1000.0);
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    }
}

/// A seed nobody chose: the clock's nanoseconds mixed with the process id.
fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    tensorwasm_oracle::harness::case_seed(nanos ^ u64::from(std::process::id()).rotate_left(32), 1)
}

/// `tensorwasm oracle BUNDLE.twb`: re-checks every kernel of a verified bundle against its CPU
/// loop, as the build did ([`tensorwasm::oracle::bundle::check_bundle`]). Exit 0 when all pass,
/// 1 on a counterexample.
fn oracle_bundle(path: &Path, args: &OracleArgs) -> anyhow::Result<ExitCode> {
    if args.trusted.is_empty() {
        anyhow::bail!(
            "{}: pass --trusted NAME.pub with the key the bundle must be signed by",
            path.display()
        );
    }
    let bytes = read_bundle(path)?;
    let trusted = read_trusted(&args.trusted)?;
    let seed = args.seed.unwrap_or_else(fresh_seed);
    let run = tensorwasm::oracle::bundle::BundleCheck {
        cases: args.cases,
        seed,
        backend: match args.backend.as_str() {
            "cuda" => BackendKind::Cuda,
            _ => BackendKind::Emulated,
        },
    };
    let Some(reports) =
        tensorwasm::oracle::bundle::check_bundle(&bytes, &trusted, time::now(), &run)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    else {
        outln!(
            "{}: no kernels (every loop runs on the CPU); nothing to check",
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let failed = reports.iter().any(|r| r.failure.is_some());
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "result": if failed { "fail" } else { "pass" },
                "seed": seed,
                "kernels": reports,
            }))?
        );
    } else {
        for r in &reports {
            outln!("{}: {}", r.kernel, r.summary());
        }
        outln!(
            "{}: {} of {} kernels pass (replay: --seed {seed:#x})",
            path.display(),
            reports.iter().filter(|r| r.failure.is_none()).count(),
            reports.len()
        );
    }
    Ok(if failed {
        ExitCode::from(FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}
