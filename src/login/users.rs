use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm as Argon2Algorithm, Argon2, Params, Version};
use serde::Serialize;
use tokio::sync::Semaphore;

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

/// Users whose tokens can be issued again on a refresh: what sessions need.
///
/// [`RefreshService`](super::RefreshService), [`LoginService::sessions`](super::LoginService::sessions)
/// and the [`AuthServer`](super::AuthServer) ask for it, so a login cannot hand out refresh
/// tokens that no refresh would honour: without it, that is a compile error.
pub trait Reissue: Authenticate {
    /// The claims for a new access token of user `sub`, issued on a refresh: the user as they
    /// are now (`Ok(None)`: the user is gone or disabled, and the refresh is refused and the
    /// session ended).
    fn claims_for(
        &self,
        sub: &str,
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

impl<A: Reissue> Reissue for Arc<A> {
    fn claims_for(
        &self,
        sub: &str,
    ) -> impl Future<Output = Result<Option<Self::Claims>, BoxError>> + Send {
        (**self).claims_for(sub)
    }
}

/// The in-memory table could not check the password in time: every hashing slot stayed busy
/// for the whole wait (a flood of logins). The login service answers 503 with `Retry-After`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Overloaded {
    /// When to try again.
    pub retry_after: Duration,
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("too many password checks at once; try again shortly")
    }
}

impl std::error::Error for Overloaded {}

/// Called with a username and its new PHC hash after a login re-hashed an outdated one.
type OnRehash = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// An in-memory user table with argon2id password hashes (PHC strings).
///
/// For an unknown username it verifies the password against a dummy hash made with the same
/// parameters, so the response time does not reveal which usernames exist. Hash comparison is
/// constant-time (argon2's verifier). The default parameters are argon2's (m = 19 MiB, t = 2,
/// p = 1, the OWASP recommendation).
///
/// **Hashing never runs on the async executor.** Each check runs on tokio's blocking pool, at
/// most [`max_concurrent_hashes`](Self::max_concurrent_hashes) at once (default: the number of
/// CPUs less one, at least one, so a core stays free to serve), and a flood of bad logins
/// cannot stall the other routes; a login that waits longer than
/// [`max_hash_wait`](Self::max_hash_wait) (default 10 s) for a slot gets [`Overloaded`], which
/// the login service answers with 503 and `Retry-After`. Outside a tokio runtime the check runs
/// inline.
///
/// A user whose stored hash has older parameters than the table's (or another argon2 variant)
/// is re-hashed with the current ones at their next successful login;
/// [`on_rehash`](Self::on_rehash) lets you persist the new hash.
///
/// See the [module docs](crate::login) for an example.
pub struct InMemoryUsers<C> {
    table: Arc<Table<C>>,
    slots: Arc<Semaphore>,
    max_wait: Duration,
    on_rehash: Option<OnRehash>,
}

impl<C> Clone for InMemoryUsers<C> {
    /// Clones share the table (a user added through one is seen by all).
    fn clone(&self) -> Self {
        Self {
            table: Arc::clone(&self.table),
            slots: Arc::clone(&self.slots),
            max_wait: self.max_wait,
            on_rehash: self.on_rehash.clone(),
        }
    }
}

struct Table<C> {
    users: RwLock<HashMap<String, (String, C)>>,
    /// `sub` claim to username, for refreshes.
    subjects: RwLock<HashMap<String, String>>,
    dummy_hash: String,
    argon2: Argon2<'static>,
}

/// Default bound on the wait for a hashing slot.
const DEFAULT_MAX_HASH_WAIT: Duration = Duration::from_secs(10);

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
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Ok(Self {
            table: Arc::new(Table {
                users: RwLock::new(HashMap::new()),
                subjects: RwLock::new(HashMap::new()),
                dummy_hash,
                argon2,
            }),
            slots: Arc::new(Semaphore::new(cpus.saturating_sub(1).max(1))),
            max_wait: DEFAULT_MAX_HASH_WAIT,
            on_rehash: None,
        })
    }

    /// Hash `password` with this table's argon2id parameters: the PHC string
    /// (`$argon2id$v=19$…`) to store and give to
    /// [`with_password_hash`](Self::with_password_hash) at the next start, so no plaintext
    /// password needs to live in configuration. [`hash_password`](super::hash_password) does the
    /// same with the default parameters, without a table.
    ///
    /// # Errors
    ///
    /// When argon2 cannot hash (no system randomness for the salt).
    pub fn hash_password(&self, password: impl AsRef<[u8]>) -> Result<String, ConfigError> {
        hash_bytes(&self.table.argon2, password.as_ref())
    }

    /// At most this many password checks at once (default: the number of CPUs less one; at
    /// least 1).
    /// Each holds about `m` KiB of memory (19 MiB by default) while it runs.
    #[must_use]
    pub fn max_concurrent_hashes(mut self, n: usize) -> Self {
        self.slots = Arc::new(Semaphore::new(n.max(1)));
        self
    }

    /// How long a login may wait for a hashing slot before it gets [`Overloaded`] (503 with
    /// `Retry-After`); default 10 s: a burst of logins queues, a flood is refused.
    #[must_use]
    pub fn max_hash_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Call `f(username, new_phc)` after a login re-hashed a user whose stored hash had outdated
    /// parameters, so the application can store the new hash.
    #[must_use]
    pub fn on_rehash(mut self, f: impl Fn(&str, &str) + Send + Sync + 'static) -> Self {
        self.on_rehash = Some(Arc::new(f));
        self
    }

    fn users_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, (String, C)>> {
        // Every update is a single insert: a poisoned lock still holds a consistent map.
        self.table
            .users
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Record a user, and its `sub` claim (if the claims have one) for refreshes.
    fn insert(&self, username: String, phc: String, claims: C)
    where
        C: Serialize,
    {
        let sub = serde_json::to_value(&claims)
            .ok()
            .and_then(|v| v.get("sub")?.as_str().map(ToOwned::to_owned));
        if let Some(sub) = sub {
            self.table
                .subjects
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(sub, username.clone());
        }
        self.users_mut().insert(username, (phc, claims));
    }

    /// Add a user, hashing `password` with argon2id. The user's `sub` claim (a string) is
    /// what refreshes look the user up by.
    ///
    /// # Errors
    ///
    /// When hashing fails.
    pub fn with_user(
        self,
        username: impl Into<String>,
        password: impl AsRef<[u8]>,
        claims: C,
    ) -> Result<Self, ConfigError>
    where
        C: Serialize,
    {
        let hash = hash_bytes(&self.table.argon2, password.as_ref())?;
        self.insert(username.into(), hash, claims);
        Ok(self)
    }

    /// Add a user whose argon2 hash (PHC string, `$argon2id$v=19$…`) is already known.
    ///
    /// A hash with other parameters than the table's is accepted, and replaced with one made
    /// with the table's parameters at the user's next successful login.
    ///
    /// # Errors
    ///
    /// When `phc` is not a valid argon2 PHC string.
    pub fn with_password_hash(
        self,
        username: impl Into<String>,
        phc: impl Into<String>,
        claims: C,
    ) -> Result<Self, ConfigError>
    where
        C: Serialize,
    {
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
        self.insert(username.into(), phc, claims);
        Ok(self)
    }
}

