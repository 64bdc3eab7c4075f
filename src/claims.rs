//! [`Claims<C>`]: what a verified request carries in its extensions.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

/// The registered claims of a verified token (RFC 7519 §4.1), checked for their JSON types.
///
/// A token where one of these claims is present with the wrong type (say `"exp": "tomorrow"` or
/// `"iss": 5`) is rejected before it reaches your service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RegisteredClaims {
    /// `iss`: who issued the token.
    #[serde(default)]
    pub iss: Option<String>,
    /// `sub`: whom the token is about.
    #[serde(default)]
    pub sub: Option<String>,
    /// `aud`: the audiences (a single string in the token becomes one entry).
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// `exp`: expiry, in seconds since the Unix epoch. Always present on a verified token.
    #[serde(default, deserialize_with = "numeric_date")]
    pub exp: Option<u64>,
    /// `nbf`: not valid before, in seconds since the Unix epoch.
    #[serde(default, deserialize_with = "numeric_date")]
    pub nbf: Option<u64>,
    /// `iat`: issued at, in seconds since the Unix epoch.
    #[serde(default, deserialize_with = "numeric_date")]
    pub iat: Option<u64>,
    /// `jti`: the token's unique ID.
    #[serde(default)]
    pub jti: Option<String>,
    /// `scope` (RFC 8693: a space-separated string; an array is accepted too).
    #[serde(default, deserialize_with = "scopes")]
    pub scope: Vec<String>,
    /// `scp` (the array or string form some providers use instead of `scope`).
    #[serde(default, deserialize_with = "scopes")]
    pub scp: Vec<String>,
    /// `roles` (RFC 9068 / RFC 7643: an array of strings). A single string is **one** role,
    /// spaces and all: only `scope` and `scp` are space-separated lists.
    #[serde(default, deserialize_with = "one_or_many")]
    pub roles: Vec<String>,
    /// `sid`: the session (refresh family) the token belongs to; revoking the session revokes
    /// the token (see the `revocation` module).
    #[serde(default)]
    pub sid: Option<String>,
    /// `gen`: the user's token generation when the token was issued; "log out everywhere"
    /// revokes every token of the user with a lower one.
    #[serde(default, rename = "gen")]
    pub generation: Option<u64>,
    /// `auth_time` (OpenID Connect, RFC 9470): when the user last actually authenticated (Unix
    /// seconds); the login service sets it and refreshes keep it.
    #[serde(default)]
    pub auth_time: Option<u64>,
    /// `acr` (OpenID Connect, RFC 9470): the authentication context class the user
    /// authenticated with.
    #[serde(default)]
    pub acr: Option<String>,
    /// `csrf`: the CSRF token a token carried in a cookie is bound to (the login service's
    /// cookie mode sets it; see the `csrf` module, feature `cookie`).
    #[serde(default)]
    pub csrf: Option<String>,
    /// `cnf`: the key the token is bound to (RFC 7800); with DPoP, its `jkt` (RFC 9449 §6).
    #[serde(default)]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` (confirmation) claim: the proof-of-possession key a token is bound to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Confirmation {
    /// `jkt`: the base64url SHA-256 JWK thumbprint (RFC 7638) of the DPoP key (RFC 9449 §6.1).
    #[serde(default)]
    pub jkt: Option<String>,
}

impl RegisteredClaims {
    /// Whether the token grants `scope` (through `scope` or `scp`).
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.iter().chain(&self.scp).any(|s| s == scope)
    }

    /// Whether the token carries role `role` (in `roles`).
    #[must_use]
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the registered claim `name` is present.
    pub(crate) fn has(&self, name: &str) -> Option<bool> {
        Some(match name {
            "iss" => self.iss.is_some(),
            "sub" => self.sub.is_some(),
            "aud" => !self.aud.is_empty(),
            "exp" => self.exp.is_some(),
            "nbf" => self.nbf.is_some(),
            "iat" => self.iat.is_some(),
            "jti" => self.jti.is_some(),
            _ => return None,
        })
    }
}

/// RFC 7519 NumericDate: a JSON number of seconds (a fraction is allowed and truncated).
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Int(u64),
        Float(f64),
    }
    match Option::<Num>::deserialize(d)? {
        None => Ok(None),
        Some(Num::Int(n)) => Ok(Some(n)),
        Some(Num::Float(f)) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
            // Truncation is intended: NumericDate fractions are below our one-second resolution.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let secs = f as u64;
            Ok(Some(secs))
        }
        Some(Num::Float(_)) => Err(serde::de::Error::custom(
            "a NumericDate must be a non-negative number",
        )),
    }
}

/// A space-separated string or an array of strings.
fn scopes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scopes {
        Joined(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Scopes>::deserialize(d)? {
        None => Vec::new(),
        Some(Scopes::Joined(s)) => s.split_ascii_whitespace().map(str::to_owned).collect(),
        Some(Scopes::Many(v)) => v,
    })
}

