//! The OAuth 2 endpoints through the composition root, as tower services; the HTTP round
//! trips against the demo servers are in `tests/oauth.rs`.

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

use crate::keys::SigningKey;
use crate::login::{AuthServer, InMemoryClients, InMemoryUsers};
use crate::session::{PeerAddr, Rate};
use crate::{Algorithm, JsonBody};

const ISSUER: &str = "https://auth.example/tenant";

type Server = AuthServer<InMemoryUsers<Value>>;

async fn server_with(per_address: Option<Rate>) -> Server {
    let users = InMemoryUsers::new()
        .unwrap()
        .with_user(
            "user1",
            "password1",
            json!({"sub": "1", "username": "user1"}),
        )
        .unwrap();
    let clients = InMemoryClients::new()
        .unwrap()
        .with_clients_from_list("client1:secret1:api.read api.write;client2:secret2:api.read")
        .unwrap();
    AuthServer::builder(
        users,
        SigningKey::from_secret(Algorithm::HS256, [7u8; 32]).unwrap(),
    )
    .issuer(ISSUER)
    .clients(clients)
    .login_limits(None, per_address)
    .build()
    .await
    .unwrap()
}

fn ec_key() -> SigningKey {
    SigningKey::from_pem(
        Algorithm::ES256,
        include_bytes!("../../../tests/keys/ec256_private.pem"),
    )
    .unwrap()
}

async fn server() -> Server {
    server_with(None).await
}

fn form(body: &str) -> http::request::Builder {
    Request::post("/")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .extension(PeerAddr(SocketAddr::from(([192, 0, 2, 1], 5000))))
        .header("x-body", body)
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

async fn send<S>(svc: S, req: http::request::Builder) -> (StatusCode, http::HeaderMap, Value)
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<JsonBody>>,
    S::Error: std::fmt::Debug,
{
    let body = req
        .headers_ref()
        .and_then(|h| h.get("x-body"))
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, value)
}

fn payload(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap()
    };
    (part(), part())
}

/// Whether the server's own layer lets `token` through.
async fn passes(auth: &Server, token: &str) -> bool {
    let svc = auth
        .layer_for::<Value>()
        .layer(tower::service_fn(|_req: Request<()>| async {
            Ok::<_, std::convert::Infallible>(Response::new(String::new()))
        }));
    let req = Request::get("/")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .unwrap();
    svc.oneshot(req).await.unwrap().status() == StatusCode::OK
}

