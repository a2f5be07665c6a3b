//! The bundle store: bundle files in the data directory, and the deployed bundles in memory.
//!
//! Layout: `DATA/bundles/TENANT/NAME.twb`. A deploy writes `.tmp-NAME-…` in the tenant's
//! directory, syncs it, renames it over `NAME.twb` and syncs the directory, and only then is the
//! deploy acknowledged, so an acknowledged bundle survives a crash and a half-written one is
//! never read (temporary files are removed at start). At start every stored bundle is verified
//! and restored again exactly as a new deploy would be; one that fails (tampered on disk,
//! expired, key no longer trusted, built for another engine) is skipped and logged, never fatal.
//!
//! This module trusts nothing it reads from disk more than it trusts a request body.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tensorwasm_bundle::TrustedKeys;
use wasmtime::ExternType;

use super::error::{ApiError, from_runtime};
use super::names::validate_name;
use crate::invoke::{Prepared, Runtime};
use crate::values;

/// A bundle that passed verification and is ready to run.
#[derive(Debug)]
pub struct Deployed {
    /// Owning tenant.
    pub tenant: String,
    /// Bundle name (equal to the signed manifest's name).
    pub name: String,
    /// Signed version.
    pub version: u64,
    /// BLAKE3 of the bundle file, hex.
    pub digest: String,
    /// Bundle size in bytes.
    pub size: u64,
    /// Public description, as served by inspect.
    pub info: BundleInfo,
    /// Unix seconds after which the bundle is refused.
    pub expires_at: Option<u64>,
    /// Linked, ready to instantiate.
    pub prepared: Prepared,
    /// Time the restore took.
    pub restore_time: Duration,
}

/// What `GET /v1/bundles/{name}` shows.
#[derive(Debug, Clone, Serialize)]
pub struct BundleInfo {
    pub name: String,
    pub version: u64,
    pub digest: String,
    pub bundle_bytes: u64,
    pub created_at: Option<u64>,
    pub expires_at: Option<u64>,
    pub deployed_at: u64,
    pub tool: String,
    pub signers: Vec<String>,
    pub target: String,
    pub exports: Vec<ExportInfo>,
    pub command: bool,
    pub kernels: Vec<String>,
    pub restore_us: u64,
}

/// One function export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportInfo {
    pub name: String,
    pub params: Vec<String>,
    pub results: Vec<String>,
}

/// Verifies and restores `bytes` for `tenant` (the caller checks the name).
pub fn admit(
    runtime: &Runtime,
    trusted: &TrustedKeys,
    tenant: &str,
    bytes: &[u8],
    now: u64,
    deployed_at: u64,
) -> Result<Deployed, ApiError> {
    let started = Instant::now();
    let restored = crate::restore::restore(runtime.engine(), bytes, trusted, now)
        .map_err(|e| from_runtime(&e))?;
    let kernels: Vec<String> = restored
        .kernels
        .iter()
        .flat_map(|t| t.kernels.iter().map(|k| k.name.clone()))
        .collect();
    let prepared = runtime
        .prepare_with(
            &restored.module,
            restored
                .kernels
                .map(|t| std::sync::Arc::new(crate::offload::Kernels::new(t))),
        )
        .map_err(|e| from_runtime(&e))?
        // Each tenant's launches on a device queue of its own.
        .on_queue(tenant);
    let restore_time = started.elapsed();
    let manifest = &restored.manifest;
    let digest = blake3::hash(bytes).to_hex().to_string();
    let module = prepared.module();
    let exports = module
        .exports()
        .filter_map(|e| match e.ty() {
            ExternType::Func(f) => Some(ExportInfo {
                name: e.name().to_string(),
                params: f.params().map(|t| values::type_name(&t)).collect(),
                results: f.results().map(|t| values::type_name(&t)).collect(),
            }),
            _ => None,
        })
        .collect();
    let info = BundleInfo {
        name: manifest.name.clone(),
        version: manifest.version,
        digest: digest.clone(),
        bundle_bytes: bytes.len() as u64,
        created_at: manifest.created_at,
        expires_at: manifest.expires_at,
        deployed_at,
        tool: manifest.tool.clone(),
        signers: restored
            .signatures
            .iter()
            .filter(|s| s.trusted)
            .map(|s| s.key_id.to_string())
            .collect(),
        target: manifest.targets[restored.target].triple.clone(),
        exports,
        command: matches!(module.get_export("_start"), Some(ExternType::Func(_))),
        kernels,
        restore_us: restore_time.as_micros() as u64,
    };
    Ok(Deployed {
        tenant: tenant.to_string(),
        name: manifest.name.clone(),
        version: manifest.version,
        digest,
        size: bytes.len() as u64,
        info,
        expires_at: manifest.expires_at,
        prepared,
        restore_time,
    })
}

