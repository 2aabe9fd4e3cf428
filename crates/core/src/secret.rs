//! Secret values: refresh and access tokens, client secrets, API tokens, local keys.
//!
//! [`Secret`] cannot be printed (`Debug` redacts, there is no `Display`), cannot be serialized
//! (no `Serialize`, so it cannot end up in an IPC DTO, a JSON report or the database), and its
//! memory is zeroed on drop. Reading it is explicit: [`Secret::expose`].

use std::fmt;

use zeroize::Zeroizing;

/// A secret string. See the module docs for what it refuses to do.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value. Surrounding whitespace is kept: callers that read from stdin trim first.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret's text.
    ///
    /// Security warning: whatever you do with the result must not print, log or persist it
    /// outside the keychain.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret holds no characters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A short, stable, non-reversible fingerprint for logs ("which token was that?").
    pub fn fingerprint(&self) -> String {
        // FNV-1a is enough here: the fingerprint only tells two tokens apart in a log; it is
        // truncated so it cannot be used to brute-force anything.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.0.as_bytes() {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{:06x}", hash >> 40)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl PartialEq for Secret {
    /// Constant-time in the length of the shorter value: no early exit on the first difference.
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for Secret {}

/// Compares two byte strings without an early exit on the first differing byte, so the time
/// taken does not reveal how much of a guess (an OAuth `state`, a local key) was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secret() {
        let secret = Secret::new("hunter2-very-secret".to_owned());
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{secret:#?}"), "Secret(<redacted>)");
        assert!(!format!("{:?}", Some(&secret)).contains("hunter2"));
    }

    #[test]
    fn fingerprint_is_short_and_distinguishes() {
        let a = Secret::new("token-a".to_owned());
        let b = Secret::new("token-b".to_owned());
        assert_eq!(a.fingerprint().len(), 6);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(!a.fingerprint().contains("token"));
    }

    #[test]
    fn equality_is_by_value() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert_eq!(Secret::new("x".into()), Secret::new("x".into()));
    }
}
