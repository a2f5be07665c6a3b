//! Writing files so that they appear whole or not at all.
//!
//! Write to a temporary file in the destination's directory, `fsync`, then rename over the
//! destination: a crash or an error leaves either the old file or nothing, never a partial one.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically; `mode` sets Unix permissions (e.g. `0o600` for secrets).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fail =
        |what: &str, e: std::io::Error| anyhow::anyhow!("cannot {what} {}: {e}", path.display());
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tensorwasm-").suffix(".tmp");
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| fail("create a temporary file for", e))?;
    tmp.write_all(bytes).map_err(|e| fail("write", e))?;
    tmp.as_file().sync_all().map_err(|e| fail("sync", e))?;
    tmp.persist(path)
        .map_err(|e| fail("rename into", e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
