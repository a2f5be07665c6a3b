//! The HTTP daemon (`tensorwasmd`): the parts a server needs on top of the runtime.
//!
//! ```text
//! TCP ─► serve (hyper: head size/count, head read timeout, connection limit, graceful drain)
//!     ─► api::router (axum): request id + metrics ─► body timeout ─► handler
//!          handler: authorize (token → tenant, rate, right) ─► validate name ─► bounded body
//!                 ─► deploy: admit (verify + restore + link, blocking pool) ─► version checks
//!                            ─► store (temp, fsync, rename, fsync dir) ─► registry ─► audit
//!                 ─► invoke/run: registry (tenant-scoped) ─► semaphore ─► blocking pool
//!                            ─► fresh store + instance from the bundle's InstancePre
//! ```
//!
//! Start-up ([`start`]) loads the trusted keys and tokens, builds the engine (pooling
//! allocator by default), re-verifies and restores every stored bundle, and only then binds.

pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod metrics;
pub mod names;
pub mod serve;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tensorwasm_bundle::{PublicKey, TrustedKeys};
use tokio::sync::Semaphore;
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::invoke::Runtime;
use crate::limits::Limits;
use audit::{Audit, Record, now_secs};
use auth::Tokens;
use config::{Allocator, Config};
use store::{BundleDir, Registry, admit};

/// Shared state of a running daemon.
#[derive(Debug)]
pub struct App {
    /// The configuration it started with.
    pub config: Config,
    /// Engine, linker and epoch ticker.
    pub runtime: Runtime,
    /// Keys whose signatures are accepted.
    pub trusted: TrustedKeys,
    /// Bearer tokens.
    pub tokens: Tokens,
    /// Deployed bundles.
    pub registry: Registry,
    /// Bundle files.
    pub dir: BundleDir,
    /// The audit log.
    pub audit: Audit,
    /// Metrics.
    pub metrics: metrics::Metrics,
    /// Concurrent-invocation permits.
    pub invocations: Arc<Semaphore>,
    /// Serializes deploys and deletes.
    pub deploy_lock: tokio::sync::Mutex<()>,
    /// Set when shutdown begins (`/readyz` answers 503).
    pub draining: AtomicBool,
    /// Per-invocation limits.
    pub limits: Limits,
    boot: u64,
    next_id: AtomicU64,
}

impl App {
    /// A fresh request id: boot prefix and a counter.
    pub fn next_request_id(&self) -> Arc<str> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        Arc::from(format!("{:08x}-{n:x}", self.boot))
    }
}