impl<C: Clone> Table<C> {
    /// Verify, and re-hash an outdated hash of a user whose password matched. Blocking.
    fn check(&self, username: &str, password: &str) -> (Option<C>, Option<String>) {
        let entry = self
            .users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(username)
            .map(|(phc, claims)| (phc.clone(), claims.clone()));
        let (phc, claims) = match entry {
            Some((phc, claims)) => (phc, Some(claims)),
            None => (self.dummy_hash.clone(), None),
        };
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return (None, None);
        };
        if self
            .argon2
            .verify_password(password.as_bytes(), &parsed)
            .is_err()
        {
            return (None, None);
        }
        // The dummy hash never matches a real user: `claims` is `None` for unknown users.
        let Some(claims) = claims else {
            return (None, None);
        };
        let rehashed = self
            .outdated(&parsed)
            .then(|| hash(&self.argon2, password).ok())
            .flatten();
        if let Some(new) = &rehashed {
            let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = users.get_mut(username)
                && entry.0 == phc
            {
                entry.0.clone_from(new);
            }
        }
        (Some(claims), rehashed)
    }

    /// Whether a stored hash was made with another variant, version or parameters.
    fn outdated(&self, stored: &PasswordHash<'_>) -> bool {
        let current = self.argon2.params();
        stored.algorithm.as_str() != "argon2id"
            || stored.version != Some(0x13)
            || Params::try_from(stored).map_or(true, |p| {
                (p.m_cost(), p.t_cost(), p.p_cost())
                    != (current.m_cost(), current.t_cost(), current.p_cost())
            })
    }
}

impl<C> Authenticate for InMemoryUsers<C>
where
    C: Clone + Serialize + Send + Sync + 'static,
{
    type Claims = C;

    async fn authenticate(&self, username: &str, password: &str) -> Result<Option<C>, BoxError> {
        let (claims, rehashed) = if tokio::runtime::Handle::try_current().is_ok() {
            let Ok(Ok(slot)) =
                tokio::time::timeout(self.max_wait, Arc::clone(&self.slots).acquire_owned()).await
            else {
                return Err(Box::new(Overloaded {
                    retry_after: Duration::from_secs(1),
                }));
            };
            let table = Arc::clone(&self.table);
            let (username, password) = (username.to_owned(), password.to_owned());
            tokio::task::spawn_blocking(move || {
                let _slot = slot;
                table.check(&username, &password)
            })
            .await?
        } else {
            self.table.check(username, password)
        };
        if let (Some(new), Some(f)) = (&rehashed, &self.on_rehash) {
            f(username, new);
        }
        Ok(claims)
    }
}

impl<C> Reissue for InMemoryUsers<C>
where
    C: Clone + Serialize + Send + Sync + 'static,
{
    async fn claims_for(&self, sub: &str) -> Result<Option<C>, BoxError> {
        let username = self
            .table
            .subjects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sub)
            .cloned();
        Ok(username.and_then(|name| {
            self.table
                .users
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&name)
                .map(|(_, claims)| claims.clone())
        }))
    }
}

/// Hash `password` with argon2id and its default parameters (what [`InMemoryUsers::new`]
/// uses): the PHC string (`$argon2id$v=19$…`) for
/// [`InMemoryUsers::with_password_hash`].
///
/// ```
/// use tower_jwt_auth::login::{InMemoryUsers, hash_password};
///
/// # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
/// let phc = hash_password("correct horse battery staple")?; // once, offline
/// assert!(phc.starts_with("$argon2id$"));
/// let users = InMemoryUsers::new()?.with_password_hash("alice", phc, serde_json::json!({"sub": "1"}))?;
/// # let _ = users;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// When argon2 cannot hash (no system randomness for the salt).
pub fn hash_password(password: impl AsRef<[u8]>) -> Result<String, ConfigError> {
    let argon2 = Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, Params::default());
    hash_bytes(&argon2, password.as_ref())
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
        let users = self
            .table
            .users
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<_> = users.keys().collect();
        names.sort();
        f.debug_struct("InMemoryUsers")
            .field("users", &names)
            .field("max_concurrent_hashes", &self.slots.available_permits())
            .field("max_hash_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
