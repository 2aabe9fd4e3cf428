//! The local key a tool presents, and the one way to get a [`VerifiedKey`]: verification.

use base64::Engine as _;
use http::{header, HeaderMap};
use latch_core::local_key::{KeyCheck, KeyPolicy, KeyRefusal, KeyVerifier, LocalKey};
use latch_core::secret::Secret;

use crate::refusal::Refusal;

/// A key that is known, live and not revoked, with its policy. Only [`verify`] makes one, so
/// every later step can take it as proof.
pub(crate) struct VerifiedKey(std::sync::Arc<LocalKey>);

impl VerifiedKey {
    pub(crate) fn policy(&self) -> &KeyPolicy {
        &self.0.policy
    }

    pub(crate) fn name(&self) -> &str {
        &self.0.name
    }

    pub(crate) fn id(&self) -> i64 {
        self.0.id
    }

    /// `latch exec --intercept`'s key: the child never presents one (its requests carry their
    /// own dummy tokens), so the exec's policy is the connection's.
    pub(crate) fn implicit(key: LocalKey) -> Self {
        Self(std::sync::Arc::new(key))
    }
}

/// The local key: `Authorization: Bearer`, Basic with the key as password, or `X-Latch-Key`.
pub(crate) fn presented(headers: &HeaderMap) -> Option<Secret> {
    if let Some(key) = headers.get("x-latch-key").and_then(|v| v.to_str().ok()) {
        return Some(Secret::new(key.trim().to_owned()));
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, value) = auth.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Secret::new(value.trim().to_owned()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()?;
        let text = Secret::new(String::from_utf8(decoded).ok()?);
        let (_, password) = text.expose().split_once(':')?;
        return Some(Secret::new(password.to_owned()));
    }
    None
}

/// Finds and verifies the presented key.
pub(crate) fn verify(keys: &KeyVerifier, headers: &HeaderMap) -> Result<VerifiedKey, Refusal> {
    let key = presented(headers).ok_or(Refusal::MissingKey)?;
    match keys.verify(key.expose()) {
        Ok(policy) => Ok(VerifiedKey(policy)),
        Err(KeyCheck::Unknown) => Err(Refusal::BadKey),
        Err(KeyCheck::Refused(KeyRefusal::Expired)) => Err(Refusal::KeyExpired),
        Err(KeyCheck::Refused(KeyRefusal::Revoked)) => Err(Refusal::KeyRevoked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn keys_are_read_from_all_three_places() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer lk_abc"),
        );
        assert_eq!(presented(&h).unwrap().expose(), "lk_abc");
        // Basic with any user name: "anything:lk_abc".
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YW55dGhpbmc6bGtfYWJj"),
        );
        assert_eq!(presented(&h).unwrap().expose(), "lk_abc");
        h.remove(header::AUTHORIZATION);
        h.insert("x-latch-key", HeaderValue::from_static("lk_abc"));
        assert_eq!(presented(&h).unwrap().expose(), "lk_abc");
        assert!(presented(&HeaderMap::new()).is_none());
    }
}
