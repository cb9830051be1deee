//! Basic authentication of the standalone server: OpenWhisk API keys (`<uuid>:<secret>`) mapped to
//! namespaces, as the controller's `BasicAuthenticationDirective` checks them against its subjects.
//!
//! A key is found by its uuid (the public half, as the controller looks subjects up by it) and its
//! secret is then compared in constant time, as SHA-256 digests, so response timing tells a caller
//! nothing about how much of a secret it guessed or how long the secret is.

use std::collections::BTreeMap;

use base64::Engine as _;
use hyper::StatusCode;
use hyper::header::{self, HeaderMap, HeaderValue};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::http::{ApiError, messages};
use crate::message::{Identity, Namespace, UserLimits};

/// OpenWhisk's default guest key (`ansible/files/auth.guest`), accepted unless configured otherwise.
pub const GUEST_KEY: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
/// The namespace of [`GUEST_KEY`].
pub const GUEST_NAMESPACE: &str = "guest";
/// Longest `Authorization` header looked at; bounds the base64 decoding an anonymous caller can cause.
const MAX_AUTH_HEADER_LEN: usize = 1024;
/// The challenge sent with every 401 (`HttpChallenges.basic("OpenWhisk secure realm")`).
const CHALLENGE: &str = "Basic realm=\"OpenWhisk secure realm\"";
/// The rights of users read from the subjects database.
const RIGHTS: [&str; 4] = ["READ", "PUT", "DELETE", "ACTIVATE"];

/// The API keys the server accepts and the namespace each authenticates as.
#[derive(Debug, Clone)]
pub struct Subjects {
    /// uuid → the keys with that uuid (one, unless a configuration repeats a uuid).
    by_uuid: BTreeMap<String, Vec<Subject>>,
}

/// One accepted key.
#[derive(Debug, Clone)]
struct Subject {
    /// SHA-256 of the key's secret half.
    secret: [u8; 32],
    identity: Identity,
}

