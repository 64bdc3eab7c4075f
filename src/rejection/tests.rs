//! Unit tests of `rejection`.

use super::*;

fn parts(content_type: Option<&str>) -> http::request::Parts {
    parts_over(content_type, Version::HTTP_11)
}

fn parts_over(content_type: Option<&str>, version: Version) -> http::request::Parts {
    let mut req = http::Request::builder().version(version);
    if let Some(c) = content_type {
        req = req.header(CONTENT_TYPE, c);
    }
    req.body(()).unwrap().into_parts().0
}

fn respond(kind: AuthErrorKind) -> Response<()> {
    DefaultOnRejection::new().on_rejection(&AuthError::new(kind), &parts(None))
}

#[test]
fn missing_token_gets_bare_challenge() {
    let res = respond(AuthErrorKind::MissingToken);
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()[WWW_AUTHENTICATE], "Bearer realm=\"api\"");
}

#[test]
fn expired_token_gets_invalid_token_challenge() {
    let res = respond(AuthErrorKind::Expired);
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()[WWW_AUTHENTICATE],
        "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"the token has expired\""
    );
    assert!(res.headers()[WWW_AUTHENTICATE].is_sensitive());
}

#[test]
fn invalid_request_gets_400() {
    let res = respond(AuthErrorKind::InvalidRequest);
    assert_eq!(res.status(), 400);
    assert!(
        res.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_request\"")
    );
}

#[test]
fn forbidden_names_the_scope() {
    let err = AuthError::forbidden(Some("orders:write admin".into()));
    let res: Response<()> = DefaultOnRejection::new().on_rejection(&err, &parts(None));
    assert_eq!(res.status(), 403);
    let challenge = res.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"orders:write admin\""),
        "{challenge}"
    );
}

#[test]
fn grpc_requests_get_a_grpc_status() {
    for (kind, code) in [
        (AuthErrorKind::MissingToken, "16"),
        (AuthErrorKind::Expired, "16"),
        (AuthErrorKind::Forbidden, "7"),
        (AuthErrorKind::KeysUnavailable, "14"),
    ] {
        let res: Response<()> = DefaultOnRejection::new().on_rejection(
            &AuthError::new(kind),
            &parts_over(Some("application/grpc+proto"), Version::HTTP_2),
        );
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()[CONTENT_TYPE], "application/grpc");
        assert_eq!(res.headers()["grpc-status"], code);
        assert!(!res.headers()["grpc-message"].is_empty());
    }
}

#[test]
fn grpc_web_gets_http_statuses() {
    let res: Response<()> = DefaultOnRejection::new().on_rejection(
        &AuthError::new(AuthErrorKind::Expired),
        &parts_over(Some("application/grpc-web+proto"), Version::HTTP_2),
    );
    assert_eq!(res.status(), 401);
}

#[test]
fn a_grpc_content_type_over_http1_gets_an_http_status() {
    for content_type in ["application/grpc", "application/grpc+proto"] {
        let res: Response<()> = DefaultOnRejection::new().on_rejection(
            &AuthError::new(AuthErrorKind::MissingToken),
            &parts_over(Some(content_type), Version::HTTP_11),
        );
        assert_eq!(res.status(), 401, "{content_type}");
        assert!(!res.headers().contains_key("grpc-status"));
    }
}

#[test]
fn a_look_alike_content_type_over_http2_gets_an_http_status() {
    for content_type in ["application/grpcXYZ", "application/grpc-json", "text/grpc"] {
        let res: Response<()> = DefaultOnRejection::new().on_rejection(
            &AuthError::new(AuthErrorKind::MissingToken),
            &parts_over(Some(content_type), Version::HTTP_2),
        );
        assert_eq!(res.status(), 401, "{content_type}");
    }
    assert!(is_grpc(&parts_over(
        Some("Application/GRPC"),
        Version::HTTP_2
    )));
}

#[test]
fn every_rejection_is_not_to_be_stored() {
    for (content_type, version) in [
        (None, Version::HTTP_11),
        (Some("application/grpc"), Version::HTTP_2),
    ] {
        for kind in AuthErrorKind::ALL {
            let req = parts_over(content_type, version);
            let res: Response<()> =
                DefaultOnRejection::new().on_rejection(&AuthError::new(kind), &req);
            assert_eq!(res.headers()[CACHE_CONTROL], "no-store", "{kind:?}");
            let res: Response<Bytes> =
                JsonOnRejection::new().on_rejection(&AuthError::new(kind), &req);
            assert_eq!(res.headers()[CACHE_CONTROL], "no-store", "{kind:?}");
        }
    }
}

#[test]
fn grpc_message_is_percent_encoded() {
    assert_eq!(grpc_percent_encode("a b%c\u{e9}"), "a b%25c%C3%A9");
}

#[test]
fn json_rejection_has_a_json_body_and_the_challenge() {
    let res: Response<Bytes> =
        JsonOnRejection::new().on_rejection(&AuthError::new(AuthErrorKind::Expired), &parts(None));
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    assert!(res.headers().contains_key(WWW_AUTHENTICATE));
    let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], "the token has expired");
}

#[test]
fn resource_metadata_is_in_every_401_and_403_challenge() {
    let url = "https://api.example.com/.well-known/oauth-protected-resource";
    let r = DefaultOnRejection::new().resource_metadata(url).unwrap();
    let param = format!("resource_metadata=\"{url}\"");
    for error in [
        AuthError::new(AuthErrorKind::MissingToken),
        AuthError::new(AuthErrorKind::Expired),
        AuthError::new(AuthErrorKind::Forbidden),
        AuthError::forbidden(Some("orders:write".into())),
    ] {
        let res: Response<()> = r.on_rejection(&error, &parts(None));
        let challenge = res.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer realm=\"api\""), "{challenge}");
        assert!(challenge.ends_with(&param), "{challenge}");
    }
    for bad in ["https://x/\"a", "https://x/ a", "https://x/\u{e9}"] {
        assert!(
            DefaultOnRejection::new().resource_metadata(bad).is_err(),
            "{bad}"
        );
    }
}

/// A claim the token failed on is named in every rejection: the challenge, the JSON body and
/// the gRPC message.
#[test]
fn every_rejection_names_the_claim_a_token_failed_on() {
    let error = AuthError::invalid_claim(Some("`username` is missing".to_owned()));
    let said = "the token claims are invalid: `username` is missing";
    let plain: Response<()> = DefaultOnRejection::new().on_rejection(&error, &parts(None));
    assert_eq!(
        plain.headers()[WWW_AUTHENTICATE],
        format!("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{said}\"")
            .as_str()
    );
    let json: Response<Bytes> = JsonOnRejection::new().on_rejection(&error, &parts(None));
    let body: serde_json::Value = serde_json::from_slice(json.body()).unwrap();
    assert_eq!(body["error_description"], said);
    let grpc: Response<()> = grpc_rejection(&error);
    assert_eq!(grpc.headers()["grpc-message"], said);
    // Without a named claim, the prebuilt answer.
    let bare = AuthError::invalid_claim(None);
    let res: Response<()> = DefaultOnRejection::new().on_rejection(&bare, &parts(None));
    assert!(
        res.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .ends_with("error_description=\"the token claims are invalid\"")
    );
}
