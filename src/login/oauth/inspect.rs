//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662), answered from the sessions'
//! store and the revocation list every verifying layer of the server reads.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::{Caller, Endpoints, FIRST_PARTY, invalid_client, invalid_request};
use crate::body::JsonBody;
use crate::claims::Claims;
use crate::error::AuthErrorKind;
use crate::login::request::Form;
use crate::login::service::{store_unavailable, unavailable};
use crate::session::Sessions;

/// The client a verified access token was issued to: its `client_id`, else the first-party
/// client (a `/login` token).
fn owner(claims: &Claims<Map<String, Value>>) -> &str {
    claims
        .custom()
        .get("client_id")
        .and_then(Value::as_str)
        .unwrap_or(FIRST_PARTY)
}

fn json_ok(body: &Value) -> Response<JsonBody> {
    let mut res = Response::new(JsonBody::new(Bytes::from(body.to_string())));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

fn ok() -> Response<JsonBody> {
    let mut res = Response::new(JsonBody::default());
    *res.status_mut() = StatusCode::OK;
    res
}

impl Endpoints {
    pub(super) async fn revoke(&self, parts: &Parts, form: &Form) -> Response<JsonBody> {
        let caller = match self.caller(parts, form).await {
            Ok(caller) => caller,
            Err(res) => return res,
        };
        let Some(token) = form.get("token") else {
            return invalid_request("token is required");
        };
        // The hint (RFC 7009 §2.1) only orders the lookup; both kinds are told apart by shape.
        if Sessions::is_refresh_token(token) {
            if let Err(res) = caller.may_act_for(FIRST_PARTY) {
                return res;
            }
            return match self.sessions.end_by_refresh_token(token).await {
                Ok(_) => ok(),
                Err(e) => store_unavailable(&e),
            };
        }
        // Not ours, expired or malformed: nothing to revoke (RFC 7009 §2.2: still 200).
        let Ok(claims) = self.verifier.verify::<Map<String, Value>>(token) else {
            return ok();
        };
        if let Err(res) = caller.may_act_for(owner(&claims)) {
            return res;
        }
        let Some(jti) = claims.registered().jti.as_deref() else {
            return ok();
        };
        match self.sessions.revoke_token(jti).await {
            Ok(()) => ok(),
            Err(e) => store_unavailable(&e),
        }
    }

    pub(super) async fn introspect(&self, parts: &Parts, form: &Form) -> Response<JsonBody> {
        match self.caller(parts, form).await {
            Ok(Caller::Client(_)) => {}
            Ok(Caller::Anonymous | Caller::FirstParty) => {
                return invalid_client(
                    false,
                    "introspection is for confidential clients: authenticate with HTTP Basic, \
                     or client_id and client_secret in the body",
                );
            }
            Err(res) => return res,
        }
        let Some(token) = form.get("token") else {
            return invalid_request("token is required");
        };
        let inactive = || json_ok(&json!({ "active": false }));
        // Refresh tokens are the first-party client's, which cannot authenticate here.
        if Sessions::is_refresh_token(token) {
            return inactive();
        }
        let Ok(claims) = self.verifier.verify::<Map<String, Value>>(token) else {
            return inactive();
        };
        match self
            .revocations
            .check(claims.registered(), std::time::SystemTime::now())
        {
            Ok(()) => {}
            Err(AuthErrorKind::RevocationsUnavailable) => {
                return unavailable(
                    "the revocation list is out of date; try again shortly",
                    std::time::Duration::from_secs(1),
                );
            }
            Err(_) => return inactive(),
        }
        json_ok(&self.active(&claims))
    }

    /// RFC 7662 §2.2 for a token that would pass now.
    fn active(&self, claims: &Claims<Map<String, Value>>) -> Value {
        let registered = claims.registered();
        let jkt = registered.cnf.as_ref().and_then(|cnf| cnf.jkt.as_deref());
        let mut body = json!({
            "active": true,
            "client_id": owner(claims),
            "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
        });
        let add = |body: &mut Value, name: &str, value: Option<Value>| {
            if let Some(value) = value {
                body[name] = value;
            }
        };
        // A token of this server without `iss` was still issued by it.
        let iss = registered.iss.as_ref().or(self.identifier.as_ref());
        add(&mut body, "iss", iss.cloned().map(Value::from));
        add(&mut body, "sub", registered.sub.clone().map(Value::from));
        add(&mut body, "exp", registered.exp.map(Value::from));
        add(&mut body, "iat", registered.iat.map(Value::from));
        add(&mut body, "nbf", registered.nbf.map(Value::from));
        add(&mut body, "jti", registered.jti.clone().map(Value::from));
        add(
            &mut body,
            "scope",
            (!registered.scope.is_empty()).then(|| registered.scope.join(" ").into()),
        );
        add(
            &mut body,
            "aud",
            match registered.aud.as_slice() {
                [] => None,
                [one] => Some(one.clone().into()),
                many => Some(many.into()),
            },
        );
        add(
            &mut body,
            "username",
            claims
                .custom()
                .get("username")
                .filter(|v| v.is_string())
                .cloned(),
        );
        add(&mut body, "cnf", jkt.map(|jkt| json!({ "jkt": jkt })));
        body
    }
}
