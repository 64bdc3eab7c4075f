//! A test kit for your own tests (feature `test-util`): [`TokenMinter`] makes the tokens a
//! test needs (valid, expired, not yet valid, for another audience or issuer, signed with a
//! foreign key) for the verifier your application configures; [`FakeProvider`] is an OpenID
//! provider in the test process (discovery and JWKS, with rotation and fault injection);
//! [`ManualClock`] is a clock a test moves by hand
//! ([`Validation::clock`](crate::Validation::clock)), for expiry without sleeping;
//! [`store_contract`] (with feature `sessions`) checks a session store of your own.
//!
//! ```
//! use tower_jwt_auth::testkit::TokenMinter;
//! use tower_jwt_auth::{Algorithm, AuthErrorKind, KeySet, SigningKey, Validation, Verifier};
//!
//! let key = SigningKey::from_secret(Algorithm::HS256, [7u8; 32]).unwrap();
//! let verifier = Verifier::new(
//!     KeySet::from(key.verifying_key().unwrap()),
//!     Validation::new().issuer("https://auth.test").audience("orders"),
//! )
//! .unwrap();
//! let mint = TokenMinter::new(key).issuer("https://auth.test").audience("orders");
//! let claims = serde_json::json!({"sub": "42", "scope": "orders:read"});
//!
//! assert!(verifier.verify::<serde_json::Value>(&mint.valid(&claims)).is_ok());
//! let kind = |token: String| verifier.verify::<serde_json::Value>(&token).unwrap_err().kind();
//! assert_eq!(kind(mint.expired(&claims)), AuthErrorKind::Expired);
//! assert_eq!(kind(mint.not_yet_valid(&claims)), AuthErrorKind::NotYetValid);
//! assert_eq!(kind(mint.wrong_audience(&claims)), AuthErrorKind::InvalidAudience);
//! assert_eq!(kind(mint.wrong_issuer(&claims)), AuthErrorKind::InvalidIssuer);
//! assert_eq!(kind(mint.foreign_key(&claims)), AuthErrorKind::InvalidSignature);
//! ```

mod provider;
#[cfg(feature = "sessions")]
pub mod store_contract;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Map, Value};

use crate::keys::SigningKey;
use crate::time::unix_now;

pub use provider::{FakeProvider, Fault};

/// How far outside its validity an expired or not-yet-valid token is: beyond any reasonable
/// leeway.
const OUTSIDE: u64 = 3600;

/// Mints tokens for tests, signed with a [`SigningKey`] (the key's `kid` goes into the header).
///
/// Every method takes the claims your application expects (a JSON object; anything else is
/// treated as `{}`) and adds `iat`, `nbf`, `exp`, `jti` and the configured `iss`/`aud` unless
/// the claims set them. Minting panics only on a key that cannot sign, which is a bug in the
/// test.
#[derive(Clone, Debug)]
pub struct TokenMinter {
    key: SigningKey,
    issuer: Option<String>,
    audience: Option<String>,
    ttl: Duration,
    typ: Option<String>,
}

impl TokenMinter {
    /// A minter signing with `key`, tokens valid for 15 minutes.
    #[must_use]
    pub fn new(key: SigningKey) -> Self {
        Self {
            key,
            issuer: None,
            audience: None,
            ttl: Duration::from_secs(900),
            typ: None,
        }
    }

    /// Put this `iss` into every token.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Put this `aud` into every token.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// How long valid tokens live (default 15 minutes).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Put this `typ` into every header (`at+jwt` for RFC 9068 access tokens).
    #[must_use]
    pub fn typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// A token the configured verifier accepts.
    #[must_use]
    pub fn valid(&self, claims: &Value) -> String {
        self.mint(claims, |_| {}, &self.key)
    }

    /// A token whose `exp` passed an hour ago.
    #[must_use]
    pub fn expired(&self, claims: &Value) -> String {
        self.mint(
            claims,
            |c| {
                let now = unix_now();
                c.insert("iat".into(), (now - 2 * OUTSIDE).into());
                c.insert("nbf".into(), (now - 2 * OUTSIDE).into());
                c.insert("exp".into(), (now - OUTSIDE).into());
            },
            &self.key,
        )
    }

    /// A token whose `nbf` is an hour away.
    #[must_use]
    pub fn not_yet_valid(&self, claims: &Value) -> String {
        self.mint(
            claims,
            |c| {
                c.insert("nbf".into(), (unix_now() + OUTSIDE).into());
            },
            &self.key,
        )
    }

    /// A token for another audience.
    #[must_use]
    pub fn wrong_audience(&self, claims: &Value) -> String {
        self.mint(
            claims,
            |c| {
                c.insert("aud".into(), "https://another-audience.invalid".into());
            },
            &self.key,
        )
    }

    /// A token from another issuer.
    #[must_use]
    pub fn wrong_issuer(&self, claims: &Value) -> String {
        self.mint(
            claims,
            |c| {
                c.insert("iss".into(), "https://another-issuer.invalid".into());
            },
            &self.key,
        )
    }

    /// A token like [`valid`](Self::valid), with the same `kid` and algorithm, signed with
    /// another key: `other` (for asymmetric algorithms, a second key of the same type), or for
    /// HMAC keys, with `None`, a fresh random secret.
    ///
    /// # Panics
    ///
    /// With `None` for an asymmetric key (there is no key to generate it from here).
    #[must_use]
    pub fn foreign_key_with(&self, claims: &Value, other: Option<SigningKey>) -> String {
        let other = other.unwrap_or_else(|| {
            SigningKey::generate_secret(self.key.algorithm())
                .expect("foreign_key needs an HMAC key, or foreign_key_with a second key")
        });
        let other = match self.key.kid() {
            Some(kid) => other.with_kid(kid),
            None => other,
        };
        self.mint(claims, |_| {}, &other)
    }