/// SHA-256 of a secret: fixed-size digests compare in constant time whatever the secrets' lengths.
fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A key that is not `<uuid>:<secret>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid API key {0:?}: expected <uuid>:<secret>")]
pub struct AuthKeyError(pub String);

impl Default for Subjects {
    fn default() -> Self {
        Self::new([(GUEST_KEY.to_string(), GUEST_NAMESPACE.to_string())])
            .expect("the guest key is well formed")
    }
}

impl Subjects {
    /// Subjects from `(key, namespace)` pairs; each key is `<uuid>:<secret>`.
    pub fn new(keys: impl IntoIterator<Item = (String, String)>) -> Result<Self, AuthKeyError> {
        let mut by_uuid: BTreeMap<String, Vec<Subject>> = BTreeMap::new();
        for (key, namespace) in keys {
            let Some((uuid, secret)) = key.split_once(':') else {
                return Err(AuthKeyError(key));
            };
            if uuid.is_empty() || secret.is_empty() {
                return Err(AuthKeyError(key));
            }
            let identity = Identity {
                subject: namespace.clone(),
                namespace: Namespace {
                    name: namespace,
                    uuid: uuid.to_string(),
                },
                authkey: BTreeMap::from([("api_key".to_string(), key.clone())]),
                rights: RIGHTS.iter().map(|r| r.to_string()).collect(),
                limits: UserLimits::default(),
            };
            let subject = Subject {
                secret: digest(secret.as_bytes()),
                identity,
            };
            let same_uuid = by_uuid.entry(uuid.to_string()).or_default();
            // A repeated key replaces the earlier one, as the map keyed by whole keys did.
            same_uuid.retain(|known| known.secret != subject.secret);
            same_uuid.push(subject);
        }
        Ok(Self { by_uuid })
    }

    /// The identity whose key the request's basic credentials carry; 401 otherwise, with OpenWhisk's
    /// texts for missing and rejected credentials.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<&Identity, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(messages::AUTH_MISSING));
        };
        let key = basic_credentials(value).ok_or_else(|| unauthorized(messages::AUTH_INVALID))?;
        let (uuid, secret) = key
            .split_once(':')
            .ok_or_else(|| unauthorized(messages::AUTH_INVALID))?;
        let secret = digest(secret.as_bytes());
        let mut found = None;
        // Every key of the uuid is compared, so the time taken does not say which one matched.
        for subject in self.by_uuid.get(uuid).into_iter().flatten() {
            if bool::from(subject.secret.ct_eq(&secret)) {
                found = Some(&subject.identity);
            }
        }
        found.ok_or_else(|| unauthorized(messages::AUTH_INVALID))
    }

    /// The identity owning a namespace (web actions run as the action's owner).
    pub fn by_namespace(&self, namespace: &str) -> Option<&Identity> {
        self.by_uuid
            .values()
            .flatten()
            .map(|subject| &subject.identity)
            .find(|identity| identity.namespace.name == namespace)
    }
}

/// `user:password` of a `Basic` authorization header.
fn basic_credentials(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    if text.len() > MAX_AUTH_HEADER_LEN {
        return None;
    }
    let (scheme, encoded) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    String::from_utf8(decoded).ok()
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        headers
    }

    #[test]
    fn test_guest_key_authenticates_as_guest() {
        let subjects = Subjects::default();
        let identity = subjects.authenticate(&basic(GUEST_KEY)).unwrap();
        assert_eq!(identity.namespace.name, "guest");
        assert_eq!(
            identity.namespace.uuid,
            "23bc46b1-71f6-4ed5-8c54-816aa4f8c502"
        );
        assert_eq!(identity.api_key(), Some(GUEST_KEY));
    }

    #[test]
    fn test_missing_and_wrong_credentials_are_401() {
        let subjects = Subjects::default();
        let missing = subjects.authenticate(&HeaderMap::new()).unwrap_err();
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
        assert_eq!(missing.message, messages::AUTH_MISSING);
        let wrong = subjects
            .authenticate(&basic("23bc46b1-71f6-4ed5-8c54-816aa4f8c502:nope"))
            .unwrap_err();
        assert_eq!(wrong.message, messages::AUTH_INVALID);
        assert!(Subjects::new([("nocolon".to_string(), "x".to_string())]).is_err());
    }

    #[test]
    fn test_secret_prefix_extension_other_uuid_and_malformed_are_401() {
        let subjects = Subjects::default();
        let (uuid, secret) = GUEST_KEY
            .split_once(':')
            .expect("the guest key has a colon");
        let mut cases = vec![
            ("secret prefix", basic(&format!("{uuid}:{}", &secret[..10]))),
            ("secret extended", basic(&format!("{GUEST_KEY}x"))),
            ("empty secret", basic(&format!("{uuid}:"))),
            (
                "other uuid",
                basic(&format!("00000000-0000-0000-0000-000000000000:{secret}")),
            ),
            ("no colon", basic(uuid)),
        ];
        let mut malformed = HeaderMap::new();
        malformed.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic %%%not-base64%%%"),
        );
        cases.push(("malformed base64", malformed));
        for (what, headers) in cases {
            let error = subjects.authenticate(&headers).expect_err(what);
            assert_eq!(error.status, StatusCode::UNAUTHORIZED, "{what}");
            assert_eq!(error.message, messages::AUTH_INVALID, "{what}");
        }
    }

    #[test]
    fn test_two_keys_of_one_uuid_each_authenticate_as_their_namespace() {
        let subjects = Subjects::new([
            ("u1:first".to_string(), "one".to_string()),
            ("u1:second".to_string(), "two".to_string()),
        ])
        .expect("well-formed keys");
        let one = subjects
            .authenticate(&basic("u1:first"))
            .expect("first key");
        assert_eq!(one.namespace.name, "one");
        let two = subjects
            .authenticate(&basic("u1:second"))
            .expect("second key");
        assert_eq!(two.namespace.name, "two");
        assert_eq!(
            subjects.by_namespace("two").map(|i| i.api_key()),
            Some(Some("u1:second"))
        );
    }
}
