//! `PUBLIC_URL` on the demo servers: RFC 9728 metadata, the `resource_metadata` challenge
//! parameter, `PUBLIC_URL` as the default issuer, and the OpenID configuration of the issuing
//! demos. Real processes, real HTTP.

mod common;

use common::{Client, SERVERS, Server, env_for};
use http::StatusCode;
use jsonwebtoken::Algorithm;

fn with(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    for (k, v) in extra {
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env
}

fn payload(token: &str) -> serde_json::Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn public_url_publishes_metadata_and_names_it_in_challenges() {
    let public = "https://api.example.test";
    for name in SERVERS {
        let server = Server::start(
            name,
            &with(env_for(Algorithm::HS256), &[("PUBLIC_URL", public)]),
        );
        let c: &Client = &server;
        let res = c.get("/.well-known/oauth-protected-resource", &[]).await;
        assert_eq!(res.status, StatusCode::OK, "{name}: {}", res.text());
        assert_eq!(res.headers["content-type"], "application/json");
        let doc = res.json();
        // Byte-identical to PUBLIC_URL, naming the issuer (PUBLIC_URL by default).
        assert_eq!(doc["resource"].as_str(), Some(public), "{name}");
        assert_eq!(
            doc["authorization_servers"],
            serde_json::json!([public]),
            "{name}"
        );
        assert_eq!(
            doc["bearer_methods_supported"],
            serde_json::json!(["header"])
        );

        let expected =
            format!("resource_metadata=\"{public}/.well-known/oauth-protected-resource\"");
        let missing = c.get("/protected", &[]).await;
        missing.assert_unauthorized(name);
        assert!(
            missing.challenge().contains(&expected),
            "{}",
            missing.challenge()
        );
        let bad = c.protected("not.a.token").await;
        bad.assert_unauthorized(name);
        assert!(bad.challenge().contains(&expected), "{}", bad.challenge());
        assert!(bad.challenge().contains("error=\"invalid_token\""));

        // PUBLIC_URL is the default issuer: in issued tokens, and required of presented ones.
        let token = c.token().await;
        assert_eq!(payload(&token)["iss"], public);
        assert_eq!(c.protected(&token).await.status, StatusCode::OK);
        assert_eq!(
            c.post("/.well-known/oauth-protected-resource", None, "")
                .await
                .status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}

#[tokio::test]
async fn a_resource_with_a_path_is_served_under_the_inserted_well_known_path() {
    let server = Server::start(
        "axum_server",
        &with(
            env_for(Algorithm::HS256),
            &[
                ("PUBLIC_URL", "https://api.example.test/v1"),
                ("JWT_ISSUER", "https://auth.example.test"),
            ],
        ),
    );
    let res = server
        .get("/.well-known/oauth-protected-resource/v1", &[])
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["resource"], "https://api.example.test/v1");
    assert_eq!(
        res.json()["authorization_servers"],
        serde_json::json!(["https://auth.example.test"])
    );
    assert!(server.get("/protected", &[]).await.challenge().contains(
        "resource_metadata=\"https://api.example.test/.well-known/oauth-protected-resource/v1\""
    ));
}

#[tokio::test]
async fn without_public_url_there_is_no_metadata() {
    let server = Server::start("axum_server", &env_for(Algorithm::HS256));
    assert_eq!(
        server
            .get("/.well-known/oauth-protected-resource", &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        !server
            .get("/protected", &[])
            .await
            .challenge()
            .contains("resource_metadata")
    );
}

#[tokio::test]
async fn issuing_demos_publish_their_openid_configuration() {
    for name in SERVERS {
        // Asymmetric: issuer and jwks_uri, on PUBLIC_URL.
        let server = Server::start(
            name,
            &with(
                env_for(Algorithm::EdDSA),
                &[("PUBLIC_URL", "http://issuer.example.test")],
            ),
        );
        let res = server.get("/.well-known/openid-configuration", &[]).await;
        assert_eq!(res.status, StatusCode::OK, "{name}");
        let doc = res.json();
        assert_eq!(doc["issuer"], "http://issuer.example.test");
        assert_eq!(
            doc["jwks_uri"],
            "http://issuer.example.test/.well-known/jwks.json"
        );

        // Without PUBLIC_URL: the address it listens on, and a jwks_uri that works.
        let server = Server::start(name, &env_for(Algorithm::ES256));
        let doc = server
            .get("/.well-known/openid-configuration", &[])
            .await
            .json();
        let jwks_uri = doc["jwks_uri"].as_str().unwrap();
        assert_eq!(jwks_uri, server.url("/.well-known/jwks.json"), "{name}");
        assert_eq!(doc["issuer"], format!("http://{}", server.addr));

        // HMAC: nothing to publish.
        let server = Server::start(name, &env_for(Algorithm::HS256));
        assert_eq!(
            server
                .get("/.well-known/openid-configuration", &[])
                .await
                .status,
            StatusCode::NOT_FOUND,
            "{name}"
        );
    }
}
