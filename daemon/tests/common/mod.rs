//! Test harness for the real `tensorwasmd` binary: signed bundles built from WAT with the
//! compiler's library, a daemon on an ephemeral loopback port with its own data directory,
//! and a minimal HTTP/1.1 client over `std::net` (so tests control every byte on the wire).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tensorwasm_bundle::{BundleWriter, Manifest, SectionKind, SigningKey, Target};

pub const ARITH: &str = include_str!("../../../samples/wat/arith.wat");
pub const HELLO: &str = include_str!("../../../samples/wat/hello-wasi.wat");

/// Tokens in every fixture's tokens file.
pub const ALICE: &str = "alice-token-0123456789"; // acme: deploy, invoke, read
pub const READER: &str = "reader-token-0123456789"; // acme: read
pub const INVOKER: &str = "invoker-token-0123456789"; // acme: invoke, read
pub const BOB: &str = "bob-token-0123456789"; // globex: deploy, invoke, read
pub const SLOW: &str = "slow-token-0123456789"; // acme: invoke, read; 1 req/s, burst 2

const TOKENS: &str = r#"
[[token]]
name = "alice"
tenant = "acme"
rights = ["deploy", "invoke", "read"]
token = "alice-token-0123456789"
rate = 0

[[token]]
name = "reader"
tenant = "acme"
rights = ["read"]
token = "reader-token-0123456789"

[[token]]
name = "invoker"
tenant = "acme"
rights = ["invoke", "read"]
token = "invoker-token-0123456789"

[[token]]
name = "bob"
tenant = "globex"
rights = ["deploy", "invoke", "read"]
token_blake3 = "BOB_DIGEST"

[[token]]
name = "slow"
tenant = "acme"
rights = ["invoke", "read"]
token = "slow-token-0123456789"
rate = 1
burst = 2
"#;

/// The key the daemon trusts.
pub fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_bytes(&[7; 32]))
}

/// A key the daemon does not trust.
pub fn other_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_bytes(&[9; 32]))
}

/// A signed bundle of `wat` compiled for this host.
pub fn bundle(
    wat_text: &str,
    name: &str,
    version: u64,
    expires_at: Option<u64>,
    key: &SigningKey,
) -> Vec<u8> {
    let wasm = wat::parse_str(wat_text).expect("valid wat");
    let triple = tensorwasmd::engine::host_triple();
    let features = tensorwasm::aot::engine_for(&triple)
        .expect("engine")
        .get_wasm_features();
    let exports = tensorwasm::exports::validate(&wasm, features).expect("valid module");
    let compiled = tensorwasm::aot::compile(&wasm, &triple).expect("compiles");
    let mut writer = BundleWriter::new(Manifest {
        name: name.into(),
        version,
        created_at: None,
        expires_at,
        tool: tensorwasm::tool_version(),
        source_hash: *blake3::hash(&wasm).as_bytes(),
        exports,
        targets: vec![],
        sections: vec![],
    });
    writer
        .add_section(SectionKind::Wasm, &wasm)
        .expect("section");
    let code_section = writer
        .add_section(SectionKind::Code, &compiled.code)
        .expect("section");
    writer.manifest_mut().targets.push(Target {
        triple: triple.clone(),
        wasmtime_version: compiled.profile.wasmtime_version.clone(),
        engine_fingerprint: compiled.profile.fingerprint,
        engine_profile: compiled.profile.description.clone(),
        cpu_features: vec![],
        code_section,
    });
    writer.finish(&[key]).expect("signs")
}

/// `arith` v`version`, signed by the trusted key (cached per version).
pub fn arith(version: u64) -> Vec<u8> {
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<u64, Vec<u8>>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap();
    map.entry(version)
        .or_insert_with(|| bundle(ARITH, "arith", version, None, key()))
        .clone()
}

