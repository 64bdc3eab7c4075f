//! Unit tests of `refresh`.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::Response;

use super::*;

const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
const JWKS_ROTATED: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k2","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

/// A fetcher that answers from `respond` (called with the fetch number) and counts fetches.
fn fake(
    respond: impl Fn(usize) -> Result<Response<Bytes>, BoxError> + Send + Sync + 'static,
) -> (Fetcher, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    let respond = Arc::new(respond);
    let fetcher: Fetcher = Arc::new(move |_uri, _limit| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let respond = Arc::clone(&respond);
        Box::pin(async move {
            // A fetch takes a little (virtual) time, so concurrent callers overlap.
            tokio::time::sleep(Duration::from_millis(50)).await;
            respond(n)
        })
    });
    (fetcher, count)
}

fn ok(body: &'static str, cache_control: Option<&'static str>) -> Response<Bytes> {
    let mut res = Response::new(Bytes::from_static(body.as_bytes()));
    if let Some(cc) = cache_control {
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(cc));
    }
    res
}

fn limits() -> Limits {
    Limits {
        cooldown: Duration::from_secs(5),
        min_refresh: Duration::from_secs(60),
        max_refresh: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
        max_size: 64 * 1024,
        max_stale: Duration::from_secs(24 * 3600),
    }
}

