//! The verify-only root: what its layers carry (with DPoP, so only with that feature).

use http::{Method, Request, StatusCode};
use tower::{Layer, ServiceExt};

use super::ResourceServer;
use crate::dpop::{Dpop, DpopKey};
use crate::keys::{KeySet, SigningKey};
use crate::login::TokenIssuer;
use crate::validation::Validation;
use crate::verifier::Verifier;
use jsonwebtoken::Algorithm;

fn key() -> SigningKey {
    SigningKey::from_secret(Algorithm::HS256, [9u8; 32]).unwrap()
}

async fn status(
    api: &ResourceServer,
    authorization: String,
    proof: Option<String>,
) -> (StatusCode, Vec<String>) {
    let svc =
        api.layer::<serde_json::Value>()
            .layer(tower::service_fn(|_req: Request<()>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
            }));
    let mut req = Request::get("/orders").header("authorization", authorization);
    if let Some(proof) = proof {
        req = req.header("dpop", proof);
    }
    let res = svc.oneshot(req.body(()).unwrap()).await.unwrap();
    let challenges = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    (res.status(), challenges)
}

/// `ResourceServerBuilder::dpop`: a bound token passes with a proof from its key, never as a
/// bearer token, and the challenge offers DPoP; the RFC 9728 challenge stays.
#[tokio::test]
async fn a_dpop_resource_server_takes_bound_tokens_with_their_proof() {
    let verifier = Verifier::new(
        KeySet::from(key().verifying_key().unwrap()),
        Validation::new(),
    )
    .unwrap();
    let api = ResourceServer::builder(verifier)
        .public_url("https://api.example")
        .dpop(Dpop::new("https://api.example").unwrap())
        .build()
        .await
        .unwrap();
    let client = DpopKey::new(
        SigningKey::from_pem(
            Algorithm::ES256,
            include_bytes!("../../tests/keys/ec256_private.pem"),
        )
        .unwrap(),
    )
    .unwrap();
    let token = TokenIssuer::new(key())
        .issue(&serde_json::json!({"sub": "1", "cnf": {"jkt": client.jkt()}}))
        .unwrap();
    let token = token.access_token();
    let proof = || {
        client
            .proof(
                &Method::GET,
                "https://api.example/orders",
                Some(token),
                None,
            )
            .unwrap()
    };
    let (ok, _) = status(&api, format!("DPoP {token}"), Some(proof())).await;
    assert_eq!(ok, StatusCode::OK);
    let (bearer, challenges) = status(&api, format!("Bearer {token}"), Some(proof())).await;
    assert_eq!(bearer, StatusCode::UNAUTHORIZED);
    assert!(
        challenges.iter().any(|c| c.starts_with("DPoP ")),
        "{challenges:?}"
    );
    assert!(
        challenges[0].contains(
            "resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\""
        ),
        "{challenges:?}"
    );
    let (no_proof, _) = status(&api, format!("DPoP {token}"), None).await;
    assert_eq!(no_proof, StatusCode::UNAUTHORIZED);
}