/// A data directory, tokens file and trusted key directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let bob = blake3::hash(BOB.as_bytes()).to_hex().to_string();
        std::fs::write(
            dir.path().join("tokens.toml"),
            TOKENS.replace("BOB_DIGEST", &bob),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        std::fs::write(
            dir.path().join("keys/release.pub"),
            key().public().to_file_text(),
        )
        .unwrap();
        Fixture { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn data(&self) -> PathBuf {
        self.path("data")
    }

    /// Starts the daemon with the fixture's files and `extra` flags.
    pub fn start(&self, extra: &[&str]) -> Daemon {
        self.start_command(Command::new(env!("CARGO_BIN_EXE_tensorwasmd")), extra)
    }

    /// Like [`Fixture::start`], with `workers` async worker threads (`TOKIO_WORKER_THREADS`).
    pub fn start_with_workers(&self, workers: usize, extra: &[&str]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tensorwasmd"));
        cmd.env("TOKIO_WORKER_THREADS", workers.to_string());
        self.start_command(cmd, extra)
    }

    /// Like [`Fixture::start`], with the data directory on a tmpfs of `size` (e.g. `"256k"`)
    /// mounted in a user and mount namespace of the daemon's own (`unshare`; no privileges
    /// needed where unprivileged user namespaces are allowed). `None` where they are not.
    pub fn start_on_small_disk(&self, size: &str, extra: &[&str]) -> Option<Daemon> {
        let ns = ["--user", "--map-root-user", "--mount"];
        let probe = Command::new("unshare")
            .args(ns)
            .args(["sh", "-c", "mount -t tmpfs -o size=4k tmpfs \"$0\"", "/tmp"])
            .output()
            .ok()?;
        if !probe.status.success() {
            return None;
        }
        std::fs::create_dir_all(self.data()).expect("data dir");
        let mut cmd = Command::new("unshare");
        cmd.args(ns).args([
            "sh",
            "-c",
            // Mount over the data directory, then become the daemon (same process id).
            &format!("mount -t tmpfs -o size={size} tmpfs \"$0\" && exec \"$@\""),
        ]);
        cmd.arg(self.data()).arg(env!("CARGO_BIN_EXE_tensorwasmd"));
        Some(self.start_command(cmd, extra))
    }

    fn start_command(&self, mut cmd: Command, extra: &[&str]) -> Daemon {
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data())
            .arg("--tokens")
            .arg(self.path("tokens.toml"))
            .arg("--trusted")
            .arg(self.path("keys"))
            .arg("--log-level")
            .arg("warn")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tensorwasmd");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let Some(addr) = line.trim().strip_prefix("tensorwasmd listening on http://") else {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let _ = child.kill();
            panic!("daemon did not start: {line:?} {err}");
        };
        Daemon {
            addr: addr.parse().expect("address"),
            child: Some(child),
        }
    }
}

/// A running daemon, killed on drop.
pub struct Daemon {
    pub addr: SocketAddr,
    pub child: Option<Child>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The error code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("<no code>")
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Daemon {
    /// One request on a fresh connection (`Connection: close`).
    pub fn req(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Resp {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        let mut wire = head.into_bytes();
        wire.extend_from_slice(body);
        self.raw(&wire)
    }

    /// Sends raw bytes and parses the response.
    pub fn raw(&self, wire: &[u8]) -> Resp {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        // The server may answer (e.g. 413) and close before reading everything.
        let _ = stream.write_all(wire);
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        parse_response(&raw).unwrap_or_else(|| {
            panic!(
                "unparseable response: {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(500)])
            )
        })
    }

    pub fn deploy(&self, name: &str, token: &str, bytes: &[u8]) -> Resp {
        self.req("PUT", &format!("/v1/bundles/{name}"), Some(token), bytes)
    }

    pub fn invoke(&self, name: &str, export: &str, token: &str, args: &str) -> Resp {
        self.req(
            "POST",
            &format!("/v1/bundles/{name}/invoke/{export}"),
            Some(token),
            args.as_bytes(),
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Sends a signal with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

/// Parses status, headers and body (content-length or chunked).
pub fn parse_response(raw: &[u8]) -> Option<Resp> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..nl]).ok()?.trim(), 16).ok()?;
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
        body = out;
    }
    Some(Resp {
        status,
        headers,
        body,
    })
}

/// Files under `dir`, recursively, as relative paths.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}
