//! Daemon configuration: defaults, then a TOML file, then command-line flags (each layer
//! overrides the one before). Every limit has a safe default; the daemon binds to loopback unless
//! told otherwise.
//!
//! This module only parses and validates; it never opens sockets or data files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Which instance allocator the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allocator {
    /// Wasmtime's pooling allocator: slots reserved at start, reused per instance.
    Pooling,
    /// mmap per instance.
    OnDemand,
}

impl std::str::FromStr for Allocator {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pooling" => Ok(Allocator::Pooling),
            "on-demand" => Ok(Allocator::OnDemand),
            other => Err(format!(
                "unknown allocator `{other}` (expected pooling or on-demand)"
            )),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format `{other}` (expected text or json)"
            )),
        }
    }
}

/// Everything the daemon needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Bundle store and audit log live here.
    pub data_dir: PathBuf,
    /// Bearer tokens (TOML).
    pub tokens: PathBuf,
    /// Trusted public keys: files, or directories whose `*.pub` files are read.
    pub trusted: Vec<PathBuf>,
    /// Largest request body accepted for a deploy.
    pub max_bundle_bytes: usize,
    /// Largest request body accepted for invoke and run.
    pub max_request_bytes: usize,
    /// Largest request head (request line and headers) accepted.
    pub max_header_bytes: usize,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Time allowed to receive a request's head; also closes idle keep-alive connections.
    pub header_timeout: Duration,
    /// Time allowed to receive a request's body.
    pub body_timeout: Duration,
    /// Most open connections; further ones are closed at once.
    pub max_connections: usize,
    /// Most guest invocations running at once; further ones wait for a slot.
    pub max_concurrent: usize,
    /// How long an invocation waits for a free slot before it gets 503 `overloaded` (zero:
    /// refused at once).
    pub queue_timeout: Duration,
    /// Default per-token rate (requests per second; 0 = unlimited).
    pub rate: f64,
    /// Default per-token burst.
    pub burst: f64,
    /// Wall-time limit of one invocation.
    pub invoke_timeout: Duration,
    /// Linear-memory limit of one instance.
    pub max_memory: usize,
    /// Instance allocator.
    pub allocator: Allocator,
    /// Time allowed for in-flight requests to finish on shutdown.
    pub drain_timeout: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// Log level filter (`error`, `warn`, `info`, `debug`, `trace`).
    pub log_level: String,
    /// Where offloaded loop nests run: `auto`, `cuda`, `emulated` or `none`.
    pub backend: String,
    /// Overrides every kernel's launch threshold (fewest threads worth a launch).
    pub min_threads: Option<u64>,
    /// Kernel launches in flight at once (every tenant together); past it a dispatch declines
    /// with `quota` and the loop runs on the CPU.
    pub max_inflight_launches: usize,
}

impl Config {
    /// The defaults, with the three paths that have none.
    pub fn with_paths(data_dir: PathBuf, tokens: PathBuf, trusted: Vec<PathBuf>) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            data_dir,
            tokens,
            trusted,
            max_bundle_bytes: 64 << 20,
            max_request_bytes: 4 << 20,
            max_header_bytes: 16 << 10,
            max_headers: 64,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_concurrent: default_concurrency(),
            queue_timeout: Duration::from_secs(1),
            rate: 1000.0,
            burst: 2000.0,
            invoke_timeout: Duration::from_secs(10),
            max_memory: 256 << 20,
            allocator: Allocator::Pooling,
            drain_timeout: Duration::from_secs(30),
            log_format: LogFormat::Text,
            backend: "auto".into(),
            min_threads: None,
            max_inflight_launches: crate::offload::LaunchLimits::default().max_inflight,
            log_level: "info".into(),
        }
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.trusted.is_empty() {
            return Err(
                "no trusted keys given (--trusted FILE|DIR): the daemon would accept no \
                        bundle"
                    .into(),
            );
        }
        if !(1..=MAX_COUNT).contains(&self.max_concurrent)
            || !(1..=MAX_COUNT).contains(&self.max_connections)
            || !(1..=MAX_COUNT).contains(&self.max_headers)
        {
            return Err(format!(
                "max-concurrent, max-connections and max-headers must be 1 to {MAX_COUNT}"
            ));
        }
        if self.max_header_bytes < 1024 {
            return Err("max-header-bytes must be at least 1KiB".into());
        }
        if !(self.rate >= 0.0 && self.burst >= 1.0 && self.rate.is_finite()) {
            return Err("rate must be >= 0 and burst >= 1".into());
        }
        if self.invoke_timeout.is_zero() || self.header_timeout.is_zero() {
            return Err("timeouts must be greater than zero".into());
        }
        if self.max_inflight_launches > MAX_COUNT {
            return Err(format!("max-inflight-launches must be 0 to {MAX_COUNT}"));
        }
        Ok(())
    }
}