    /// As [`foreign_key_with`](Self::foreign_key_with) with a random secret (HMAC keys).
    ///
    /// # Panics
    ///
    /// For an asymmetric key: use `foreign_key_with`.
    #[must_use]
    pub fn foreign_key(&self, claims: &Value) -> String {
        self.foreign_key_with(claims, None)
    }

    fn mint(
        &self,
        claims: &Value,
        adjust: impl FnOnce(&mut Map<String, Value>),
        key: &SigningKey,
    ) -> String {
        let mut map = match claims {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        let now = unix_now();
        map.entry("iat").or_insert_with(|| now.into());
        map.entry("nbf").or_insert_with(|| now.into());
        map.entry("exp")
            .or_insert_with(|| now.saturating_add(self.ttl.as_secs()).into());
        map.entry("jti").or_insert_with(|| {
            crate::text::random_hex::<16>()
                .unwrap_or_else(|| format!("test-{now}"))
                .into()
        });
        if let Some(iss) = &self.issuer {
            map.entry("iss").or_insert_with(|| iss.clone().into());
        }
        if let Some(aud) = &self.audience {
            map.entry("aud").or_insert_with(|| aud.clone().into());
        }
        adjust(&mut map);
        let mut header = Header::new(key.algorithm());
        header.kid = key.kid().map(ToOwned::to_owned);
        if let Some(typ) = &self.typ {
            header.typ = Some(typ.clone());
        }
        jsonwebtoken::encode(&header, &map, key.encoding_key())
            .expect("the test key signs (a key that cannot is a bug in the test)")
    }

    /// The algorithm tokens are signed with.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }
}

/// A clock that only moves when the test says so. Give it to
/// [`Validation::clock`](crate::Validation::clock): expiry, not-before, the verified-token
/// cache and the revocation list of the layer then follow it. Clones share the time.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::testkit::{ManualClock, TokenMinter};
/// use tower_jwt_auth::{Algorithm, AuthErrorKind, KeySet, SigningKey, Validation, Verifier};
///
/// let key = SigningKey::from_secret(Algorithm::HS256, [7u8; 32]).unwrap();
/// let clock = ManualClock::new();
/// let verifier = Verifier::new(
///     KeySet::from(key.verifying_key().unwrap()),
///     Validation::new().leeway(Duration::ZERO).clock(clock.clone()),
/// )
/// .unwrap();
/// let token = TokenMinter::new(key).ttl(Duration::from_secs(60)).valid(&serde_json::json!({}));
/// assert!(verifier.verify::<serde_json::Value>(&token).is_ok());
/// clock.advance(Duration::from_secs(61));
/// let err = verifier.verify::<serde_json::Value>(&token).unwrap_err();
/// assert_eq!(err.kind(), AuthErrorKind::Expired);
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    /// Unix milliseconds.
    ms: Arc<AtomicU64>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ManualClock {
    /// A clock showing the system time now (and staying there).
    #[must_use]
    pub fn new() -> Self {
        Self::at(SystemTime::now())
    }

    /// A clock showing `time`.
    #[must_use]
    pub fn at(time: SystemTime) -> Self {
        Self {
            ms: Arc::new(AtomicU64::new(unix_ms(time))),
        }
    }

    /// Move forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.ms.fetch_add(by, Ordering::SeqCst);
    }

    /// Show `time` from now on.
    pub fn set(&self, time: SystemTime) {
        self.ms.store(unix_ms(time), Ordering::SeqCst);
    }
}

impl crate::validation::Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.ms.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use tower::{ServiceBuilder, ServiceExt};

    use super::*;
    use crate::auth::JwtAuthLayer;
    use crate::keys::KeySet;
    use crate::validation::Validation;
    use crate::verifier::Verifier;

    /// A cached token expires by the injected clock too, and the clock is the only thing that
    /// moved.
    #[tokio::test]
    async fn the_cache_follows_the_injected_clock() {
        let key = SigningKey::from_secret(Algorithm::HS256, [9u8; 32]).unwrap();
        let clock = ManualClock::new();
        let verifier = Verifier::new(
            KeySet::from(key.verifying_key().unwrap()),
            Validation::new()
                .leeway(Duration::from_secs(5))
                .clock(clock.clone()),
        )
        .unwrap();
        let svc = ServiceBuilder::new()
            .layer(JwtAuthLayer::<Value>::new(verifier))
            .service_fn(|_req: http::Request<()>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(()))
            });
        let token = TokenMinter::new(key)
            .ttl(Duration::from_secs(60))
            .valid(&serde_json::json!({"sub": "1"}));
        let status = |token: &str| {
            let svc = svc.clone();
            let req = http::Request::builder()
                .header("authorization", format!("Bearer {token}"))
                .body(())
                .unwrap();
            async move { svc.oneshot(req).await.unwrap().status() }
        };
        assert_eq!(status(&token).await, 200);
        assert_eq!(status(&token).await, 200, "from the cache");
        clock.advance(Duration::from_secs(66));
        assert_eq!(
            status(&token).await,
            401,
            "expired by the clock, cache or not"
        );
        clock.set(SystemTime::now());
        assert_eq!(status(&token).await, 200);
    }
}
