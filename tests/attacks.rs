//! The well-known JWT attacks, sent over real HTTP to both demo servers. Every one must get a
//! 401 with a Bearer challenge (or another 4xx where noted), and the server must stay up.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

fn header(alg: &str) -> serde_json::Value {
    json!({ "alg": alg, "typ": "JWT" })
}

/// A token whose signature is made by hand over arbitrary header and payload segments.
fn raw(header_seg: &str, payload_seg: &str, signature: &str) -> String {
    format!("{header_seg}.{payload_seg}.{signature}")
}

fn hs256_sig(message: &str, secret: &[u8]) -> String {
    jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap()
}

/// Attacks on a server using `alg` with the test keys.
fn attack_tokens(alg: Algorithm) -> Vec<(String, String)> {
    let key = encoding_key(alg);
    let alg_name = format!("{alg:?}");
    let claims = standard_claims();
    let good = hand_token(&header(&alg_name), &claims, &key, alg);
    let parts: Vec<&str> = good.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    let mut t: Vec<(String, String)> = Vec::new();

    for none in ["none", "None", "NONE", "nOnE"] {
        let hs = b64_json(&header(none));
        t.push((format!("alg {none}, empty signature"), raw(&hs, p, "")));
        t.push((format!("alg {none}, original signature"), raw(&hs, p, s)));
    }
    t.push((
        "alg missing".into(),
        raw(&b64_json(&json!({"typ": "JWT"})), p, s),
    ));
    t.push((
        "alg null".into(),
        raw(&b64_json(&json!({"alg": null})), p, s),
    ));
    t.push((
        "alg unknown".into(),
        raw(&b64_json(&header("HS1024")), p, s),
    ));

    // Algorithm confusion: HMAC "signed" with the server's public key.
    if let Some((_, public)) = key_files(alg) {
        let pem = read_key(public);
        let message = format!("{}.{p}", b64_json(&header("HS256")));
        t.push((
            "HS256 signed with the public key PEM".into(),
            format!("{message}.{}", hs256_sig(&message, &pem)),
        ));
        let trimmed: Vec<u8> = pem.iter().copied().filter(|b| *b != b'\n').collect();
        t.push((
            "HS256 signed with the public key, no newlines".into(),
            format!("{message}.{}", hs256_sig(&message, &trimmed)),
        ));
    }
    // Algorithm switch within the server's family is still pinned.
    let other = if alg == Algorithm::HS256 {
        Algorithm::HS512
    } else {
        Algorithm::HS256
    };
    let other_key = EncodingKey::from_secret(SECRET.as_bytes());
    t.push((
        format!("alg switched to {other:?}"),
        hand_token(&header(&format!("{other:?}")), &claims, &other_key, other),
    ));

    // Keys offered in the header: signed with the attacker's own RSA key.
    let attacker = EncodingKey::from_rsa_pem(&read_key("rsa2_private.pem")).unwrap();
    // The attacker's real public key as a JWK, and a real self-signed certificate of it: a
    // verifier that trusted either would accept these tokens.
    let attacker_jwk = serde_json::to_value(
        jsonwebtoken::jwk::Jwk::from_encoding_key(&attacker, Algorithm::RS256).unwrap(),
    )
    .unwrap();
    assert_eq!(attacker_jwk["kty"], "RSA");
    assert!(
        attacker_jwk["n"].as_str().unwrap().len() >= 342,
        "a 2048-bit modulus"
    );
    t.push((
        "embedded jwk".into(),
        hand_token(
            &json!({"alg": "RS256", "jwk": attacker_jwk}),
            &claims,
            &attacker,
            Algorithm::RS256,
        ),
    ));
    let cert_pem = String::from_utf8(read_key("rsa2_attacker_cert.pem")).unwrap();
    let cert_der: String = cert_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(cert_der.len() > 1000, "a whole certificate");
    t.push((
        "embedded x5c".into(),
        hand_token(
            &json!({"alg": "RS256", "x5c": [cert_der]}),
            &claims,
            &attacker,
            Algorithm::RS256,
        ),
    ));
    t.push((
        "foreign RSA signature".into(),
        hand_token(&header("RS256"), &claims, &attacker, Algorithm::RS256),
    ));

    // kid injection: paths, SQL, huge and odd kids, each HMAC-signed with an empty or guessable key.
    for kid in [
        "../../../../../../dev/null",
        "' OR '1'='1",
        "/proc/self/environ",
        "\u{0000}",
        &"k".repeat(4000),
    ] {
        let hdr = json!({"alg": "HS256", "kid": kid});
        let message = format!("{}.{p}", b64_json(&hdr));
        t.push((
            format!("kid injection {:.20}", kid.escape_debug()),
            format!("{message}.{}", hs256_sig(&message, b"")),
        ));
    }
    t.push((
        "kid as number".into(),
        hand_token(&json!({"alg": alg_name, "kid": 5}), &claims, &key, alg),
    ));
    t.push((
        "crit header".into(),
        hand_token(
            &json!({"alg": alg_name, "crit": ["exp"], "exp": 1}),
            &claims,
            &key,
            alg,
        ),
    ));

    // Shapes serde would accept but RFC 7515 / 7519 do not: correctly signed, so only the
    // parsing can reject them.
    t.push((
        "header is a JSON array".into(),
        hand_token(&json!([alg_name]), &claims, &key, alg),
    ));
    for crit in [json!(null), json!([]), json!("exp"), json!({})] {
        t.push((
            format!("crit {crit}"),
            hand_token(&json!({"alg": alg_name, "crit": crit}), &claims, &key, alg),
        ));
    }
    t.push((
        "claims are a JSON array".into(),
        hand_token(
            &header(&alg_name),
            &json!([null, "1", [], now() + 600, null, null, null]),
            &key,
            alg,
        ),
    ));
    t.push(("duplicate alg in the header".into(), {
        let message = format!(
            "{}.{}",
            b64(format!(r#"{{"alg":"{alg_name}","alg":"none"}}"#).as_bytes()),
            b64_json(&claims)
        );
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg).unwrap();
        format!("{message}.{signature}")
    }));

    // Tampering.
    let mut tampered = claims.clone();
    tampered["username"] = json!("admin");
    tampered["sub"] = json!("0");
    t.push(("tampered payload".into(), raw(h, &b64_json(&tampered), s)));
    t.push(("stripped signature".into(), raw(h, p, "")));
    t.push(("signature of another token".into(), {
        let other = hand_token(&header(&alg_name), &tampered, &key, alg);
        raw(h, p, other.rsplit('.').next().unwrap())
    }));
    let mut flipped: Vec<u8> = s.bytes().collect();
    flipped[2] = if flipped[2] == b'A' { b'B' } else { b'A' };
    t.push((
        "one signature character changed".into(),
        raw(h, p, std::str::from_utf8(&flipped).unwrap()),
    ));

    // Time and claim types.
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims.clone();
        f(&mut c);
        hand_token(&header(&alg_name), &c, &key, alg)
    };
    t.push(("expired".into(), with(&|c| c["exp"] = json!(now() - 3600))));
    t.push((
        "expired just past leeway".into(),
        with(&|c| c["exp"] = json!(now() - 120)),
    ));
    t.push((
        "not yet valid".into(),
        with(&|c| c["nbf"] = json!(now() + 3600)),
    ));
    t.push((
        "exp missing".into(),
        with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
    ));
    t.push((
        "exp as string".into(),
        with(&|c| c["exp"] = json!((now() + 600).to_string())),
    ));
    t.push(("exp as bool".into(), with(&|c| c["exp"] = json!(true))));
    t.push(("exp null".into(), with(&|c| c["exp"] = json!(null))));
    t.push(("exp negative".into(), with(&|c| c["exp"] = json!(-1))));
    t.push(("nbf as string".into(), with(&|c| c["nbf"] = json!("0"))));
    t.push(("sub as number".into(), with(&|c| c["sub"] = json!(1))));
    t.push((
        "unexpected aud".into(),
        with(&|c| c["aud"] = json!("somebody-else")),
    ));
    t.push((
        "username missing".into(),
        with(&|c| {
            c.as_object_mut().unwrap().remove("username");
        }),
    ));
    t.push(("duplicate exp".into(), {
        let payload = format!(
            r#"{{"sub":"1","username":"user1","exp":{},"exp":{}}}"#,
            now() + 600,
            now() - 600
        );
        let message = format!(
            "{}.{}",
            b64_json(&header(&alg_name)),
            b64(payload.as_bytes())
        );
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg).unwrap();
        format!("{message}.{sig}")
    }));

    // Shape.
    t.push(("truncated".into(), good[..good.len() / 2].to_owned()));
    t.push((
        "truncated signature".into(),
        good[..good.len() - 5].to_owned(),
    ));
    t.push(("four segments".into(), format!("{good}.{s}")));
    t.push(("five segments".into(), format!("{h}.{p}.{s}.{s}.{s}")));
    t.push(("two segments".into(), format!("{h}.{p}")));
    t.push(("one segment".into(), h.to_owned()));
    t.push(("only dots".into(), "..".into()));
    t.push(("padding".into(), format!("{h}=.{p}==.{s}")));
    t.push((
        "standard base64 alphabet".into(),
        format!(
            "{}.{}.{}",
            h.replace('-', "+"),
            p.replace('_', "/"),
            s.replace('_', "/").replace('-', "+") + "+/"
        ),
    ));
    t.push((
        "characters outside base64url".into(),
        format!("{h}.{p}!.{s}"),
    ));
    t.push(("non-ASCII".into(), format!("{h}.{p}é.{s}")));
    for (what, seg) in [
        ("array", "[]"),
        ("number", "123"),
        ("string", "\"x\""),
        ("null", "null"),
        ("not JSON", "{"),
    ] {
        t.push((format!("header is {what}"), raw(&b64(seg.as_bytes()), p, s)));
        let message = format!("{h}.{}", b64(seg.as_bytes()));
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg).unwrap();
        t.push((
            format!("payload is {what} (validly signed)"),
            format!("{message}.{sig}"),
        ));
    }
    t
}

