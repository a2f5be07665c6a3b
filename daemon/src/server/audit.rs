//! The append-only audit log: one JSON object per line, one line per state change (deploy,
//! delete, restore at start) and per refused deploy, with who, what, when, the bundle digest
//! and the request id.
//!
//! Lines are appended under a lock and synced before `record` returns. The file is opened in
//! append mode and never truncated or rewritten by the daemon.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The audit log file.
#[derive(Debug)]
pub struct Audit {
    file: Mutex<File>,
}

/// One audit record.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// `deploy`, `delete`, `restore`, `restore-skipped`, `start`, `stop`.
    pub action: &'a str,
    /// `ok` or `refused`.
    pub outcome: &'a str,
    /// The token's name (`token:HASHPREFIX` when it has none), or `daemon`.
    pub who: &'a str,
    /// Tenant of the bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<&'a str>,
    /// Bundle name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<&'a str>,
    /// Bundle version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// BLAKE3 of the bundle file, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<&'a str>,
    /// The request that caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    /// Error code when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
    /// Extra detail (error message, file path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

impl<'a> Record<'a> {
    /// A record of `action` by `who` with `outcome`, stamped now.
    pub fn new(action: &'a str, outcome: &'a str, who: &'a str) -> Record<'a> {
        Record {
            ts_ms: now_ms(),
            action,
            outcome,
            who,
            tenant: None,
            bundle: None,
            version: None,
            digest: None,
            request_id: None,
            code: None,
            detail: None,
        }
    }
}

impl Audit {
    /// Opens (creating) the audit log at `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Audit> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Audit {
            file: Mutex::new(file),
        })
    }

    /// Appends `record` and syncs it to disk.
    pub fn record(&self, record: &Record<'_>) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = match self.file.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        file.write_all(&line)?;
        file.sync_data()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}