/// Deployed bundles by (tenant, name).
#[derive(Debug, Default)]
pub struct Registry {
    map: RwLock<HashMap<(String, String), Arc<Deployed>>>,
}

impl Registry {
    /// The tenant's bundle `name`.
    pub fn get(&self, tenant: &str, name: &str) -> Option<Arc<Deployed>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(&(tenant.to_string(), name.to_string())).cloned()
    }

    /// The tenant's bundles, sorted by name.
    pub fn list(&self, tenant: &str) -> Vec<Arc<Deployed>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = map
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, d)| Arc::clone(d))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Inserts or replaces; returns the total count.
    pub fn insert(&self, deployed: Arc<Deployed>) -> usize {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.insert(
            (deployed.tenant.clone(), deployed.name.clone()),
            Arc::clone(&deployed),
        );
        map.len()
    }

    /// Removes; returns the removed bundle and the total count.
    pub fn remove(&self, tenant: &str, name: &str) -> (Option<Arc<Deployed>>, usize) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        let removed = map.remove(&(tenant.to_string(), name.to_string()));
        (removed, map.len())
    }

    /// Total bundles over all tenants.
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no bundle is deployed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The bundle files under `DATA/bundles`.
#[derive(Debug)]
pub struct BundleDir {
    root: PathBuf,
}

/// A stored bundle found at start.
#[derive(Debug)]
pub struct StoredBundle {
    pub tenant: String,
    pub name: String,
    pub path: PathBuf,
}

impl BundleDir {
    /// Opens (creating) `DATA/bundles`.
    pub fn open(data_dir: &Path) -> std::io::Result<BundleDir> {
        let root = data_dir.join("bundles");
        fs::create_dir_all(&root)?;
        sync_dir(data_dir)?;
        Ok(BundleDir { root })
    }

    fn tenant_dir(&self, tenant: &str) -> PathBuf {
        self.root.join(tenant)
    }

    /// Path of a stored bundle.
    pub fn path(&self, tenant: &str, name: &str) -> PathBuf {
        self.tenant_dir(tenant).join(format!("{name}.twb"))
    }

    /// Writes `bytes` as the tenant's bundle `name`: temp file, sync, rename, sync directory.
    /// On error nothing new is left behind under the final name.
    pub fn write(&self, tenant: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.tenant_dir(tenant);
        if !dir.is_dir() {
            fs::create_dir_all(&dir)?;
            sync_dir(&self.root)?;
        }
        let tmp = dir.join(format!(
            ".tmp-{name}-{}-{}",
            std::process::id(),
            super::audit::now_ms()
        ));
        let result = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, self.path(tenant, name))?;
            sync_dir(&dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Removes the tenant's bundle `name` and syncs the directory.
    pub fn remove(&self, tenant: &str, name: &str) -> std::io::Result<()> {
        match fs::remove_file(self.path(tenant, name)) {
            Ok(()) => sync_dir(&self.tenant_dir(tenant)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every stored bundle, after removing leftover temporary files. Entries whose names are
    /// not valid tenant or bundle names are reported in the second list and left alone.
    pub fn scan(&self) -> std::io::Result<(Vec<StoredBundle>, Vec<String>)> {
        let mut found = Vec::new();
        let mut ignored = Vec::new();
        for tenant_entry in fs::read_dir(&self.root)? {
            let tenant_entry = tenant_entry?;
            let tenant = tenant_entry.file_name().to_string_lossy().into_owned();
            if !tenant_entry.file_type()?.is_dir() || validate_name(&tenant).is_err() {
                ignored.push(tenant_entry.path().display().to_string());
                continue;
            }
            for entry in fs::read_dir(tenant_entry.path())? {
                let entry = entry?;
                let file = entry.file_name().to_string_lossy().into_owned();
                if file.starts_with(".tmp-") {
                    fs::remove_file(entry.path())?;
                    ignored.push(format!(
                        "{} (removed: unfinished deploy)",
                        entry.path().display()
                    ));
                    continue;
                }
                match file.strip_suffix(".twb") {
                    Some(name) if validate_name(name).is_ok() && entry.file_type()?.is_file() => {
                        found.push(StoredBundle {
                            tenant: tenant.clone(),
                            name: name.to_string(),
                            path: entry.path(),
                        });
                    }
                    _ => ignored.push(entry.path().display().to_string()),
                }
            }
            sync_dir(&tenant_entry.path())?;
        }
        found.sort_by(|a, b| (&a.tenant, &a.name).cmp(&(&b.tenant, &b.name)));
        Ok((found, ignored))
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether an I/O error means the disk is full.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}
