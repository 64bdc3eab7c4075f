//! The demo-server contract (README, "Demo servers"), checked over real HTTP against both demo servers.

mod common;

use common::*;
use http::StatusCode;
use jsonwebtoken::{Algorithm, Header};

/// Log in, call /protected, and check what the contract promises.
async fn round_trip(server: &Server, alg: Algorithm) {
    let reply = server.login("user2", "password2").await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{alg:?} login: {}",
        reply.text()
    );
    assert_eq!(reply.headers["cache-control"], "no-store");
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().unwrap();

    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, alg);
    let claims: serde_json::Value = jsonwebtoken::dangerous::insecure_decode_claims(token).unwrap();
    assert_eq!(claims["sub"], "2");
    assert_eq!(claims["username"], "user2");
    for name in ["iat", "nbf", "exp", "jti"] {
        assert!(claims.get(name).is_some(), "{alg:?}: claim {name} missing");
    }

    let reply = server.protected(token).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{alg:?} protected: {}",
        reply.text()
    );
    assert_eq!(
        reply.json(),
        serde_json::json!({ "id": 2, "username": "user2" })
    );

    let jwks = server.get("/.well-known/jwks.json", &[]).await;
    if key_files(alg).is_some() {
        assert_eq!(jwks.status, StatusCode::OK);
        let keys = jwks.json()["keys"].as_array().unwrap().clone();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["kid"].as_str(), header.kid.as_deref());
        assert!(keys[0].get("d").is_none(), "private part published");
    } else {
        assert_eq!(jwks.status, StatusCode::NOT_FOUND);
        assert!(!jwks.text().contains(SECRET));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_and_protected_round_trip_for_every_algorithm() {
    for name in SERVERS {
        for alg in ALL_ALGORITHMS {
            let server = Server::start(name, &env_for(alg));
            round_trip(&server, alg).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_minted_by_hand_are_accepted() {
    for name in SERVERS {
        for alg in [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::PS384,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ] {
            let server = Server::start(name, &env_for(alg));
            let key = encoding_key(alg);
            // No kid, "typ": "JWT", the four claims any library would mint.
            let token = hand_token(
                &serde_json::json!({"alg": format!("{alg:?}"), "typ": "JWT"}),
                &standard_claims(),
                &key,
                alg,
            );
            let reply = server.protected(&token).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{name} {alg:?}: {}",
                reply.text()
            );
            assert_eq!(
                reply.json(),
                serde_json::json!({ "id": 1, "username": "user1" })
            );
            // jsonwebtoken's own encoder (a different code path from the crate's issuer).
            let token = jsonwebtoken::encode(&Header::new(alg), &standard_claims(), &key).unwrap();
            assert_eq!(
                server.protected(&token).await.status,
                StatusCode::OK,
                "{name} {alg:?} encode"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn issuer_and_audience_are_issued_and_required() {
    for name in SERVERS {
        let mut env = env_for(Algorithm::HS256);
        env.push(("JWT_ISSUER".into(), "https://issuer.test".into()));
        env.push(("JWT_AUDIENCE".into(), "demo-api".into()));
        let server = Server::start(name, &env);
        let token = server.token().await;
        let claims: serde_json::Value =
            jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
        assert_eq!(claims["iss"], "https://issuer.test");
        assert_eq!(claims["aud"], "demo-api");
        assert_eq!(server.protected(&token).await.status, StatusCode::OK);

        let key = encoding_key(Algorithm::HS256);
        let with = |extra: serde_json::Value| {
            let mut c = standard_claims();
            c.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &c, &key).unwrap()
        };
        let good = with(serde_json::json!({"iss": "https://issuer.test", "aud": "demo-api"}));
        assert_eq!(
            server.protected(&good).await.status,
            StatusCode::OK,
            "{name}"
        );
        let aud_list =
            with(serde_json::json!({"iss": "https://issuer.test", "aud": ["x", "demo-api"]}));
        assert_eq!(
            server.protected(&aud_list).await.status,
            StatusCode::OK,
            "{name}"
        );
        for (what, claims) in [
            ("missing iss", serde_json::json!({"aud": "demo-api"})),
            (
                "missing aud",
                serde_json::json!({"iss": "https://issuer.test"}),
            ),
            (
                "wrong iss",
                serde_json::json!({"iss": "https://evil.test", "aud": "demo-api"}),
            ),
            (
                "wrong aud",
                serde_json::json!({"iss": "https://issuer.test", "aud": "other"}),
            ),
            (
                "iss as number",
                serde_json::json!({"iss": 5, "aud": "demo-api"}),
            ),
        ] {
            server
                .protected(&with(claims))
                .await
                .assert_unauthorized(&format!("{name} {what}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_rejects_bad_requests_with_json_errors() {
    for name in SERVERS {
        let server = Server::start(name, &env_for(Algorithm::HS256));
        let json = Some("application/json");
        let cases: Vec<(&str, Option<&str>, String, StatusCode)> = vec![
            (
                "malformed JSON",
                json,
                "{\"username\":".into(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "not an object",
                json,
                "[\"user1\",\"password1\"]".into(),
                StatusCode::BAD_REQUEST,
            ),
            ("string", json, "\"user1\"".into(), StatusCode::BAD_REQUEST),
            ("empty body", json, String::new(), StatusCode::BAD_REQUEST),
            (
                "missing password",
                json,
                r#"{"username":"user1"}"#.into(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "missing username",
                json,
                r#"{"password":"password1"}"#.into(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "numeric username",
                json,
                r#"{"username":1,"password":"password1"}"#.into(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "null password",
                json,
                r#"{"username":"user1","password":null}"#.into(),
                StatusCode::BAD_REQUEST,
            ),
            (
                "form body",
                Some("application/x-www-form-urlencoded"),
                "username=user1&password=password1".into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                "text body",
                Some("text/plain"),
                r#"{"username":"user1","password":"password1"}"#.into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                "no content type",
                None,
                r#"{"username":"user1","password":"password1"}"#.into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                "huge body",
                json,
                format!(
                    r#"{{"username":"user1","password":"{}"}}"#,
                    "p".repeat(1 << 20)
                ),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                "wrong password",
                json,
                r#"{"username":"user1","password":"password2"}"#.into(),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "unknown user",
                json,
                r#"{"username":"mallory","password":"password1"}"#.into(),
                StatusCode::UNAUTHORIZED,
            ),
        ];
        for (what, ctype, body, status) in cases {
            let reply = server.post("/login", ctype, body).await;
            assert_eq!(reply.status, status, "{name} {what}: {}", reply.text());
            assert!(
                reply.json()["error"].is_string(),
                "{name} {what}: {}",
                reply.text()
            );
        }
        let wrong = server.login("user1", "nope").await;
        let unknown = server.login("nobody", "nope").await;
        assert_eq!(
            wrong.body, unknown.body,
            "{name}: bodies must not reveal which users exist"
        );
        for method in ["GET", "PUT", "DELETE"] {
            let req = http::Request::builder()
                .method(method)
                .uri(server.url("/login"))
                .body(Default::default())
                .unwrap();
            let reply = server.send(req).await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{name} {method}"
            );
        }
        assert_eq!(server.get("/health", &[]).await.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn protected_without_token_gets_a_bare_challenge_and_health_is_open() {
    for name in SERVERS {
        let server = Server::start(name, &env_for(Algorithm::HS256));
        let reply = server.get("/protected", &[]).await;
        reply.assert_unauthorized(name);
        assert!(
            !reply.challenge().contains("error="),
            "{name}: {}",
            reply.challenge()
        );
        let basic = server
            .get(
                "/protected",
                &[("authorization", "Basic dXNlcjE6cGFzc3dvcmQx")],
            )
            .await;
        basic.assert_unauthorized(name);
        assert!(!basic.challenge().contains("error="));
        let health = server.get("/health", &[]).await;
        assert_eq!(health.status, StatusCode::OK, "{name}");
        assert_eq!(
            server.get("/no-such-path", &[]).await.status,
            StatusCode::NOT_FOUND,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grpc_content_type_over_http1_gets_401_and_rejections_are_not_stored() {
    for name in SERVERS {
        let server = Server::start(name, &env_for(Algorithm::HS256));
        for content_type in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpcXYZ",
        ] {
            let reply = server
                .get("/protected", &[("content-type", content_type)])
                .await;
            reply.assert_unauthorized(&format!("{name} {content_type}"));
            assert!(!reply.headers.contains_key("grpc-status"), "{name}");
            assert_eq!(reply.headers["cache-control"], "no-store", "{name}");
        }
        let bad = server.protected("not.a.token").await;
        assert_eq!(bad.headers["cache-control"], "no-store", "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_scheme_is_case_insensitive_and_malformed_credentials_are_400() {
    for name in SERVERS {
        let server = Server::start(name, &env_for(Algorithm::HS256));
        let token = server.token().await;
        let lower = server
            .get(
                "/protected",
                &[("authorization", &format!("bearer {token}"))],
            )
            .await;
        assert_eq!(lower.status, StatusCode::OK, "{name}");
        let two = server
            .get(
                "/protected",
                &[("authorization", &format!("Bearer {token} {token}"))],
            )
            .await;
        assert_eq!(two.status, StatusCode::BAD_REQUEST, "{name}");
        assert!(two.challenge().contains("invalid_request"), "{name}");
        let req = http::Request::get(server.url("/protected"))
            .header("authorization", format!("Bearer {token}"))
            .header("authorization", format!("Bearer {token}"))
            .body(Default::default())
            .unwrap();
        assert_eq!(
            server.send(req).await.status,
            StatusCode::BAD_REQUEST,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_secret_still_starts_the_demo() {
    for name in SERVERS {
        let env = vec![
            ("JWT_ALGORITHM".to_owned(), "HS256".to_owned()),
            ("JWT_SECRET".to_owned(), "secret".to_owned()),
        ];
        let server = Server::start(name, &env);
        let token = server.token().await;
        assert_eq!(
            server.protected(&token).await.status,
            StatusCode::OK,
            "{name}"
        );
        let mine = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &standard_claims(),
            &jsonwebtoken::EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert_eq!(
            server.protected(&mine).await.status,
            StatusCode::OK,
            "{name}"
        );
    }
}