/// ECDSA signatures with zero or out-of-range r and s.
fn ecdsa_tokens(alg: Algorithm, size: usize) -> Vec<(String, String)> {
    let message = format!(
        "{}.{}",
        b64_json(&header(&format!("{alg:?}"))),
        b64_json(&standard_claims())
    );
    let order: Vec<u8> = if size == 32 {
        hex("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551")
    } else {
        hex(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        )
    };
    let one = {
        let mut v = vec![0u8; size];
        v[size - 1] = 1;
        v
    };
    let zero = vec![0u8; size];
    let ff = vec![0xffu8; size];
    let mut t = Vec::new();
    for (what, r, s) in [
        ("r = s = 0", &zero, &zero),
        ("r = 0", &zero, &one),
        ("s = 0", &one, &zero),
        ("r = s = n", &order, &order),
        ("r = n, s = 1", &order, &one),
        ("r = s = 2^k - 1", &ff, &ff),
    ] {
        let sig = [r.as_slice(), s.as_slice()].concat();
        t.push((format!("ECDSA {what}"), format!("{message}.{}", b64(&sig))));
    }
    t.push((
        "ECDSA signature too short".into(),
        format!("{message}.{}", b64(&[1u8; 8])),
    ));
    t.push((
        "ECDSA DER signature".into(),
        format!(
            "{message}.{}",
            b64(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01])
        ),
    ));
    t
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

