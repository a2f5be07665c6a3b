//! `tensorwasmd`: serves signed TensorWasm bundles over HTTP to many tenants.
//!
//! This file only parses the command line and the config file, sets up logging and the async
//! runtime, and hands over to `tensorwasmd::server`. It never compiles Wasm: the daemon links
//! Wasmtime without Cranelift.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tensorwasmd::server::config::{Allocator, Config, FileConfig, LogFormat};
use tensorwasmd::server::{api, serve, start};

const AFTER_HELP: &str = "\
Quick start (one machine, loopback only):

  tensorwasm keygen --out release                 # release.key (secret) + release.pub
  cat > tokens.toml <<'TOML'
  [[token]]
  name = \"alice\"
  tenant = \"acme\"
  rights = [\"deploy\", \"invoke\", \"read\"]
  token = \"change-me-to-a-long-random-string\"
  TOML
  tensorwasmd --data-dir ./data --tokens tokens.toml --trusted release.pub

  tensorwasm build samples/wat/arith.wat -o arith.twb --key release.key --version 1
  curl -sS -X PUT --data-binary @arith.twb -H 'Authorization: Bearer change-me-to-a-long-random-string' \\
       http://127.0.0.1:7878/v1/bundles/arith
  curl -sS -X POST -d '[1, 2]' -H 'Authorization: Bearer change-me-to-a-long-random-string' \\
       http://127.0.0.1:7878/v1/bundles/arith/invoke/add          # {\"results\":[3],...}

What it accepts: only bundles signed by a key given with --trusted (a .pub file, or a directory
of them), whose signed name equals the URL name, not expired, and not older than the version
deployed (rollback is refused). Bundles are verified before anything in them is decoded, and
re-verified at every start. Each invocation runs in a fresh instance with --invoke-timeout and
--max-memory; --max-concurrent invocations run at once (more wait up to --queue-timeout, then
get 503 `overloaded`), each token
is rate limited (429 `rate-limited`).

Files: DATA/bundles/TENANT/NAME.twb (written with fsync + rename before a deploy is
acknowledged) and DATA/audit.jsonl (append-only). Sizes take KiB/MiB/GiB, durations ms/s/m/h.
A --config TOML file takes the same names as the flags (e.g. invoke-timeout = \"5s\"); flags
override it. Endpoints and error codes: docs/API.md. Operations: docs/DEPLOYMENT.md.";

/// Serve signed TensorWasm bundles over HTTP: deploy, invoke, run, metrics.
#[derive(Debug, Parser)]
#[command(name = "tensorwasmd", version, about, after_help = AFTER_HELP)]
struct Cli {
    /// TOML config file; flags given here override its values.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7878]. Use 0.0.0.0:PORT only behind a firewall
    /// or in a pod.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory for stored bundles and the audit log (required, here or in --config).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Bearer tokens file (TOML: [[token]] tables with tenant, rights, token or token_blake3).
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Trusted public key file, or a directory of *.pub files (repeatable; required).
    #[arg(long, value_name = "FILE|DIR")]
    trusted: Vec<PathBuf>,
    /// Largest bundle accepted by a deploy [default: 64MiB].
    #[arg(long, value_name = "SIZE", value_parser = size)]
    max_bundle_bytes: Option<usize>,
    /// Largest invoke or run request body [default: 4MiB].
    #[arg(long, value_name = "SIZE", value_parser = size)]
    max_request_bytes: Option<usize>,
    /// Largest request head: request line plus headers [default: 16KiB; at least 8KiB is used].
    #[arg(long, value_name = "SIZE", value_parser = size)]
    max_header_bytes: Option<usize>,
    /// Most headers in a request [default: 64].
    #[arg(long, value_name = "N")]
    max_headers: Option<usize>,
    /// Time to receive a request head; also closes idle keep-alive connections [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    header_timeout: Option<std::time::Duration>,
    /// Time to receive a request body [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    body_timeout: Option<std::time::Duration>,
    /// Most open connections; more are closed at once [default: 1024].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Most guest invocations (and deploy verifications) at once [default: 2 x CPUs, >= 4].
    #[arg(long, value_name = "N")]
    max_concurrent: Option<usize>,
    /// How long a request waits for a free invocation slot before 503 `overloaded`; 0 = refuse
    /// at once [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    queue_timeout: Option<std::time::Duration>,
    /// Requests per second per token, for tokens that set none; 0 = unlimited [default: 1000].
    #[arg(long, value_name = "N")]
    rate: Option<f64>,
    /// Burst per token, for tokens that set none [default: 2000].
    #[arg(long, value_name = "N")]
    burst: Option<f64>,
    /// Wall-time limit of one invocation, enforced by epoch interruption [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    invoke_timeout: Option<std::time::Duration>,
    /// Linear-memory limit of one instance [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = size)]
    max_memory: Option<usize>,
    /// Instance allocator: pooling (slots reserved at start) or on-demand [default: pooling].
    #[arg(long, value_name = "KIND")]
    allocator: Option<Allocator>,
    /// Time in-flight requests get to finish after SIGTERM/SIGINT [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    drain_timeout: Option<std::time::Duration>,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Log level: error, warn, info, debug or trace [default: info].
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Where offloaded loop nests run: auto (cuda when a GPU is usable, else none), cuda,
    /// emulated (the PTX interpreter: exact, slow; for tests) or none [default: auto].
    #[arg(long, value_name = "BACKEND")]
    backend: Option<String>,
    /// Dispatch a kernel only for at least N threads [default: each kernel's own, 4096].
    #[arg(long, value_name = "N")]
    min_threads: Option<u64>,
    /// Kernel launches in flight at once, every tenant together; a dispatch past it declines
    /// (`quota`) and its loop runs on the CPU [default: 4].
    #[arg(long, value_name = "N")]
    max_inflight_launches: Option<usize>,
}

fn size(s: &str) -> Result<usize, String> {
    tensorwasmd::server::config::parse_size(s)
}

fn duration(s: &str) -> Result<std::time::Duration, String> {
    tensorwasmd::server::config::parse_duration(s)
}

fn config(cli: Cli) -> Result<Config, String> {
    let file = match &cli.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let data_dir = cli.data_dir.clone().or(file.data_dir.clone());
    let tokens = cli.tokens.clone().or(file.tokens.clone());
    let (Some(data_dir), Some(tokens)) = (data_dir, tokens) else {
        return Err(
            "--data-dir and --tokens are required (on the command line or in --config); \
                    see --help"
                .into(),
        );
    };
    let mut config = Config::with_paths(data_dir, tokens, Vec::new());
    file.apply(&mut config)?;
    macro_rules! flag {
        ($($field:ident),*) => { $( if let Some(v) = cli.$field { config.$field = v; } )* };
    }
    flag!(
        listen,
        max_bundle_bytes,
        max_request_bytes,
        max_header_bytes,
        max_headers,
        header_timeout,
        body_timeout,
        max_connections,
        max_concurrent,
        queue_timeout,
        rate,
        burst,
        invoke_timeout,
        max_memory,
        allocator,
        drain_timeout,
        log_format,
        log_level,
        backend
    );
    if cli.min_threads.is_some() {
        config.min_threads = cli.min_threads;
    }
    if let Some(n) = cli.max_inflight_launches {
        config.max_inflight_launches = n;
    }
    if let Some(d) = cli.data_dir {
        config.data_dir = d;
    }
    if let Some(t) = cli.tokens {
        config.tokens = t;
    }
    if !cli.trusted.is_empty() {
        config.trusted = cli.trusted;
    }
    Ok(config)
}

fn init_logging(config: &Config) -> Result<(), String> {
    let level: tracing_subscriber::filter::LevelFilter = config
        .log_level
        .parse()
        .map_err(|_| format!("unknown log level `{}`", config.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| format!("cannot set up logging: {e}"))
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tensorwasmd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let config = config(cli)?;
    init_logging(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(config.max_concurrent + 8)
        .thread_name("tensorwasmd")
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let listen = config.listen;
        let app = tokio::task::spawn_blocking(move || start(config))
            .await
            .map_err(|e| format!("start-up failed: {e}"))??;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        tracing::info!(address = %local, bundles = app.registry.len(),
            tokens = app.tokens.len(), "listening");
        // The first line on stdout is the address, for scripts and tests (port 0 picks one).
        let mut out = std::io::stdout();
        let _ = writeln!(out, "tensorwasmd listening on http://{local}");
        let _ = out.flush();
        let router = api::router(Arc::clone(&app));
        serve::serve(listener, router, Arc::clone(&app), shutdown_signal()).await;
        tracing::info!("stopped");
        Ok(())
    })
}
