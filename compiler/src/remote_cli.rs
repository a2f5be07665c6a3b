//! `tensorwasm remote`: the client side of `tensorwasmd`'s HTTP API. A library module, so that
//! tests run it in-process against a real daemon, with its output captured.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::remote::{Client, segment};
use crate::time::parse_duration;

/// Exit status of a failure that is not a command's own exit code.
const FAILURE: u8 = 1;

/// A write to the output failed (a closed pipe, a full disk): the caller decides how to end.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the output: {0}")]
pub struct OutputError(#[source] pub std::io::Error);

macro_rules! w {
    ($out:expr, $($t:tt)*) => {
        writeln!($out, $($t)*).map_err(OutputError)?
    };
}

/// Where the daemon is and who is asking.
#[derive(Args, Debug)]
#[command(name = "remote")]
pub struct RemoteArgs {
    /// The daemon's address: http://HOST[:PORT] (default: $TENSORWASM_URL, else
    /// http://127.0.0.1:7878).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// A file holding the bearer token on its first line (default: $TENSORWASM_TOKEN). Tokens
    /// are never taken on the command line, where other users could read them.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Time limit for connecting and for each read, e.g. 30s, 5m.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    timeout: String,
    /// Print the daemon's JSON answer as it is, instead of a summary.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: RemoteCommand,
}

#[derive(Subcommand, Debug)]
enum RemoteCommand {
    /// Upload a signed bundle (created, replaced, or unchanged when the same bytes are there).
    Deploy {
        /// The .twb bundle.
        bundle: PathBuf,
        /// The name to deploy under; it must equal the bundle's signed name (the default).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the tenant's bundles.
    List,
    /// Show one bundle: version, digest, signers, exports, kernels.
    Show {
        /// The bundle's name.
        name: String,
    },
    /// Remove a bundle.
    Delete {
        /// The bundle's name.
        name: String,
    },
    /// Call an exported function with JSON arguments; prints the results as JSON.
    Invoke {
        /// The bundle's name.
        name: String,
        /// The export.
        export: String,
        /// JSON array of arguments.
        #[arg(long, value_name = "JSON", default_value = "[]")]
        args: String,
        /// Print to stderr where the call ran and what each kernel did.
        #[arg(long)]
        stats: bool,
    },
    /// Run a WASI command; prints its stdout and stderr and exits with its exit code.
    Run {
        /// The bundle's name.
        name: String,
        /// A file whose bytes become the command's stdin.
        #[arg(long, value_name = "FILE")]
        stdin: Option<PathBuf>,
        /// Environment variable KEY=VALUE; repeatable.
        #[arg(long, value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Print to stderr where the command ran and what each kernel did.
        #[arg(long)]
        stats: bool,
        /// Arguments for the command (after `--`).
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
}

fn token(args: &RemoteArgs) -> anyhow::Result<Option<String>> {
    if let Some(path) = &args.token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?;
        let line = text.lines().next().unwrap_or("").trim().to_string();
        anyhow::ensure!(
            !line.is_empty(),
            "the token file {} is empty",
            path.display()
        );
        return Ok(Some(line));
    }
    Ok(std::env::var("TENSORWASM_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// Runs a `tensorwasm remote` command, writing results to `out` and reports to `err`, and
/// returns the exit status (a `run`'s own exit code, else 0). Errors are the daemon's refusals,
/// unreachable daemons, bad arguments, and [`OutputError`].
pub fn remote(args: RemoteArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let url = args
        .url
        .clone()
        .or_else(|| std::env::var("TENSORWASM_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:7878".to_string());
    let timeout = parse_duration(&args.timeout)?;
    let client = Client::new(&url, token(&args)?, timeout)?;
    let show = |out: &mut dyn Write, v: &Value| -> anyhow::Result<()> {
        w!(out, "{}", serde_json::to_string_pretty(v)?);
        Ok(())
    };
    match &args.command {
        RemoteCommand::Deploy { bundle, name } => {
            let bytes = std::fs::read(bundle)
                .with_context(|| format!("cannot read {}", bundle.display()))?;
            let name = match name {
                Some(n) => n.clone(),
                None => {
                    tensorwasm_bundle::inspect_untrusted(&bytes)
                        .with_context(|| {
                            format!(
                                "{} is not a readable bundle (pass --name to send it anyway)",
                                bundle.display()
                            )
                        })?
                        .0
                        .name
                }
            };
            let r = client.call(
                "PUT",
                &format!("/v1/bundles/{}", segment(&name)),
                Some(("application/octet-stream", &bytes)),
            )?;
            let v = r.json()?;
            if args.json {
                show(out, &v)?;
            } else {
                w!(
                    out,
                    "{} {} v{} (digest {}, {} bytes, restored in {} µs)",
                    v["outcome"].as_str().unwrap_or("deployed"),
                    v["name"].as_str().unwrap_or(&name),
                    v["version"],
                    v["digest"].as_str().unwrap_or("?"),
                    v["bundle_bytes"],
                    v["restore_us"]
                );
            }
        }
        RemoteCommand::List => {
            let v = client.call("GET", "/v1/bundles", None)?.json()?;
            if args.json {
                show(out, &v)?;
            } else {
                let empty = Vec::new();
                let bundles = v["bundles"].as_array().unwrap_or(&empty);
                w!(
                    out,
                    "tenant {}: {} bundle(s)",
                    v["tenant"].as_str().unwrap_or("?"),
                    bundles.len()
                );
                for b in bundles {
                    let digest = b["digest"].as_str().unwrap_or("");
                    w!(
                        out,
                        "  {:<24} v{:<6} {:>10} bytes  {}",
                        b["name"].as_str().unwrap_or("?"),
                        b["version"].as_u64().unwrap_or(0),
                        b["bundle_bytes"].as_u64().unwrap_or(0),
                        &digest[..digest.len().min(16)]
                    );
                }
            }
        }
        RemoteCommand::Show { name } => {
            let v = client
                .call("GET", &format!("/v1/bundles/{}", segment(name)), None)?
                .json()?;
            show(out, &v)?;
        }
        RemoteCommand::Delete { name } => {
            let r = client.call("DELETE", &format!("/v1/bundles/{}", segment(name)), None)?;
            if args.json {
                show(out, &r.json()?)?;
            } else {
                w!(out, "deleted {name}");
            }
        }
        RemoteCommand::Invoke {
            name,
            export,
            args: call_args,
            stats,
        } => {
            let parsed: Value = serde_json::from_str(call_args)
                .with_context(|| format!("--args is not JSON: `{call_args}`"))?;
            anyhow::ensure!(
                parsed.is_array(),
                "--args must be a JSON array, e.g. '[1, 2]'"
            );
            let body = serde_json::to_vec(&parsed)?;
            let v = client
                .call(
                    "POST",
                    &format!("/v1/bundles/{}/invoke/{}", segment(name), segment(export)),
                    Some(("application/json", &body)),
                )?
                .json()?;
            if args.json {
                show(out, &v)?;
            } else {
                w!(out, "{}", v["results"]);
            }
            if *stats {
                print_where(err, &v);
            }
        }
        RemoteCommand::Run {
            name,
            stdin,
            env,
            stats,
            args: guest_args,
        } => {
            let mut body = json!({ "args": guest_args });
            let mut vars = serde_json::Map::new();
            for kv in env {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("invalid --env `{kv}`: expected KEY=VALUE"))?;
                vars.insert(k.to_string(), Value::String(v.to_string()));
            }
            body["env"] = Value::Object(vars);
            if let Some(path) = stdin {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read --stdin {}", path.display()))?;
                body["stdin_base64"] =
                    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
            }
            let body = serde_json::to_vec(&body)?;
            let v = client
                .call(
                    "POST",
                    &format!("/v1/bundles/{}/run", segment(name)),
                    Some(("application/json", &body)),
                )?
                .json()?;
            if args.json {
                show(out, &v)?;
                return Ok(0);
            }
            out.write_all(&output(&v, "stdout")?)
                .and_then(|()| out.flush())
                .map_err(OutputError)?;
            let _ = err.write_all(&output(&v, "stderr")?);
            if *stats {
                print_where(err, &v);
            }
            let code = v["exit_code"].as_i64().unwrap_or(i64::from(FAILURE));
            return Ok(u8::try_from(code & 0xff).unwrap_or(FAILURE));
        }
    }
    Ok(0)
}

/// The bytes of `stdout` or `stderr` of a run answer, decoded by its `_encoding`.
fn output(v: &Value, field: &str) -> anyhow::Result<Vec<u8>> {
    let text = v[field].as_str().unwrap_or("");
    match v[format!("{field}_encoding")].as_str() {
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(text)
            .with_context(|| format!("the daemon's {field} is not valid base64")),
        _ => Ok(text.as_bytes().to_vec()),
    }
}

/// The bytes a kernel's launches copied, for a `--stats` line (`run` and `remote`): nothing
/// when none were (a kernel that never ran, or a guest's own `wasi:cuda` launch).
pub fn copied_text(to_device: u64, from_device: u64) -> String {
    if to_device + from_device == 0 {
        String::new()
    } else {
        format!("; {to_device} bytes copied in, {from_device} out")
    }
}

/// `--stats`: where a call ran, and each kernel's dispatches and declines.
fn print_where(err: &mut dyn Write, v: &Value) {
    let _ = writeln!(err, "ran on: {}", v["ran_on"].as_str().unwrap_or("?"));
    for k in v["kernels"].as_array().into_iter().flatten() {
        let declined: Vec<String> = k["declined"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        let (to, from) = (
            k["bytes_to_device"].as_u64().unwrap_or(0),
            k["bytes_from_device"].as_u64().unwrap_or(0),
        );
        let copied = copied_text(to, from);
        let _ = writeln!(
            err,
            "  {}: {} dispatched ({} µs on the device{copied}){}",
            k["kernel"].as_str().unwrap_or("?"),
            k["dispatched"],
            k["device_us"],
            if declined.is_empty() {
                String::new()
            } else {
                format!(", declined: {}", declined.join(", "))
            }
        );
    }
}
