//! `POST /token`: the `client_credentials` and `refresh_token` grants.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};

use super::{Caller, TokenService, invalid_client, invalid_request};
use crate::body::{JsonBody, json_error};
use crate::login::Reissue;
use crate::login::claims::{SessionClaims, UserClaims};
use crate::login::proof::Proof;
use crate::login::request::Form;
use crate::login::service::not_issued;

impl<A: Reissue> TokenService<A> {
    pub(super) async fn token(&self, parts: &Parts, form: &Form) -> Response<JsonBody> {
        let Some(grant) = form.get("grant_type") else {
            return invalid_request("grant_type is required");
        };
        if !matches!(grant, "client_credentials" | "refresh_token") {
            return json_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "the grant types are client_credentials and refresh_token",
            );
        }
        let caller = match self.endpoints.caller(parts, form).await {
            Ok(caller) => caller,
            Err(res) => return res,
        };
        if grant == "refresh_token" {
            return self.refresh_grant(parts, form, &caller).await;
        }
        let Caller::Client(client) = caller else {
            return invalid_client(
                false,
                "client_credentials needs a confidential client: authenticate with HTTP Basic, \
                 or client_id and client_secret in the body",
            );
        };
        let scope = match granted_scope(client.scopes(), form.get("scope")) {
            Ok(scope) => scope,
            Err(res) => return res,
        };
        let proof = match Proof::check(self.endpoints.dpop.as_ref(), parts) {
            Ok(proof) => proof,
            Err(res) => return res,
        };
        if let Some(proof) = &proof
            && let Err(res) = proof.record().await
        {
            return res;
        }
        let jkt = proof.as_ref().map(Proof::jkt);
        let added = SessionClaims::for_client(jkt);
        let claims = UserClaims::new(&serde_json::json!({ "sub": client.id(), "scope": scope }));
        let issuer = self
            .endpoints
            .client_issuer
            .clone()
            .access_token_profile(client.id());
        let Some(Ok(token)) = claims.map(|claims| issuer.issue_claims(claims, Some(&added))) else {
            return not_issued();
        };
        let body = serde_json::json!({
            "access_token": token.access_token(),
            "token_type": if added.is_bound() { "DPoP" } else { "Bearer" },
            "expires_in": token.expires_in(),
            "scope": scope,
        });
        let mut res = Response::new(JsonBody::new(Bytes::from(body.to_string())));
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    }

    /// RFC 6749 §6 for the first-party client's refresh tokens: the refresh service's rotation.
    async fn refresh_grant(
        &self,
        parts: &Parts,
        form: &Form,
        caller: &Caller,
    ) -> Response<JsonBody> {
        if let Caller::Client(_) = caller {
            // RFC 6749 §6: the refresh token was not issued to this client.
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the refresh token was issued to another client",
            );
        }
        let Some(refresh_token) = form.get("refresh_token") else {
            // A browser in cookie mode: its refresh cookie, with the refresh's forgery checks.
            if let Some(res) = self.refresh.rotate_cookie(parts).await {
                return res;
            }
            return invalid_request("refresh_token is required");
        };
        self.refresh.rotate(parts, refresh_token).await
    }
}

/// The scopes granted for `asked` (space-separated; none: all of the client's), as the
/// space-separated `scope` value; 400 `invalid_scope` for a scope the client may not have.
#[allow(clippy::result_large_err)]
fn granted_scope(allowed: &[String], asked: Option<&str>) -> Result<String, Response<JsonBody>> {
    let Some(asked) = asked else {
        return Ok(allowed.join(" "));
    };
    let mut granted: Vec<&str> = Vec::new();
    for scope in asked.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == scope) {
            return Err(json_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "a requested scope is not one this client may have",
            ));
        }
        if !granted.contains(&scope) {
            granted.push(scope);
        }
    }
    Ok(granted.join(" "))
}

#[cfg(test)]
mod tests {
    use super::granted_scope;

    #[test]
    fn scopes_narrow_and_never_widen() {
        let allowed = ["a".to_owned(), "b".to_owned()];
        assert_eq!(granted_scope(&allowed, None).unwrap(), "a b");
        assert_eq!(granted_scope(&allowed, Some("b")).unwrap(), "b");
        assert_eq!(granted_scope(&allowed, Some("b  a b")).unwrap(), "b a");
        assert!(granted_scope(&allowed, Some("a c")).is_err());
        assert!(granted_scope(&allowed, Some("A")).is_err());
    }
}