async fn run_attacks(name: &str, alg: Algorithm, extra: Vec<(String, String)>) {
    let mut server = Server::start(name, &env_for(alg));
    // Sanity: the genuine token is accepted, so rejections below are meaningful.
    let good = hand_token(
        &header(&format!("{alg:?}")),
        &standard_claims(),
        &encoding_key(alg),
        alg,
    );
    assert_eq!(
        server.protected(&good).await.status,
        StatusCode::OK,
        "{name} {alg:?} genuine token"
    );
    for (what, token) in attack_tokens(alg).into_iter().chain(extra) {
        let reply = server.protected(&token).await;
        reply.assert_unauthorized(&format!("{name} {alg:?}: {what}"));
        assert!(!reply.challenge().contains(&token), "the token is echoed");
        if what == "username missing" {
            // Named, so the caller knows what its token lacks (never a claim's value).
            assert!(
                reply.challenge().contains("`username` is missing"),
                "{name} {alg:?}: {}",
                reply.challenge()
            );
        }
    }
    assert!(server.is_running(), "{name} {alg:?} died");
    assert_eq!(server.get("/health", &[]).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn attacks_on_hs256() {
    for name in SERVERS {
        run_attacks(name, Algorithm::HS256, vec![]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn attacks_on_rs256() {
    for name in SERVERS {
        run_attacks(name, Algorithm::RS256, vec![]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn attacks_on_es256_including_bad_ecdsa_signatures() {
    for name in SERVERS {
        run_attacks(name, Algorithm::ES256, ecdsa_tokens(Algorithm::ES256, 32)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn attacks_on_es384_including_bad_ecdsa_signatures() {
    run_attacks(
        "axum_server",
        Algorithm::ES384,
        ecdsa_tokens(Algorithm::ES384, 48),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn attacks_on_eddsa() {
    for name in SERVERS {
        run_attacks(name, Algorithm::EdDSA, vec![]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn key_urls_in_the_header_are_never_fetched() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let accept = tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let attacker = EncodingKey::from_rsa_pem(&read_key("rsa2_private.pem")).unwrap();
    for name in SERVERS {
        let server = Server::start(name, &env_for(Algorithm::RS256));
        for field in ["jku", "x5u"] {
            let token = hand_token(
                &json!({"alg": "RS256", field: url, "kid": "attacker"}),
                &standard_claims(),
                &attacker,
                Algorithm::RS256,
            );
            server
                .protected(&token)
                .await
                .assert_unauthorized(&format!("{name} {field}"));
        }
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a key URL from a token header was fetched"
    );
    accept.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_tokens_get_a_4xx_and_the_server_stays_up() {
    for name in SERVERS {
        let mut server = Server::start(name, &env_for(Algorithm::HS256));
        for len in [8 * 1024 + 1, 20_000, 100_000] {
            let token = "a".repeat(len);
            let reply = server.protected(&token).await;
            assert!(
                reply.status.is_client_error(),
                "{name} {len}: {}",
                reply.status
            );
            // A realistic token shape too: a huge payload that is validly signed.
            let claims = json!({"sub": "1", "username": "x".repeat(len), "exp": now() + 60});
            let big = hand_token(
                &header("HS256"),
                &claims,
                &encoding_key(Algorithm::HS256),
                Algorithm::HS256,
            );
            let reply = server.protected(&big).await;
            assert!(
                reply.status.is_client_error(),
                "{name} signed {len}: {}",
                reply.status
            );
        }
        assert!(server.is_running());
        assert_eq!(server.get("/health", &[]).await.status, StatusCode::OK);
        let token = server.token().await;
        assert_eq!(server.protected(&token).await.status, StatusCode::OK);
    }
}

/// The same attacks in the access cookie of cookie mode (`LOGIN_COOKIES=1`), and the cookie
/// header's own: two different access cookies, a garbled or oversized header, a forged cookie
/// next to a genuine bearer token.
#[tokio::test(flavor = "multi_thread")]
async fn attacks_in_the_access_cookie() {
    const ACCESS: &str = "__Host-access_token";
    let alg = Algorithm::HS256;
    let mut env = env_for(alg);
    env.push(("LOGIN_COOKIES".to_owned(), "1".to_owned()));
    for name in SERVERS {
        let mut server = Server::start(name, &env);
        let with_cookie = |cookie: String| {
            let server = &server;
            async move { server.get("/protected", &[("cookie", &cookie)]).await }
        };
        let good = hand_token(
            &header("HS256"),
            &standard_claims(),
            &encoding_key(alg),
            alg,
        );
        let reply = with_cookie(format!("{ACCESS}={good}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: genuine cookie");
        for (what, token) in attack_tokens(alg) {
            let reply = with_cookie(format!("other=1; {ACCESS}={token}")).await;
            reply.assert_unauthorized(&format!("{name} cookie: {what}"));
            assert!(!reply.challenge().contains(&token), "the token is echoed");
        }
        let forged = hand_token(
            &header("HS256"),
            &standard_claims(),
            &EncodingKey::from_secret(b"not the key"),
            alg,
        );
        for (what, cookie) in [
            (
                "two access cookies",
                format!("{ACCESS}={good}; {ACCESS}={forged}"),
            ),
            ("garbled", format!("{ACCESS}=\"{good}; ;;==; {ACCESS}")),
            ("oversized", format!("{ACCESS}={}", "a".repeat(100_000))),
        ] {
            let reply = with_cookie(cookie).await;
            assert!(
                reply.status.is_client_error(),
                "{name} {what}: {}",
                reply.status
            );
        }
        // A genuine bearer token wins over a forged cookie beside it.
        let reply = server
            .get(
                "/protected",
                &[
                    ("authorization", &format!("Bearer {good}")),
                    ("cookie", &format!("{ACCESS}={forged}")),
                ],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{name}: bearer beside a forged cookie"
        );
        assert!(server.is_running(), "{name} died");
        assert_eq!(server.get("/health", &[]).await.status, StatusCode::OK);
    }
}
