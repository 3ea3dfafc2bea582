//! `Secret`: a string that never shows itself in logs, errors or debug output.
//!
//! Vendor secrets, bot tokens and SMTP passwords travel through the config as `Secret`; the only
//! way to read one is [`Secret::expose`], which is easy to grep for.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A configured secret value. `Debug` and `Display` print `**REDACTED**`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from the configuration.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it (an API call, a login).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares a presented value with this secret in constant time.
    ///
    /// Both sides are hashed first so that neither the content nor the length of the secret can
    /// be learned from how long the comparison takes.
    pub fn matches(&self, presented: &str) -> bool {
        let expected = Sha256::digest(self.0.as_bytes());
        let presented = Sha256::digest(presented.as_bytes());
        expected.as_slice().ct_eq(presented.as_slice()).into()
    }
}

/// Read from configuration as a plain string, so an output's settings can hold a `Secret`
/// from the moment they are parsed.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_exact_value() {
        let secret = Secret::new("s3cret");
        assert!(secret.matches("s3cret"));
        assert!(!secret.matches("s3cre"));
        assert!(!secret.matches("s3cret "));
        assert!(!secret.matches(""));
    }

    #[test]
    fn never_prints_itself() {
        let secret = Secret::new("s3cret");
        assert_eq!(format!("{secret:?} {secret}"), "**REDACTED** **REDACTED**");
    }
}