fn refresher(fetcher: Fetcher) -> Arc<Refresher> {
    Arc::new(Refresher::new(
        Uri::from_static("https://issuer.example/jwks"),
        fetcher,
        limits(),
    ))
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_share_one_fetch() {
    let (fetcher, count) = fake(|_| Ok(ok(JWKS, None)));
    let r = refresher(fetcher);
    let futures: Vec<_> = (0..20)
        .filter_map(|_| r.refresh(Algorithm::EdDSA, Some("k1")))
        .collect();
    assert_eq!(
        futures.len(),
        20,
        "every caller joins the refresh in flight"
    );
    for future in futures {
        assert_eq!(future.await.unwrap().len(), 1);
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_second_refresh_waits_for_the_cooldown() {
    let (fetcher, count) = fake(|_| Ok(ok(JWKS, None)));
    let r = refresher(fetcher);
    r.refresh(Algorithm::EdDSA, Some("k1")).unwrap().await;
    assert!(
        r.refresh(Algorithm::EdDSA, Some("k2")).is_none(),
        "within the cooldown"
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    let after = r
        .refresh(Algorithm::EdDSA, Some("k3"))
        .expect("after the cooldown");
    after.await;
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_kid_still_unknown_after_a_refresh_is_answered_at_once_for_a_while() {
    let (fetcher, count) = fake(|_| Ok(ok(JWKS, None)));
    let r = refresher(fetcher);
    assert!(
        r.refresh(Algorithm::EdDSA, Some("nope"))
            .unwrap()
            .await
            .is_some()
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(
        r.refresh(Algorithm::EdDSA, Some("nope")).is_none(),
        "negatively cached"
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    let again = r
        .refresh(Algorithm::EdDSA, Some("nope"))
        .expect("the negative entry expired");
    again.await;
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn the_background_refresh_follows_max_age_within_bounds() {
    let (fetcher, count) = fake(|_| Ok(ok(JWKS, Some("public, max-age=120"))));
    let r = refresher(fetcher);
    tokio::spawn(background(Arc::downgrade(&r)));
    assert!(r.wait_for_keys(Duration::from_secs(1)).await);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(119)).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_last_good_set_and_backs_off() {
    let (fetcher, count) = fake(|n| {
        if n == 0 {
            Ok(ok(JWKS, Some("max-age=60")))
        } else {
            Err("connection refused".into())
        }
    });
    let r = refresher(fetcher);
    tokio::spawn(background(Arc::downgrade(&r)));
    assert!(r.wait_for_keys(Duration::from_secs(1)).await);
    let first = r.current().unwrap();
    // Fetches at 60 s (fails), then 1 s, 2 s, 4 s later.
    tokio::time::sleep(Duration::from_secs(60 + 1 + 2 + 4) + Duration::from_millis(500)).await;
    assert_eq!(count.load(Ordering::SeqCst), 5);
    assert!(Arc::ptr_eq(&first, &r.current().unwrap()));
}

#[tokio::test(start_paused = true)]
async fn the_background_task_ends_with_the_source() {
    let (fetcher, count) = fake(|_| Ok(ok(JWKS, Some("max-age=60"))));
    let r = refresher(fetcher);
    let task = tokio::spawn(background(Arc::downgrade(&r)));
    assert!(r.wait_for_keys(Duration::from_secs(1)).await);
    drop(r);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert!(task.is_finished());
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_alg_or_a_missing_kid_is_remembered_like_an_unknown_kid() {
    let (fetcher, count) = fake(|_| Ok(ok(JWKS, None)));
    let r = refresher(fetcher);
    // k1 exists, but as an EdDSA key: an RS256 lookup for it is not answered.
    assert!(
        r.refresh(Algorithm::RS256, Some("k1"))
            .unwrap()
            .await
            .is_some()
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(r.refresh(Algorithm::RS256, Some("k1")).is_none());
    let none = r.refresh(Algorithm::ES256, None).expect("a new lookup");
    none.await;
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(r.refresh(Algorithm::ES256, None).is_none());
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_document_keeps_the_same_key_set() {
    let (fetcher, _count) = fake(|n| {
        Ok(if n < 2 {
            ok(JWKS, Some("max-age=60"))
        } else {
            ok(JWKS_ROTATED, Some("max-age=60"))
        })
    });
    let r = refresher(fetcher);
    tokio::spawn(background(Arc::downgrade(&r)));
    assert!(r.wait_for_keys(Duration::from_secs(1)).await);
    let first = r.current().unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert!(Arc::ptr_eq(&first, &r.current().unwrap()), "same document");
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert!(!Arc::ptr_eq(&first, &r.current().unwrap()), "a rotation");
}

#[tokio::test(start_paused = true)]
async fn the_last_good_set_stops_verifying_after_the_maximum_stale_age() {
    let (fetcher, count) = fake(|n| {
        if n == 0 || n > 40 {
            Ok(ok(JWKS, Some("max-age=60")))
        } else {
            Err("the identity provider is down".into())
        }
    });
    let mut limits = limits();
    limits.max_stale = Duration::from_secs(3600);
    let r = Arc::new(Refresher::new(
        Uri::from_static("https://issuer.example/jwks"),
        fetcher,
        limits,
    ));
    tokio::spawn(background(Arc::downgrade(&r)));
    assert!(r.wait_for_keys(Duration::from_secs(1)).await);
    tokio::time::sleep(Duration::from_secs(1800)).await;
    assert!(r.current().is_some(), "stale but within the limit");
    tokio::time::sleep(Duration::from_secs(2400)).await;
    assert!(r.current().is_none(), "too stale: 503");
    // The endpoint comes back: the set is fetched again.
    while count.load(Ordering::SeqCst) <= 41 {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    assert!(r.wait_for_keys(Duration::from_secs(400)).await);
}

#[test]
fn the_negative_cache_is_bounded_in_bytes_as_well_as_entries() {
    let (fetcher, _count) = fake(|_| Ok(ok(JWKS, None)));
    let r = refresher(fetcher);
    let long = "k".repeat(8 * 1024);
    for i in 0..200 {
        r.remember_unknown((Algorithm::EdDSA, Some(format!("{long}{i}").into())));
        let state = r.state.lock().unwrap();
        assert!(
            state.unknown_bytes <= NEGATIVE_CACHE_BYTES,
            "{}",
            state.unknown_bytes
        );
        assert!(
            state.unknown.len() < 200,
            "long kids never pile up to the entry bound"
        );
    }
    for i in 0..(NEGATIVE_CACHE_LIMIT + 10) {
        r.remember_unknown((Algorithm::EdDSA, Some(format!("{i}").into())));
    }
    assert!(r.state.lock().unwrap().unknown.len() <= NEGATIVE_CACHE_LIMIT);
}

#[test]
fn max_age_is_read() {
    let v = |s: &'static str| Some(HeaderValue::from_static(s));
    assert_eq!(
        max_age(v("public, max-age=120").as_ref()),
        Some(Duration::from_secs(120))
    );
    assert_eq!(max_age(v("no-store").as_ref()), Some(Duration::ZERO));
    assert_eq!(max_age(v("public").as_ref()), None);
    assert_eq!(max_age(None), None);
}