/// A string (one item) or an array of strings; used for `aud` and `roles`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

/// The verified claims of a request, inserted into its extensions by
/// [`JwtAuth`](crate::auth::JwtAuth).
///
/// `Claims<C>` dereferences to your claims type `C`; [`Claims::registered`] gives the registered
/// claims. Cloning is cheap (one `Arc`), and `C` needs no `Clone`.
///
/// ```
/// # use tower_jwt_auth::Claims;
/// # #[derive(serde::Deserialize)] struct MyClaims { username: String }
/// fn handler(req: http::Request<()>) -> String {
///     match req.extensions().get::<Claims<MyClaims>>() {
///         Some(claims) => format!("hello {}", claims.username),
///         None => "the JwtAuth layer is not installed".to_owned(),
///     }
/// }
/// # assert_eq!(handler(http::Request::new(())), "the JwtAuth layer is not installed");
/// ```
pub struct Claims<C> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    custom: C,
    registered: RegisteredClaims,
}

impl<C> Claims<C> {
    /// Wrap claims. The layer does this for you; it is public for tests and custom verifiers.
    #[must_use]
    pub fn new(custom: C, registered: RegisteredClaims) -> Self {
        Self {
            inner: Arc::new(Inner { custom, registered }),
        }
    }

    /// The registered claims (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`).
    #[must_use]
    pub fn registered(&self) -> &RegisteredClaims {
        &self.inner.registered
    }

    /// The claims as your type.
    #[must_use]
    pub fn custom(&self) -> &C {
        &self.inner.custom
    }
}

#[cfg(test)]
impl<C> Claims<C> {
    /// Whether both share one allocation (a cache hit hands out the cached claims).
    pub(crate) fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<C> Clone for Claims<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C> Deref for Claims<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.inner.custom
    }
}

impl<C: fmt::Debug> fmt::Debug for Claims<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("custom", &self.inner.custom)
            .field("registered", &self.inner.registered)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_exp_is_rejected() {
        assert!(serde_json::from_str::<RegisteredClaims>(r#"{"exp":"123"}"#).is_err());
    }

    #[test]
    fn negative_exp_is_rejected() {
        assert!(serde_json::from_str::<RegisteredClaims>(r#"{"exp":-1}"#).is_err());
    }

    #[test]
    fn fractional_exp_is_truncated() {
        let c: RegisteredClaims = serde_json::from_str(r#"{"exp":10.9}"#).unwrap();
        assert_eq!(c.exp, Some(10));
    }

    #[test]
    fn numeric_iss_is_rejected() {
        assert!(serde_json::from_str::<RegisteredClaims>(r#"{"iss":5}"#).is_err());
    }

    #[test]
    fn aud_string_or_array() {
        let one: RegisteredClaims = serde_json::from_str(r#"{"aud":"a"}"#).unwrap();
        let many: RegisteredClaims = serde_json::from_str(r#"{"aud":["a","b"]}"#).unwrap();
        assert_eq!(one.aud, ["a"]);
        assert_eq!(many.aud, ["a", "b"]);
        assert!(serde_json::from_str::<RegisteredClaims>(r#"{"aud":[1]}"#).is_err());
    }

    #[test]
    fn scopes_are_space_separated_or_an_array() {
        let c: RegisteredClaims =
            serde_json::from_str(r#"{"scope":"read write","scp":["admin"]}"#).unwrap();
        assert!(c.has_scope("read") && c.has_scope("write") && c.has_scope("admin"));
        assert!(!c.has_scope("rea"));
        assert!(serde_json::from_str::<RegisteredClaims>(r#"{"scope":5}"#).is_err());
    }

    #[test]
    fn a_role_string_is_one_role_even_with_spaces() {
        let c: RegisteredClaims = serde_json::from_str(r#"{"roles":"Helpdesk Admin"}"#).unwrap();
        assert_eq!(c.roles, ["Helpdesk Admin"]);
        assert!(!c.has_role("Admin"));
        assert!(c.has_role("Helpdesk Admin"));
        let many: RegisteredClaims = serde_json::from_str(r#"{"roles":["ops","dev"]}"#).unwrap();
        assert!(many.has_role("ops") && many.has_role("dev"));
        assert!(serde_json::from_str::<RegisteredClaims>(r#"{"roles":[1]}"#).is_err());
    }

    #[test]
    fn duplicate_claim_is_rejected() {
        assert!(serde_json::from_str::<RegisteredClaims>(r#"{"exp":1,"exp":2}"#).is_err());
    }

    #[test]
    fn claims_deref_to_custom_type() {
        let c = Claims::new(5u8, RegisteredClaims::default());
        assert_eq!(*c, 5);
        assert_eq!(*c.custom(), 5);
        assert_eq!(*Claims::clone(&c), 5);
    }
}