/// Reads public keys from files, and from every `*.pub` file in directories.
pub fn load_trusted(paths: &[PathBuf]) -> Result<TrustedKeys, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| {
                format!("cannot read trusted-keys directory {}: {e}", path.display())
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "pub"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let keys = files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read public key {}: {e}", path.display()))?;
            PublicKey::from_file_text(&text)
                .map_err(|e| format!("{} is not a tensorwasm public key: {e}", path.display()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if keys.is_empty() {
        return Err("no trusted public keys found: the daemon would accept no bundle".into());
    }
    Ok(TrustedKeys::new(keys))
}

/// Bytes of each pooled memory and table slot kept resident between instances.
pub const KEEP_RESIDENT: usize = 64 << 10;

/// The runtime engine: [`crate::engine::base_config`], plus the instance allocator (which does
/// not change compiled code, so bundles stay compatible).
pub fn engine(config: &Config) -> Result<Engine, String> {
    let mut wasm = crate::engine::base_config();
    if config.allocator == Allocator::Pooling {
        let slots = u32::try_from(config.max_concurrent + 2).unwrap_or(u32::MAX);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .max_memory_size(config.max_memory)
            // A slot's first 64 KiB of memory and table are zeroed with memset when it is
            // freed, instead of returned to the kernel with madvise: for the small instances
            // most invocations make, a system call per instance saved (docs/PERFORMANCE.md).
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&wasm).map_err(|e| format!("cannot create the Wasm engine: {e:#}"))
}

/// Builds the daemon's state: keys, tokens, engine, data directory, and every stored bundle
/// re-verified and restored (bad ones skipped and logged).
pub fn start(config: Config) -> Result<Arc<App>, String> {
    config.validate()?;
    let trusted = load_trusted(&config.trusted)?;
    let tokens = Tokens::load(&config.tokens, config.rate, config.burst)?;
    let engine = engine(&config)?;
    let backend =
        crate::offload::BackendKind::parse(&config.backend).map_err(|e| format!("backend: {e}"))?;
    let host = crate::offload::Host::new(backend, config.min_threads)
        .map_err(|e| e.to_string())?
        .with_limits(crate::offload::LaunchLimits {
            max_inflight: config.max_inflight_launches,
            ..crate::offload::LaunchLimits::default()
        });
    let runtime = Runtime::with_host(engine, host).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", config.data_dir.display()))?;
    let dir = BundleDir::open(&config.data_dir)
        .map_err(|e| format!("cannot open {}: {e}", config.data_dir.display()))?;
    let audit_path = config.data_dir.join("audit.jsonl");
    let audit = Audit::open(&audit_path)
        .map_err(|e| format!("cannot open audit log {}: {e}", audit_path.display()))?;
    let limits = Limits {
        timeout: config.invoke_timeout,
        max_memory: config.max_memory,
    };
    let app = App {
        invocations: Arc::new(Semaphore::new(config.max_concurrent)),
        runtime,
        trusted,
        tokens,
        registry: Registry::default(),
        dir,
        audit,
        metrics: metrics::Metrics::new(),
        deploy_lock: tokio::sync::Mutex::new(()),
        draining: AtomicBool::new(false),
        limits,
        boot: audit::now_ms() & 0xffff_ffff,
        next_id: AtomicU64::new(1),
        config,
    };
    restore_all(&app)?;
    Ok(Arc::new(app))
}

fn restore_all(app: &App) -> Result<(), String> {
    let (stored, ignored) = app
        .dir
        .scan()
        .map_err(|e| format!("cannot scan the bundle store: {e}"))?;
    for path in ignored {
        tracing::warn!(path, "ignoring an entry in the bundle store");
    }
    let now = now_secs();
    for item in stored {
        let outcome = std::fs::read(&item.path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|bytes| {
                admit(
                    &app.runtime,
                    &app.trusted,
                    &item.tenant,
                    &bytes,
                    now,
                    file_time(&item.path),
                )
                .map_err(|e| format!("{}: {}", e.code, e.message))
            })
            .and_then(|d| {
                if d.name == item.name {
                    Ok(d)
                } else {
                    Err(format!(
                        "stored as `{}` but signed as `{}`",
                        item.name, d.name
                    ))
                }
            });
        match outcome {
            Ok(deployed) => {
                tracing::info!(tenant = %item.tenant, bundle = %item.name,
                    version = deployed.version, "restored");
                app.metrics
                    .restore_seconds
                    .observe(deployed.restore_time.as_secs_f64());
                let mut record = Record::new("restore", "ok", "daemon");
                record.tenant = Some(&item.tenant);
                record.bundle = Some(&item.name);
                record.version = Some(deployed.version);
                record.digest = Some(&deployed.digest);
                audit_or_log(app, &record);
                app.registry.insert(Arc::new(deployed));
            }
            Err(e) => {
                tracing::error!(tenant = %item.tenant, bundle = %item.name,
                    path = %item.path.display(), error = %e, "skipping a stored bundle");
                let mut record = Record::new("restore", "refused", "daemon");
                record.tenant = Some(&item.tenant);
                record.bundle = Some(&item.name);
                record.detail = Some(&e);
                audit_or_log(app, &record);
            }
        }
    }
    app.metrics.bundles.set(app.registry.len() as i64);
    Ok(())
}

fn audit_or_log(app: &App, record: &Record<'_>) {
    if let Err(e) = app.audit.record(record) {
        tracing::error!(error = %e, "cannot write the audit log");
    }
}

fn file_time(path: &Path) -> u64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
