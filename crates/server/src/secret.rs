//! Bearer tokens and payment tokens. A token is shown once, at creation; the server keeps
//! only its SHA-256, so a stolen database grants nothing. `Secret` prints `[redacted]`, so a
//! stray `{:?}` cannot leak one into a log.

use std::fmt;

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value itself, for the one place that must show it (a creation response).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// Constant-time comparison, so response timing says nothing about how close a guess was.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// Makes a fresh random secret: `prefix` + 32 random bytes in URL-safe base64.
pub fn generate(prefix: &str, rng: &mut impl rand::RngCore) -> Secret {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    Secret(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("cb_live_abc".into());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert!(s.hash().matches(&TokenHash::of("cb_live_abc")));
        assert!(!s.hash().matches(&TokenHash::of("cb_live_abd")));
    }
}
