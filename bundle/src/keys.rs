//! Signing keys, public keys, key ids, key files and the trust list.
//!
//! Key files are small text files (`NAME.key` secret, `NAME.pub` public), formats in
//! `docs/BUNDLE-FORMAT.md`. This module must never accept a weak (small-order) public key, never
//! print a secret key through `Debug`, and never treat a key id as proof of identity: trust is
//! decided on the full 32-byte public key.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::Signer;
use rand_core::OsRng;

use crate::error::{Error, Result};

/// BLAKE3 `derive_key` context for key ids.
pub const KEY_ID_CONTEXT: &str = "tensorwasm key id v1";
/// First line of a secret key file starts with this word.
pub const SECRET_KEY_TAG: &str = "tensorwasm-secret-key";
/// First line of a public key file starts with this word.
pub const PUBLIC_KEY_TAG: &str = "tensorwasm-public-key";
/// Version word on the first line of both key files.
pub const KEY_FILE_VERSION: &str = "v1";

/// Longest key file text accepted (a real one is about 100 bytes).
const MAX_KEY_FILE: usize = 1024;

/// Short, printable name of a public key: the first 8 bytes of
/// `BLAKE3::derive_key("tensorwasm key id v1", public key bytes)`. Displays as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = Error;

    /// Exactly 16 hex digits, either case.
    fn from_str(s: &str) -> Result<KeyId> {
        let mut id = [0u8; 8];
        if s.len() != 16 {
            return Err(Error::BadKeyId(s.chars().take(32).collect()));
        }
        hex::decode_to_slice(s, &mut id).map_err(|_| Error::BadKeyId(s.to_owned()))?;
        Ok(KeyId(id))
    }
}

/// An ed25519 secret key that signs bundles. `Debug` shows only its key id.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public().key_id())
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::generate(&mut OsRng))
    }

    /// The key from its 32 secret bytes (the ed25519 seed).
    pub fn from_bytes(secret: &[u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(secret))
    }

    /// `tensorwasm-secret-key v1 <key id>\n<64 hex digits of the seed>\n`.
    pub fn to_file_text(&self) -> String {
        format!(
            "{SECRET_KEY_TAG} {KEY_FILE_VERSION} {}\n{}\n",
            self.public().key_id(),
            hex::encode(self.0.to_bytes())
        )
    }

    /// Parses [`SigningKey::to_file_text`]; the key id on the first line must match the key.
    pub fn from_file_text(s: &str) -> Result<SigningKey> {
        let (stated, bytes) = parse_key_file(s, SECRET_KEY_TAG)?;
        let key = SigningKey::from_bytes(&bytes);
        let actual = key.public().key_id();
        if stated != actual {
            return Err(Error::KeyIdMismatch {
                at: "secret key file".to_owned(),
                stated,
                actual,
            });
        }
        Ok(key)
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Deterministic ed25519 signature over a 32-byte digest.
    pub(crate) fn sign_digest(&self, digest: &[u8; 32]) -> [u8; 64] {
        self.0.sign(digest).to_bytes()
    }
}

/// An ed25519 public key that is not weak (not of small order).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_bytes().hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl PublicKey {
    /// The key from its 32 compressed-point bytes; rejects bytes that are not a point and weak
    /// (small-order) keys.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| Error::BadKeyFile("public key is not a valid ed25519 point".to_owned()))?;
        if key.is_weak() {
            return Err(Error::BadKeyFile(
                "weak (small-order) public key".to_owned(),
            ));
        }
        Ok(PublicKey(key))
    }

    /// The 32 compressed-point bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// See [`KeyId`].
    pub fn key_id(&self) -> KeyId {
        key_id_of(self.0.as_bytes())
    }

    /// `tensorwasm-public-key v1 <key id>\n<64 hex digits>\n`.
    pub fn to_file_text(&self) -> String {
        format!(
            "{PUBLIC_KEY_TAG} {KEY_FILE_VERSION} {}\n{}\n",
            self.key_id(),
            hex::encode(self.0.as_bytes())
        )
    }

    /// Parses [`PublicKey::to_file_text`]; rejects weak keys and a key id that does not match.
    pub fn from_file_text(s: &str) -> Result<PublicKey> {
        let (stated, bytes) = parse_key_file(s, PUBLIC_KEY_TAG)?;
        let key = PublicKey::from_bytes(&bytes)?;
        let actual = key.key_id();
        if stated != actual {
            return Err(Error::KeyIdMismatch {
                at: "public key file".to_owned(),
                stated,
                actual,
            });
        }
        Ok(key)
    }

    /// `verify_strict` of a 64-byte signature over a digest.
    pub(crate) fn verify_digest(&self, digest: &[u8; 32], sig: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        self.0.verify_strict(digest, &sig).is_ok()
    }
}

/// The key id of 32 public key bytes, whether or not they are a valid key.
pub(crate) fn key_id_of(public: &[u8; 32]) -> KeyId {
    let [a, b, c, d, e, f, g, h, ..] = blake3::derive_key(KEY_ID_CONTEXT, public);
    KeyId([a, b, c, d, e, f, g, h])
}

/// The public keys a reader trusts. Trust is by full public key, not by key id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedKeys(Vec<PublicKey>);

impl TrustedKeys {
    /// A trust list; duplicates are dropped.
    pub fn new(keys: Vec<PublicKey>) -> TrustedKeys {
        let mut keys = keys;
        keys.sort_by_key(PublicKey::to_bytes);
        keys.dedup();
        TrustedKeys(keys)
    }

    /// True when no key is trusted (every bundle is then rejected by `open`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of distinct trusted keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether this exact public key is trusted.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.0.iter().any(|k| k == key)
    }

    /// The trusted keys, sorted by their bytes.
    pub fn iter(&self) -> impl Iterator<Item = &PublicKey> {
        self.0.iter()
    }
}

/// Splits a key file into its stated key id and its 32 key bytes.
fn parse_key_file(s: &str, tag: &str) -> Result<(KeyId, [u8; 32])> {
    if s.len() > MAX_KEY_FILE {
        return Err(Error::BadKeyFile(format!(
            "{} bytes is too long for a key file",
            s.len()
        )));
    }
    let mut lines = s.lines();
    let (Some(first), Some(second), None) = (lines.next(), lines.next(), lines.next()) else {
        return Err(Error::BadKeyFile("expected exactly two lines".to_owned()));
    };
    let words: Vec<&str> = first.split_whitespace().collect();
    let [found_tag, version, id] = words.as_slice() else {
        return Err(Error::BadKeyFile(format!(
            "line 1: expected `{tag} {KEY_FILE_VERSION} <key id>`"
        )));
    };
    if *found_tag != tag {
        return Err(Error::BadKeyFile(format!(
            "line 1: expected a {tag} file, found {found_tag:?}"
        )));
    }
    if *version != KEY_FILE_VERSION {
        return Err(Error::BadKeyFile(format!(
            "line 1: unsupported key file version {version:?}"
        )));
    }
    let stated: KeyId = id.parse()?;
    let hex_text = second.trim();
    let mut bytes = [0u8; 32];
    if hex_text.len() != 64 {
        return Err(Error::BadKeyFile(format!(
            "line 2: expected 64 hex digits, found {} characters",
            hex_text.len()
        )));
    }
    hex::decode_to_slice(hex_text, &mut bytes)
        .map_err(|e| Error::BadKeyFile(format!("line 2: {e}")))?;
    Ok((stated, bytes))
}
