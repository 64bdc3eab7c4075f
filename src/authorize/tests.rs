//! Unit tests of `authorize`.

use std::convert::Infallible;

use http::StatusCode;
use http::header::WWW_AUTHENTICATE;
use tower::{ServiceBuilder, ServiceExt};
use tower_test::mock;

use super::*;
use crate::claims::RegisteredClaims;

fn claims(json: &str) -> Claims<()> {
    let registered: RegisteredClaims = serde_json::from_str(json).unwrap();
    Claims::new((), registered)
}

async fn run<P>(layer: AuthorizeLayer<(), P>, claims: Option<Claims<()>>) -> Response<()>
where
    P: ClaimsCheck<()> + Clone,
{
    let mut req = Request::new(());
    if let Some(c) = claims {
        req.extensions_mut().insert(c);
    }
    ServiceBuilder::new()
        .layer(layer)
        .service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(())) })
        .oneshot(req)
        .await
        .unwrap()
}

#[tokio::test]
async fn scope_present_passes() {
    let res = run(require_scope("a b"), Some(claims(r#"{"scope":"b c a"}"#))).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_scope_is_403_with_scope_in_challenge() {
    let res = run(require_scope("a  b"), Some(claims(r#"{"scp":["a"]}"#))).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let challenge = res.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="a b""#), "{challenge}");
}

#[tokio::test]
async fn any_and_all_roles() {
    let c = || Some(claims(r#"{"roles":["ops"]}"#));
    assert_eq!(
        run(require_any_role(["dev", "ops"]), c()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        run(require_all_roles(["dev", "ops"]), c()).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_role_name_with_a_space_is_not_split_into_roles() {
    let c = || Some(claims(r#"{"roles":"Helpdesk Admin"}"#));
    assert_eq!(
        run(require_any_role(["Admin"]), c()).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        run(require_any_role(["Helpdesk Admin"]), c())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn predicate_decides() {
    let layer = authorize(|c: &Claims<()>| c.registered().sub.as_deref() == Some("1"));
    assert_eq!(
        run(layer.clone(), Some(claims(r#"{"sub":"1"}"#)))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        run(layer, Some(claims(r#"{"sub":"2"}"#))).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn no_claims_is_401() {
    let res = run(require_scope("a"), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn poll_ready_is_forwarded_to_inner() {
    let (mut svc, mut handle) =
        mock::spawn_layer::<Request<()>, Response<()>, _>(require_scope::<()>("a"));
    handle.allow(0);
    assert!(svc.poll_ready().is_pending());
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
}

#[test]
fn layer_service_and_future_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<AuthorizeLayer<(), RequireScope>>();
    assert_send_sync::<
        Authorize<
            tower::util::BoxCloneSyncService<Request<()>, Response<()>, Infallible>,
            (),
            RequireScope,
        >,
    >();
    assert_send::<ResponseFuture<std::future::Ready<Result<Response<()>, Infallible>>, ()>>();
}

#[tokio::test]
async fn step_up_needs_a_recent_login() {
    let now = crate::time::unix_now();
    let layer = || require_recent_auth::<()>(std::time::Duration::from_secs(300));
    let fresh = format!(r#"{{"auth_time":{}}}"#, now - 10);
    assert_eq!(
        run(layer(), Some(claims(&fresh))).await.status(),
        StatusCode::OK
    );
    for stale in [format!(r#"{{"auth_time":{}}}"#, now - 301), "{}".to_owned()] {
        let res = run(layer(), Some(claims(&stale))).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{stale}");
        let challenge = res.headers()[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.contains(r#"error="insufficient_user_authentication""#),
            "{challenge}"
        );
        assert!(challenge.ends_with(r#"max_age="300""#), "{challenge}");
    }
}

#[tokio::test]
async fn step_up_by_acr() {
    let layer = || require_acr::<(), _>(["mfa", "hwk"]);
    let res = run(layer(), Some(claims(r#"{"acr":"hwk"}"#))).await;
    assert_eq!(res.status(), StatusCode::OK);
    for weak in [r#"{"acr":"pwd"}"#, "{}"] {
        let res = run(layer(), Some(claims(weak))).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let challenge = res.headers()[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.ends_with(r#"acr_values="mfa hwk""#),
            "{challenge}"
        );
    }
    // A value that cannot be quoted is checked but not echoed.
    let res = run(require_acr::<(), _>(["a\"b"]), Some(claims("{}"))).await;
    assert!(
        res.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .ends_with(r#"acr_values="""#)
    );
}
