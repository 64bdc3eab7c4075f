//! The claims of an issued token, typed: the registered claims the issuer sets, the session
//! claims a login or refresh adds, and the user's own claims, flattened into one JSON object in
//! which no name appears twice (the crate's verifier refuses a token with a duplicate member).

use serde::Serialize;
use serde_json::{Map, Value};

/// The user's own claims, as the authenticator gave them: a JSON object. The names the crate
/// sets are removed from it when a token is issued (the crate's values win).
#[derive(Debug)]
pub(crate) struct UserClaims(Map<String, Value>);

impl UserClaims {
    /// `claims` as a JSON object; `None` if they do not serialize to one.
    pub(crate) fn new<T: Serialize + ?Sized>(claims: &T) -> Option<Self> {
        match serde_json::to_value(claims) {
            Ok(Value::Object(map)) => Some(Self(map)),
            _ => None,
        }
    }

    /// The user's id (`sub`), when it is a string.
    pub(crate) fn sub(&self) -> Option<&str> {
        self.0.get("sub").and_then(Value::as_str)
    }

    /// Drop each of `names` the crate is about to write itself.
    fn without(mut self, names: impl IntoIterator<Item = &'static str>) -> Map<String, Value> {
        for name in names {
            self.0.remove(name);
        }
        self.0
    }
}

/// What a login or a refresh adds to the user's claims.
#[derive(Debug, Default, Serialize)]
pub(crate) struct SessionClaims<'a> {
    /// When the user authenticated: the session's login, or now (none for a client's token:
    /// no user authenticated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) auth_time: Option<u64>,
    /// The session (refresh family) the token belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sid: Option<&'a str>,
    /// The user's generation ("log out everywhere" raises it).
    #[serde(rename = "gen", skip_serializing_if = "Option::is_none")]
    pub(crate) generation: Option<u64>,
    /// The DPoP key the token is bound to (RFC 9449 §6.1). Never taken from the user's claims:
    /// nothing from a user table may pose as a binding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cnf: Option<KeyBinding<'a>>,
    /// The CSRF token of cookie mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) csrf: Option<&'a str>,
}

impl<'a> SessionClaims<'a> {
    /// The claims of a login (`session` with sessions on) or a refresh, bound to `jkt` if any.
    pub(crate) fn new(
        session: Option<&'a crate::session::Session>,
        jkt: Option<&'a str>,
        now: u64,
    ) -> Self {
        Self {
            auth_time: Some(session.map_or(now, crate::session::Session::auth_time)),
            sid: session.map(crate::session::Session::sid),
            generation: session.map(crate::session::Session::generation),
            cnf: jkt.map(|jkt| KeyBinding { jkt }),
            csrf: None,
        }
    }

    /// The claims of a client's own token (`client_credentials`): only its binding.
    pub(crate) fn for_client(jkt: Option<&'a str>) -> Self {
        Self {
            cnf: jkt.map(|jkt| KeyBinding { jkt }),
            ..Self::default()
        }
    }

    /// Whether the token is bound to a key (answered as `"token_type": "DPoP"`).
    pub(crate) fn is_bound(&self) -> bool {
        self.cnf.is_some()
    }

    /// The names these claims own in the token: written here or, for `cnf`, never written
    /// from the user's claims.
    fn names(&self) -> impl Iterator<Item = &'static str> {
        [
            self.auth_time.map(|_| "auth_time"),
            self.sid.map(|_| "sid"),
            self.generation.map(|_| "gen"),
            Some("cnf"),
            self.csrf.map(|_| "csrf"),
        ]
        .into_iter()
        .flatten()
    }
}

/// `cnf` of a bound token: the thumbprint of its key.
#[derive(Debug, Serialize)]
pub(crate) struct KeyBinding<'a> {
    jkt: &'a str,
}

/// The registered claims the issuer writes into every token.
#[derive(Debug, Serialize)]
pub(super) struct Registered<'a> {
    pub(super) iat: u64,
    pub(super) nbf: u64,
    pub(super) exp: u64,
    pub(super) jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) aud: Option<&'a str>,
    /// RFC 9068's `client_id`, with the access-token profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) client_id: Option<&'a str>,
}

impl Registered<'_> {
    fn names(&self) -> impl Iterator<Item = &'static str> {
        [
            Some("iat"),
            Some("nbf"),
            Some("exp"),
            Some("jti"),
            self.iss.map(|_| "iss"),
            self.aud.map(|_| "aud"),
            self.client_id.map(|_| "client_id"),
        ]
        .into_iter()
        .flatten()
    }
}

/// One token's claims: registered, session and the user's, flattened.
#[derive(Debug, Serialize)]
pub(super) struct Issued<'a> {
    #[serde(flatten)]
    registered: Registered<'a>,
    #[serde(flatten)]
    session: Option<&'a SessionClaims<'a>>,
    #[serde(flatten)]
    user: Map<String, Value>,
}

impl<'a> Issued<'a> {
    /// The claims of one token: the user's, without any name the other two write.
    pub(super) fn new(
        registered: Registered<'a>,
        session: Option<&'a SessionClaims<'a>>,
        user: UserClaims,
    ) -> Self {
        let taken = registered
            .names()
            .chain(session.into_iter().flat_map(SessionClaims::names));
        let user = user.without(taken.collect::<Vec<_>>());
        Self {
            registered,
            session,
            user,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered() -> Registered<'static> {
        Registered {
            iat: 10,
            nbf: 10,
            exp: 20,
            jti: "j",
            iss: Some("https://issuer"),
            aud: None,
            client_id: None,
        }
    }

    /// Every name once, the crate's values winning; the user's `aud` stays when the issuer
    /// sets none, and a `cnf` from the user table never survives a login.
    #[test]
    fn no_name_appears_twice_and_the_crate_wins() {
        let user = UserClaims::new(&serde_json::json!({
            "sub": "1", "exp": 999, "iss": "forged", "aud": "mine", "sid": "forged",
            "cnf": {"jkt": "forged"}, "name": "Alice",
        }))
        .unwrap();
        let session = SessionClaims {
            auth_time: Some(5),
            sid: Some("s1"),
            generation: Some(3),
            ..SessionClaims::default()
        };
        let text = serde_json::to_string(&Issued::new(registered(), Some(&session), user)).unwrap();
        let object: Map<String, Value> = serde_json::from_str(&text).unwrap();
        for name in [
            "exp",
            "iss",
            "sid",
            "aud",
            "sub",
            "name",
            "gen",
            "auth_time",
        ] {
            assert_eq!(
                text.matches(&format!("\"{name}\":")).count(),
                1,
                "{name}: {text}"
            );
        }
        assert_eq!(object["exp"], 20);
        assert_eq!(object["iss"], "https://issuer");
        assert_eq!(object["sid"], "s1");
        assert_eq!(object["aud"], "mine");
        assert!(!object.contains_key("cnf"), "{text}");
    }

    #[test]
    fn a_plain_token_keeps_the_users_session_like_claims() {
        let user = UserClaims::new(&serde_json::json!({"sub": "1", "sid": "theirs"})).unwrap();
        let text = serde_json::to_string(&Issued::new(registered(), None, user)).unwrap();
        assert!(text.contains(r#""sid":"theirs""#), "{text}");
    }

    #[test]
    fn only_objects_are_claims() {
        assert!(UserClaims::new(&5).is_none());
        assert!(UserClaims::new(&["a"]).is_none());
        assert_eq!(
            UserClaims::new(&serde_json::json!({"sub": "7"}))
                .unwrap()
                .sub(),
            Some("7")
        );
    }
}
