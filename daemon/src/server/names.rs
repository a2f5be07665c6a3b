//! Bundle and tenant names. They become file names in the data directory, so the rule is
//! strict: 1 to [`MAX_NAME_LEN`] characters of `[a-z0-9._-]`, starting with a letter or digit
//! (so never `.`, `..`, a hidden file or something that reads as a flag).

/// Longest bundle or tenant name.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a bundle or tenant name.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "name must be 1 to {MAX_NAME_LEN} characters, got {}",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "name {:?} may contain only a-z, 0-9, '.', '_' and '-'",
            name.chars().take(80).collect::<String>()
        ));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(format!("name {name:?} must start with a letter or digit"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_strict() {
        for ok in ["a", "arith", "my-app.v2_1", "0"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "..", "../x", "a/b", "A", ".hidden", "-rf", "a b", "é", "a\0",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&"a".repeat(65)).is_err());
    }
}