async fn client_token(auth: &Server, id: &str, secret: &str) -> String {
    let (status, _, body) = send(
        auth.token(),
        form("grant_type=client_credentials").header(AUTHORIZATION, basic(id, secret)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn login(auth: &Server) -> (String, String) {
    let req = Request::post("/login")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(
            r#"{"username":"user1","password":"password1"}"#,
        )))
        .unwrap();
    let res = auth.login().oneshot(req).await.unwrap();
    let body: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn client_credentials_issue_rfc_9068_tokens_the_layer_accepts() {
    let auth = server().await;
    let (status, headers, body) = send(
        auth.token(),
        form("grant_type=client_credentials&scope=api.read")
            .header(AUTHORIZATION, basic("client1", "secret1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "api.read");
    assert_eq!(body["expires_in"], 900);
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let (header, claims) = payload(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], "client1");
    assert_eq!(claims["client_id"], "client1");
    assert_eq!(claims["scope"], "api.read");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], ISSUER);
    assert!(claims["jti"].is_string() && claims["iat"].is_u64() && claims["exp"].is_u64());
    assert!(claims.get("username").is_none() && claims.get("auth_time").is_none());
    assert!(passes(&auth, token).await);

    // client_secret_post, all of the client's scopes by default.
    let (status, _, body) = send(
        auth.token(),
        form("grant_type=client_credentials&client_id=client1&client_secret=secret1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "api.read api.write");
}

#[tokio::test]
async fn user_tokens_without_an_audience_still_pass() {
    let auth = server().await;
    let (access, _) = login(&auth).await;
    assert!(payload(&access).1.get("aud").is_none());
    assert!(passes(&auth, &access).await);
}

#[tokio::test]
async fn token_endpoint_errors_are_rfc_6749_and_never_cached() {
    let auth = server().await;
    let cases: [(http::request::Builder, StatusCode, &str); 9] = [
        (form("scope=x"), StatusCode::BAD_REQUEST, "invalid_request"),
        (
            form("grant_type=password"),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            form("grant_type=client_credentials&scope=admin")
                .header(AUTHORIZATION, basic("client1", "secret1")),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            form("grant_type=client_credentials"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            form("grant_type=client_credentials&client_id=client1&client_secret=nope"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            form("grant_type=client_credentials&client_id=client1"),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            form("grant_type=client_credentials&client_secret=secret1")
                .header(AUTHORIZATION, basic("client1", "secret1")),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            form("grant_type=client_credentials&grant_type=refresh_token"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            form("grant_type=refresh_token&refresh_token=garbage"),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
    ];
    for (req, status, error) in cases {
        let (got, headers, body) = send(auth.token(), req).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{body}"
        );
        assert_eq!(headers[CACHE_CONTROL], "no-store", "{body}");
        assert!(!headers.contains_key(WWW_AUTHENTICATE), "{body}");
    }
    // A wrong secret sent with Basic: the challenge names Basic.
    let (status, headers, body) = send(
        auth.token(),
        form("grant_type=client_credentials").header(AUTHORIZATION, basic("client1", "nope")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(
        headers[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    // Not a form.
    let req = Request::post("/")
        .header(CONTENT_TYPE, "application/json")
        .header("x-body", "grant_type=client_credentials");
    let (status, headers, _) = send(auth.token(), req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(headers[CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn failed_client_authentication_is_limited_per_address_never_per_client() {
    let auth = server_with(Rate::new(3, std::time::Duration::from_secs(600))).await;
    let wrong =
        || form("grant_type=client_credentials").header(AUTHORIZATION, basic("client1", "wrong"));
    for _ in 0..3 {
        assert_eq!(
            send(auth.token(), wrong()).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, headers, _) = send(auth.token(), wrong()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(http::header::RETRY_AFTER));
    // The client itself, from its own address, is not locked out.
    let elsewhere = form("grant_type=client_credentials")
        .header(AUTHORIZATION, basic("client1", "secret1"))
        .extension(PeerAddr(SocketAddr::from(([198, 51, 100, 7], 5000))));
    assert_eq!(send(auth.token(), elsewhere).await.0, StatusCode::OK);
    // Successes give their unit back: they never use up an address's budget.
    let auth = server_with(Rate::new(2, std::time::Duration::from_secs(600))).await;
    for _ in 0..5 {
        client_token(&auth, "client1", "secret1").await;
    }
}

#[tokio::test]
async fn the_refresh_grant_is_the_first_party_clients_rotation() {
    let auth = server().await;
    let (_, refresh) = login(&auth).await;
    // Another client may not refresh it.
    let (status, _, body) = send(
        auth.token(),
        form(&format!("grant_type=refresh_token&refresh_token={refresh}"))
            .header(AUTHORIZATION, basic("client1", "secret1")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, headers, body) = send(
        auth.token(),
        form(&format!(
            "grant_type=refresh_token&refresh_token={refresh}&client_id=first-party"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(next, refresh);
    assert!(passes(&auth, body["access_token"].as_str().unwrap()).await);
    // And it is the same family as /refresh: the successor works there.
    let req = Request::post("/refresh")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(
            json!({"refresh_token": next}).to_string(),
        )))
        .unwrap();
    assert_eq!(
        auth.refresh().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revocation_ends_sessions_and_tokens_of_their_owner_only() {
    let auth = server().await;
    // A first-party refresh token: no client authentication; its session's access tokens go.
    let (access, refresh) = login(&auth).await;
    let (status, headers, _) = send(auth.revocation(), form(&format!("token={refresh}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    assert!(!passes(&auth, &access).await);
    let (status, _, _) = send(
        auth.token(),
        form(&format!("grant_type=refresh_token&refresh_token={refresh}")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A client's token: only that client, authenticated.
    let token = client_token(&auth, "client1", "secret1").await;
    let (status, _, body) = send(auth.revocation(), form(&format!("token={token}"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, _, body) = send(
        auth.revocation(),
        form(&format!("token={token}")).header(AUTHORIZATION, basic("client2", "secret2")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (status, _, _) = send(
        auth.revocation(),
        form(&format!("token={token}")).header(AUTHORIZATION, basic("client2", "wrong")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(passes(&auth, &token).await, "the refusals revoked nothing");
    let (status, _, _) = send(
        auth.revocation(),
        form(&format!("token={token}&token_type_hint=access_token"))
            .header(AUTHORIZATION, basic("client1", "secret1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!passes(&auth, &token).await);

    // A first-party access token, revoked by its jti, by anyone holding it.
    let (access, _) = login(&auth).await;
    assert_eq!(
        send(auth.revocation(), form(&format!("token={access}")))
            .await
            .0,
        StatusCode::OK
    );
    assert!(!passes(&auth, &access).await);
    // Garbage and unknown tokens: 200, nothing to do.
    for token in ["garbage", "a.b.c", &"A".repeat(97)] {
        assert_eq!(
            send(auth.revocation(), form(&format!("token={token}")))
                .await
                .0,
            StatusCode::OK
        );
    }
    assert_eq!(
        auth.sessions().revocations().len(),
        3,
        "no entry for garbage"
    );
    let (status, _, body) = send(auth.revocation(), form("")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

#[tokio::test]
async fn introspection_answers_from_the_same_revocations() {
    let auth = server().await;
    let introspect = |token: &str| {
        form(&format!("token={token}")).header(AUTHORIZATION, basic("client2", "secret2"))
    };
    let token = client_token(&auth, "client1", "secret1").await;
    let (status, headers, body) = send(auth.introspection(), introspect(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], "client1");
    assert_eq!(body["client_id"], "client1");
    assert_eq!(body["scope"], "api.read api.write");
    assert_eq!(body["iss"], ISSUER);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["exp"].is_u64() && body["iat"].is_u64());
    assert!(body.get("cnf").is_none());

    let (access, refresh) = login(&auth).await;
    let (_, _, body) = send(auth.introspection(), introspect(&access)).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "first-party");
    assert_eq!(body["username"], "user1");
    // Refresh tokens are never active to a client they were not issued to.
    let (_, _, body) = send(auth.introspection(), introspect(&refresh)).await;
    assert_eq!(body, json!({"active": false}));
    for garbage in ["garbage", "a.b.c"] {
        let (status, _, body) = send(auth.introspection(), introspect(garbage)).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"active": false})));
    }

    // Revoked on the revocation endpoint: inactive at once.
    send(
        auth.revocation(),
        form(&format!("token={token}")).header(AUTHORIZATION, basic("client1", "secret1")),
    )
    .await;
    let (_, _, body) = send(auth.introspection(), introspect(&token)).await;
    assert_eq!(body, json!({"active": false}));

    // Only for authenticated clients.
    let (status, _, body) = send(auth.introspection(), form(&format!("token={access}"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, _, _) = send(
        auth.introspection(),
        form(&format!("token={access}&client_id=first-party")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metadata_names_the_endpoints() {
    let auth = server().await;
    assert!(
        auth.provider_metadata().is_none(),
        "no URL and symmetric keys"
    );
    let users = InMemoryUsers::<Value>::new().unwrap();
    let key = ec_key();
    let auth = AuthServer::builder(users, key)
        .local_url("http://127.0.0.1:3000")
        .clients(
            InMemoryClients::new()
                .unwrap()
                .with_client("c1", "s", ["b", "a"])
                .unwrap(),
        )
        .build()
        .await
        .unwrap();
    assert_eq!(auth.issuer_identifier(), Some("http://127.0.0.1:3000"));
    let (path, service) = auth.authorization_server_metadata().unwrap();
    assert_eq!(path, "/.well-known/oauth-authorization-server");
    let res = service
        .oneshot(Request::get(&path).body(()).unwrap())
        .await
        .unwrap();
    let doc: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(doc["issuer"], "http://127.0.0.1:3000");
    assert_eq!(doc["token_endpoint"], "http://127.0.0.1:3000/token");
    assert_eq!(doc["revocation_endpoint"], "http://127.0.0.1:3000/revoke");
    assert_eq!(
        doc["introspection_endpoint"],
        "http://127.0.0.1:3000/introspect"
    );
    assert_eq!(
        doc["jwks_uri"],
        "http://127.0.0.1:3000/.well-known/jwks.json"
    );
    assert_eq!(doc["scopes_supported"], json!(["a", "b"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        doc["grant_types_supported"],
        json!(["client_credentials", "refresh_token"])
    );
    let openid = auth.provider_metadata().unwrap();
    let res = openid
        .oneshot(Request::get("/").body(()).unwrap())
        .await
        .unwrap();
    let same: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(same, doc);

    // RFC 8414 §3.1: the issuer's path goes after the well-known suffix.
    // (A server without a URL publishes no metadata: its endpoints have no address.)
    assert!(server().await.authorization_server_metadata().is_none());
    let users = InMemoryUsers::<Value>::new().unwrap();
    let auth = AuthServer::builder(
        users,
        SigningKey::from_secret(Algorithm::HS256, [7u8; 32]).unwrap(),
    )
    .issuer(ISSUER)
    .local_url("http://127.0.0.1:3000")
    .build()
    .await
    .unwrap();
    let (path, _) = auth.authorization_server_metadata().unwrap();
    assert_eq!(path, "/.well-known/oauth-authorization-server/tenant");
}

#[cfg(feature = "dpop")]
mod dpop {
    use http::Method;

    use super::*;
    use crate::dpop::{Dpop, DpopKey};

    #[tokio::test]
    async fn a_proof_binds_the_clients_token_and_introspection_shows_it() {
        let users = InMemoryUsers::<Value>::new().unwrap();
        let auth = AuthServer::builder(
            users,
            SigningKey::from_secret(Algorithm::HS256, [7u8; 32]).unwrap(),
        )
        .public_url("https://auth.example")
        .clients(
            InMemoryClients::new()
                .unwrap()
                .with_client("c1", "s1", ["x"])
                .unwrap(),
        )
        .dpop(Dpop::new("https://auth.example").unwrap())
        .build()
        .await
        .unwrap();
        let key = DpopKey::new(ec_key()).unwrap();
        let proof = key
            .proof(&Method::POST, "https://auth.example/token", None, None)
            .unwrap();
        let req = form("grant_type=client_credentials")
            .uri("https://auth.example/token")
            .header(AUTHORIZATION, basic("c1", "s1"))
            .header("dpop", proof.clone());
        let (status, _, body) = send(auth.token(), req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["token_type"], "DPoP");
        let token = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(payload(&token).1["cnf"]["jkt"], key.jkt());
        // The same proof again: replayed.
        let req = form("grant_type=client_credentials")
            .uri("https://auth.example/token")
            .header(AUTHORIZATION, basic("c1", "s1"))
            .header("dpop", proof);
        let (status, _, body) = send(auth.token(), req).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_dpop_proof"))
        );

        let req = form(&format!("token={token}")).header(AUTHORIZATION, basic("c1", "s1"));
        let (_, _, body) = send(auth.introspection(), req).await;
        assert_eq!(body["active"], true);
        assert_eq!(body["token_type"], "DPoP");
        assert_eq!(body["cnf"]["jkt"], key.jkt());
        // As a bearer token, the layer refuses it.
        assert!(!passes(&auth, &token).await);

        let (_, service) = auth.authorization_server_metadata().unwrap();
        let res = service
            .oneshot(Request::get("/").body(()).unwrap())
            .await
            .unwrap();
        let doc: Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        let algs = doc["dpop_signing_alg_values_supported"].as_array().unwrap();
        assert!(algs.contains(&json!("Ed25519")) && algs.contains(&json!("ES256")));
    }
}
