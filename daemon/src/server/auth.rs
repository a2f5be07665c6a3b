//! Bearer tokens, tenants, rights and per-token rate limits.
//!
//! The tokens file (TOML) lists one `[[token]]` table per token:
//!
//! ```toml
//! [[token]]
//! name = "ci-deployer"            # who, in the audit log (default: the token's hash prefix)
//! tenant = "acme"                 # [a-z0-9._-], 1-64 characters
//! rights = ["deploy", "read"]     # deploy (PUT/POST/DELETE bundles), invoke (invoke, run), read
//! token_blake3 = "9f2c…"          # BLAKE3 of the token, hex (or `token = "..."` in clear)
//! rate = 100                      # optional: requests per second, 0 = unlimited
//! burst = 200                     # optional
//! ```
//!
//! Only BLAKE3 digests of tokens are kept in memory, and lookups go by digest, so comparing a
//! presented token never compares secret bytes directly. This module never logs a token.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::Deserialize;

use super::names::validate_name;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// Deploy and delete bundles.
    Deploy,
    /// Invoke exports and run commands.
    Invoke,
    /// List and inspect bundles.
    Read,
}

impl Right {
    /// The name used in the tokens file and in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Right::Deploy => "deploy",
            Right::Invoke => "invoke",
            Right::Read => "read",
        }
    }
}

/// One token's identity, rights and rate limiter.
#[derive(Debug)]
pub struct Principal {
    /// Who, for logs and the audit log.
    pub name: String,
    /// The tenant whose bundles this token sees.
    pub tenant: String,
    rights: Vec<Right>,
    bucket: Mutex<Bucket>,
    rate: f64,
    burst: f64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Principal {
    /// Whether the token has `right`.
    pub fn has(&self, right: Right) -> bool {
        self.rights.contains(&right)
    }

    /// Takes one request from the token bucket. `Err(seconds)` says when to retry.
    pub fn take(&self) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut bucket = match self.bucket.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

/// All tokens, by the BLAKE3 digest of the token.
#[derive(Debug, Default)]
pub struct Tokens {
    by_digest: HashMap<[u8; 32], std::sync::Arc<Principal>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: Option<String>,
    tenant: String,
    rights: Vec<Right>,
    token: Option<String>,
    token_blake3: Option<String>,
    rate: Option<f64>,
    burst: Option<f64>,
}

/// Shortest token accepted in clear, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;

impl Tokens {
    /// Reads the tokens file; `rate` and `burst` are the defaults for tokens that set none.
    pub fn load(path: &Path, rate: f64, burst: f64) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read tokens file {}: {e}", path.display()))?;
        Tokens::parse(&text, rate, burst)
            .map_err(|e| format!("tokens file {}: {e}", path.display()))
    }

    /// Parses tokens-file text.
    pub fn parse(text: &str, rate: f64, burst: f64) -> Result<Tokens, String> {
        let file: TokensFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut tokens = Tokens::default();
        for (i, entry) in file.token.into_iter().enumerate() {
            let digest = match (&entry.token, &entry.token_blake3) {
                (Some(t), None) if t.len() >= MIN_TOKEN_LEN => {
                    *blake3::hash(t.as_bytes()).as_bytes()
                }
                (Some(_), None) => {
                    return Err(format!(
                        "token {i}: a token must be at least {MIN_TOKEN_LEN} bytes"
                    ));
                }
                (None, Some(hex_digest)) => {
                    let mut d = [0u8; 32];
                    hex::decode_to_slice(hex_digest.trim(), &mut d)
                        .map_err(|_| format!("token {i}: token_blake3 must be 64 hex digits"))?;
                    d
                }
                _ => {
                    return Err(format!(
                        "token {i}: give exactly one of token, token_blake3"
                    ));
                }
            };
            validate_name(&entry.tenant).map_err(|e| format!("token {i}: tenant: {e}"))?;
            if entry.rights.is_empty() {
                return Err(format!("token {i}: rights is empty"));
            }
            let rate = entry.rate.unwrap_or(rate);
            let burst = entry.burst.unwrap_or(burst).max(1.0);
            if !(rate >= 0.0 && rate.is_finite()) {
                return Err(format!("token {i}: rate must be >= 0"));
            }
            let principal = Principal {
                name: entry
                    .name
                    .unwrap_or_else(|| format!("token:{}", hex::encode(&digest[..4]))),
                tenant: entry.tenant,
                rights: entry.rights,
                bucket: Mutex::new(Bucket {
                    tokens: burst,
                    last: Instant::now(),
                }),
                rate,
                burst,
            };
            if tokens
                .by_digest
                .insert(digest, std::sync::Arc::new(principal))
                .is_some()
            {
                return Err(format!("token {i}: the same token is listed twice"));
            }
        }
        if tokens.by_digest.is_empty() {
            return Err("no [[token]] entries: nobody could use the daemon".into());
        }
        Ok(tokens)
    }

    /// The principal for a presented bearer token.
    pub fn lookup(&self, token: &str) -> Option<std::sync::Arc<Principal>> {
        self.by_digest
            .get(blake3::hash(token.as_bytes()).as_bytes())
            .cloned()
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[token]]
tenant = "acme"
rights = ["deploy", "read"]
token = "0123456789abcdef0123"
rate = 1
burst = 2
"#;

    #[test]
    fn tokens_parse_and_look_up_by_digest() {
        let tokens = Tokens::parse(FILE, 0.0, 1.0).unwrap();
        let p = tokens.lookup("0123456789abcdef0123").unwrap();
        assert_eq!(p.tenant, "acme");
        assert!(p.has(Right::Deploy) && !p.has(Right::Invoke));
        assert!(tokens.lookup("0123456789abcdef012").is_none());
    }

    #[test]
    fn the_bucket_allows_a_burst_then_refuses() {
        let tokens = Tokens::parse(FILE, 0.0, 1.0).unwrap();
        let p = tokens.lookup("0123456789abcdef0123").unwrap();
        assert!(p.take().is_ok());
        assert!(p.take().is_ok());
        assert_eq!(p.take(), Err(1));
    }

    #[test]
    fn bad_files_are_refused_with_the_entry_number() {
        for (text, needle) in [
            ("", "no [[token]]"),
            (
                "[[token]]\ntenant='a'\nrights=['read']\ntoken='short'",
                "at least",
            ),
            (
                "[[token]]\ntenant='../x'\nrights=['read']\ntoken='0123456789abcdef'",
                "tenant",
            ),
            (
                "[[token]]\ntenant='a'\nrights=['root']\ntoken='0123456789abcdef'",
                "root",
            ),
        ] {
            let err = Tokens::parse(text, 0.0, 1.0).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }
}
