use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm as Argon2Algorithm, Argon2, Params, Version};
use serde::Serialize;

use crate::error::{ConfigError, ConfigErrorKind};

/// A boxed error, as tower uses.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Checks a username and password: Flask-JWT's `authenticate(username, password)`.
///
/// Return `Ok(Some(claims))` for valid credentials (the claims go into the token, and should
/// include `sub`), `Ok(None)` for invalid ones, and `Err` when the check could not be made (a
/// database outage, say), which the login service answers with 503.
///
/// Password hashing belongs here: compare hashes with a constant-time verifier (as
/// [`InMemoryUsers`] does with argon2id), never plain text with `==`, and do the same amount of
/// work for unknown users as for known ones.
///
/// ```
/// use tower_jwt_auth::login::{Authenticate, BoxError};
///
/// struct Ldap;
///
/// impl Authenticate for Ldap {
///     type Claims = serde_json::Value;
///
///     async fn authenticate(&self, username: &str, _password: &str) -> Result<Option<Self::Claims>, BoxError> {
///         // ... ask the directory ...
///         Ok(Some(serde_json::json!({ "sub": username })))
///     }
/// }
/// ```
pub trait Authenticate: Send + Sync + 'static {
    /// The claims of an authenticated user.
    type Claims: Serialize + Send + 'static;

    /// Check the credentials.
    fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> impl Future<Output = Result<Option<Self::Claims>, BoxError>> + Send;
}

impl<A: Authenticate> Authenticate for Arc<A> {
    type Claims = A::Claims;

    fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> impl Future<Output = Result<Option<Self::Claims>, BoxError>> + Send {
        (**self).authenticate(username, password)
    }
}

/// An in-memory user table with argon2id password hashes (PHC strings).
///
/// For an unknown username it verifies the password against a dummy hash made with the same
/// parameters, so the response time does not reveal which usernames exist. Hash comparison is
/// constant-time (argon2's verifier). The default parameters are argon2's (m = 19 MiB, t = 2,
/// p = 1, the OWASP recommendation).
///
/// Verification is CPU-bound (tens of milliseconds by design) and runs inline in the login
/// future; put the login route behind a concurrency limit, or wrap the table in an
/// [`Authenticate`] that uses `spawn_blocking`, if logins are frequent.
///
/// See the [module docs](crate::login) for an example.
pub struct InMemoryUsers<C> {
    users: HashMap<String, (String, C)>,
    dummy_hash: String,
    argon2: Argon2<'static>,
}

impl<C> InMemoryUsers<C> {
    /// An empty table with argon2's default parameters.
    ///
    /// # Errors
    ///
    /// When the dummy hash cannot be computed (no system randomness).
    pub fn new() -> Result<Self, ConfigError> {
        Self::with_params(Params::default())
    }

    /// An empty table hashing with these argon2id parameters.
    ///
    /// # Errors
    ///
    /// When the dummy hash cannot be computed (no system randomness).
    pub fn with_params(params: Params) -> Result<Self, ConfigError> {
        let argon2 = Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = hash(&argon2, "dummy password for unknown users")?;
        Ok(Self {
            users: HashMap::new(),
            dummy_hash,
            argon2,
        })
    }

    /// Add a user, hashing `password` with argon2id.
    ///
    /// # Errors
    ///
    /// When hashing fails.
    pub fn with_user(
        mut self,
        username: impl Into<String>,
        password: impl AsRef<[u8]>,
        claims: C,
    ) -> Result<Self, ConfigError> {
        let hash = hash_bytes(&self.argon2, password.as_ref())?;
        self.users.insert(username.into(), (hash, claims));
        Ok(self)
    }

    /// Add a user whose argon2 hash (PHC string, `$argon2id$v=19$…`) is already known.
    ///
    /// Use the same parameters as the table's for every user, or timing can tell users apart.
    ///
    /// # Errors
    ///
    /// When `phc` is not a valid argon2 PHC string.
    pub fn with_password_hash(
        mut self,
        username: impl Into<String>,
        phc: impl Into<String>,
        claims: C,
    ) -> Result<Self, ConfigError> {
        let phc = phc.into();
        let parsed = PasswordHash::new(&phc).map_err(|e| {
            ConfigError::with_source(
                ConfigErrorKind::InvalidKey,
                "not a valid PHC password hash",
                PhcError(e),
            )
        })?;
        if !parsed.algorithm.as_str().starts_with("argon2") {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidKey,
                "the password hash is not an argon2 hash",
            ));
        }
        self.users.insert(username.into(), (phc, claims));
        Ok(self)
    }

    fn check(&self, username: &str, password: &str) -> Option<&C> {
        let (phc, claims) = match self.users.get(username) {
            Some((phc, claims)) => (phc.as_str(), Some(claims)),
            None => (self.dummy_hash.as_str(), None),
        };
        let ok = PasswordHash::new(phc)
            .is_ok_and(|h| self.argon2.verify_password(password.as_bytes(), &h).is_ok());
        // The dummy hash never matches a real user: `claims` is `None` for unknown users.
        if ok { claims } else { None }
    }
}

impl<C> Authenticate for InMemoryUsers<C>
where
    C: Clone + Serialize + Send + Sync + 'static,
{
    type Claims = C;

    async fn authenticate(&self, username: &str, password: &str) -> Result<Option<C>, BoxError> {
        Ok(self.check(username, password).cloned())
    }
}

fn hash(argon2: &Argon2<'_>, password: &str) -> Result<String, ConfigError> {
    hash_bytes(argon2, password.as_bytes())
}

fn hash_bytes(argon2: &Argon2<'_>, password: &[u8]) -> Result<String, ConfigError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| {
            ConfigError::with_source(
                ConfigErrorKind::InvalidKey,
                "argon2 could not hash the password",
                PhcError(e),
            )
        })
}

/// `password_hash::Error` does not implement `std::error::Error` without its `std` feature in
/// every version, so it is wrapped.
#[derive(Debug)]
struct PhcError(argon2::password_hash::Error);

impl fmt::Display for PhcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for PhcError {}

impl<C> fmt::Debug for InMemoryUsers<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.users.keys().collect();
        names.sort();
        f.debug_struct("InMemoryUsers")
            .field("users", &names)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> InMemoryUsers<u32> {
        // Small parameters keep the unit tests fast; the timing property does not depend on them.
        let params = Params::new(1024, 1, 1, None).unwrap();
        InMemoryUsers::with_params(params)
            .unwrap()
            .with_user("ada", "correct horse", 1)
            .unwrap()
    }

    #[tokio::test]
    async fn right_password_returns_claims() {
        assert_eq!(
            table().authenticate("ada", "correct horse").await.unwrap(),
            Some(1)
        );
    }

    #[tokio::test]
    async fn wrong_password_returns_none() {
        assert_eq!(table().authenticate("ada", "wrong").await.unwrap(), None);
    }

    #[tokio::test]
    async fn unknown_user_returns_none() {
        let t = table();
        assert_eq!(t.authenticate("bob", "correct horse").await.unwrap(), None);
        assert_eq!(
            t.authenticate("bob", "dummy password for unknown users")
                .await
                .unwrap(),
            None
        );
    }

    #[test]
    fn stored_hash_is_argon2id() {
        let t = table();
        assert!(t.users["ada"].0.starts_with("$argon2id$v=19$"));
        assert!(t.dummy_hash.starts_with("$argon2id$v=19$"));
    }

    #[test]
    fn debug_does_not_show_hashes() {
        let text = format!("{:?}", table());
        assert!(text.contains("ada"));
        assert!(!text.contains("argon2"));
    }
}
