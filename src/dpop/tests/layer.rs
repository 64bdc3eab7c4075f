//! DPoP through `JwtAuthLayer`: bound tokens with their proofs, no downgrade or upgrade, the
//! challenges, and the replay check on cached tokens.

use http::{Request, Response, StatusCode};
use jsonwebtoken::{EncodingKey, Header};
use tower::{ServiceBuilder, ServiceExt};

use super::*;
use crate::auth::JwtAuthLayer;
use crate::keys::KeySet;
use crate::keys::VerifyingKey;
use crate::validation::Validation;
use crate::verifier::Verifier;

const SECRET: [u8; 32] = [b'k'; 32];

fn token(jkt: Option<&str>) -> String {
    let mut claims = json!({"sub": "1", "exp": unix_now() + 60});
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({"jkt": jkt});
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&SECRET),
    )
    .unwrap()
}

fn layer(dpop: Option<Dpop>) -> JwtAuthLayer<Value> {
    let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap());
    let layer = JwtAuthLayer::<Value>::new(Verifier::new(keys, Validation::new()).unwrap());
    match dpop {
        Some(d) => layer.dpop(d),
        None => layer,
    }
}

/// Status and `WWW-Authenticate` values of one request.
async fn call(
    layer: &JwtAuthLayer<Value>,
    authorization: Option<String>,
    proof: Option<String>,
) -> (StatusCode, Vec<String>) {
    let svc =
        ServiceBuilder::new()
            .layer(layer.clone())
            .service_fn(|req: Request<()>| async move {
                assert!(
                    req.extensions()
                        .get::<crate::claims::Claims<Value>>()
                        .is_some()
                );
                Ok::<_, std::convert::Infallible>(Response::new(()))
            });
    let mut req = Request::builder()
        .uri("/protected")
        .header("host", "api.example.com");
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    if let Some(p) = proof {
        req = req.header("dpop", p);
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

fn proof(key: &DpopKey, token: &str) -> String {
    key.proof(
        &Method::GET,
        "http://api.example.com/protected",
        Some(token),
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn a_bound_token_passes_with_a_fresh_proof_only() {
    let key = es256();
    let layer = layer(Some(Dpop::from_request_authority()));
    let t = token(Some(key.jkt()));
    let p = proof(&key, &t);
    let (status, _) = call(&layer, Some(format!("DPoP {t}")), Some(p.clone())).await;
    assert_eq!(status, StatusCode::OK);
    // The cached token still needs a new proof: the same one is a replay.
    let (status, challenges) = call(&layer, Some(format!("DPoP {t}")), Some(p)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert!(challenges[0].starts_with("Bearer realm=\"api\""));
    assert!(!challenges[0].contains("error="));
    assert!(challenges[1].starts_with("DPoP realm=\"api\", error=\"invalid_dpop_proof\""));
    assert!(challenges[1].contains("algs=\"ES256 ES384 EdDSA Ed25519 PS256 RS256 PS384\""));
    // A new proof passes again.
    let (status, _) = call(&layer, Some(format!("DPoP {t}")), Some(proof(&key, &t))).await;
    assert_eq!(status, StatusCode::OK);
    // No proof at all.
    let (status, challenges) = call(&layer, Some(format!("DPoP {t}")), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenges[1].contains("invalid_dpop_proof"));
}

#[tokio::test]
async fn no_downgrade_and_no_upgrade() {
    let key = es256();
    let layer = layer(Some(Dpop::from_request_authority()));
    let bound = token(Some(key.jkt()));
    // A bound token as Bearer, even with a good proof.
    let (status, challenges) = call(
        &layer,
        Some(format!("Bearer {bound}")),
        Some(proof(&key, &bound)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenges[1].contains("error=\"invalid_token\""),
        "{challenges:?}"
    );
    // An unbound token as DPoP.
    let plain = token(None);
    let (status, challenges) = call(
        &layer,
        Some(format!("DPoP {plain}")),
        Some(proof(&key, &plain)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenges[1].contains("error=\"invalid_token\""));
    // A proof from another key than the token's.
    let other = load(Algorithm::EdDSA, "ed25519_private.pem");
    let (status, _) = call(
        &layer,
        Some(format!("DPoP {bound}")),
        Some(proof(&other, &bound)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The unbound token as Bearer is fine while DPoP is only allowed.
    let (status, _) = call(&layer, Some(format!("Bearer {plain}")), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn required_refuses_bearer_tokens_with_a_dpop_challenge() {
    let key = es256();
    let layer = layer(Some(Dpop::from_request_authority().required()));
    let (status, challenges) = call(&layer, Some(format!("Bearer {}", token(None))), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges.len(), 1);
    assert!(challenges[0].starts_with("DPoP realm=\"api\", error=\"invalid_token\""));
    let (status, challenges) = call(&layer, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges,
        [format!(
            "DPoP realm=\"api\", algs=\"{}\"",
            Dpop::from_request_authority().algs()
        )]
    );
    let t = token(Some(key.jkt()));
    let (status, _) = call(&layer, Some(format!("DPoP {t}")), Some(proof(&key, &t))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn without_dpop_a_bound_token_is_never_a_bearer_token() {
    let key = es256();
    let layer = layer(None);
    let bound = token(Some(key.jkt()));
    let (status, challenges) = call(&layer, Some(format!("Bearer {bound}")), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges.len(), 1);
    assert!(challenges[0].starts_with("Bearer"));
    // And the DPoP scheme is not understood at all.
    let (status, _) = call(
        &layer,
        Some(format!("DPoP {bound}")),
        Some(proof(&key, &bound)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_missing_token_gets_both_challenges_when_both_are_accepted() {
    let layer = layer(Some(Dpop::from_request_authority()));
    let (status, challenges) = call(&layer, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges,
        [
            "Bearer realm=\"api\"".to_owned(),
            format!(
                "DPoP realm=\"api\", algs=\"{}\"",
                Dpop::from_request_authority().algs()
            )
        ]
    );
}