/// Largest accepted value of the count settings.
pub const MAX_COUNT: usize = 1_000_000;

/// Twice the number of CPUs, at least 4.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .max(4)
}

/// The config file: every field optional, names as on the command line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub tokens: Option<PathBuf>,
    pub trusted: Option<Vec<PathBuf>>,
    pub max_bundle_bytes: Option<String>,
    pub max_request_bytes: Option<String>,
    pub max_header_bytes: Option<String>,
    pub max_headers: Option<usize>,
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub max_concurrent: Option<usize>,
    pub queue_timeout: Option<String>,
    pub rate: Option<f64>,
    pub burst: Option<f64>,
    pub invoke_timeout: Option<String>,
    pub max_memory: Option<String>,
    pub allocator: Option<Allocator>,
    pub drain_timeout: Option<String>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub backend: Option<String>,
    pub min_threads: Option<u64>,
    pub max_inflight_launches: Option<usize>,
}

impl FileConfig {
    /// Reads and parses a TOML config file. Relative paths in it are taken relative to the
    /// file's directory.
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        let mut file: FileConfig =
            toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = file.data_dir.as_mut() {
            rebase(p);
        }
        if let Some(p) = file.tokens.as_mut() {
            rebase(p);
        }
        for p in file.trusted.iter_mut().flatten() {
            rebase(p);
        }
        Ok(file)
    }

    /// Applies the file's values over `config`.
    pub fn apply(self, config: &mut Config) -> Result<(), String> {
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = self.$field {
                    config.$field = v;
                }
            };
            ($field:ident, $parse:ident) => {
                if let Some(v) = self.$field.as_deref() {
                    config.$field =
                        $parse(v).map_err(|e| format!("{}: {e}", stringify!($field)))?;
                }
            };
        }
        set!(listen);
        set!(data_dir);
        set!(tokens);
        set!(trusted);
        set!(max_bundle_bytes, parse_size);
        set!(max_request_bytes, parse_size);
        set!(max_header_bytes, parse_size);
        set!(max_headers);
        set!(header_timeout, parse_duration);
        set!(body_timeout, parse_duration);
        set!(max_connections);
        set!(max_concurrent);
        set!(queue_timeout, parse_duration);
        set!(rate);
        set!(burst);
        set!(invoke_timeout, parse_duration);
        set!(max_memory, parse_size);
        set!(allocator);
        set!(drain_timeout, parse_duration);
        set!(log_format);
        set!(log_level);
        set!(backend);
        if let Some(n) = self.min_threads {
            config.min_threads = Some(n);
        }
        set!(max_inflight_launches);
        Ok(())
    }
}

/// `500ms`, `10s`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 500ms, 10s or 2m"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "`{text}` is not a duration such as 500ms, 10s or 2m"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{text}` is out of range"))
}

/// `4096`, `16KiB`, `64MiB`, `1GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB` as binary units).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: usize = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size such as 4096, 16KiB or 64MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "`{text}` is not a size such as 4096, 16KiB or 64MiB"
            ));
        }
    };
    value
        .checked_mul(1usize << shift)
        .ok_or_else(|| format!("`{text}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("16k"), Ok(16 << 10));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn file_values_override_defaults_and_unknown_keys_are_refused() {
        let mut config = Config::with_paths("d".into(), "t".into(), vec!["k.pub".into()]);
        let file: FileConfig =
            toml::from_str("invoke-timeout = \"2s\"\nmax-memory = \"1MiB\"\nrate = 0.0\n").unwrap();
        file.apply(&mut config).unwrap();
        assert_eq!(config.invoke_timeout, Duration::from_secs(2));
        assert_eq!(config.max_memory, 1 << 20);
        assert!(toml::from_str::<FileConfig>("no-such-key = 1").is_err());
    }
}
