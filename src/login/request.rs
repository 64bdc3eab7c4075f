//! Reading an endpoint's request: the method, the media type, a bounded body, and its
//! parameters as JSON (the session endpoints) or as an HTML form (the OAuth 2 endpoints).

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes};
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;

use crate::body::{JsonBody, json_error};

/// How much of an oversized body is read and thrown away before answering 413. Answering while
/// the client is still sending makes the server close a connection with unread data, which many
/// clients see as a reset instead of the 413; past this bound that is the lesser evil.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

enum BodyError {
    TooLarge,
    Read,
}

/// Read at most `limit` bytes; drain (and discard) an oversized body up to [`DRAIN_LIMIT`].
async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: http_body::Body,
{
    let mut body = std::pin::pin!(body);
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Read)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.remaining());
        if seen > DRAIN_LIMIT {
            return Err(BodyError::TooLarge);
        }
        if seen <= limit {
            buf.put(data);
        }
    }
    if seen > limit {
        Err(BodyError::TooLarge)
    } else {
        Ok(buf.into())
    }
}

/// Check the method (POST), the media type (`media_type`, parameters allowed) and the size, and
/// read the body; or the error response (405, 415, 413, 400 `invalid_request`).
async fn read_post<B>(
    req: Request<B>,
    body_limit: usize,
    media_type: &'static str,
    wrong_type: &'static str,
) -> Result<(http::request::Parts, Bytes), Response<JsonBody>>
where
    B: http_body::Body,
{
    if req.method() != Method::POST {
        return Err(post_only());
    }
    if !has_media_type(req.headers(), media_type) {
        return Err(json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            wrong_type,
        ));
    }
    if declared_length(req.headers()).is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    match read_body(body, body_limit).await {
        Ok(bytes) => Ok((parts, bytes)),
        Err(BodyError::TooLarge) => Err(too_large()),
        Err(BodyError::Read) => Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request body could not be read",
        )),
    }
}

/// Check the method (POST), the content type (JSON) and the size, read the body and parse it
/// as a JSON object of type `T`; or the error response (405, 415, 413, 400 `invalid_request`
/// with `expected` as its description).
pub(super) async fn read_json<T, B>(
    req: Request<B>,
    body_limit: usize,
    expected: &'static str,
) -> Result<(http::request::Parts, T), Response<JsonBody>>
where
    T: serde::de::DeserializeOwned,
    B: http_body::Body,
{
    let (parts, body) = read_post(
        req,
        body_limit,
        "application/json",
        "send the request body as Content-Type: application/json",
    )
    .await?;
    // serde would also read a struct from a JSON array (by position): require an object.
    let is_object = body.trim_ascii_start().first() == Some(&b'{');
    match is_object
        .then(|| serde_json::from_slice::<T>(&body).ok())
        .flatten()
    {
        Some(value) => Ok((parts, value)),
        None => Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            expected,
        )),
    }
}

/// The parameters of an `application/x-www-form-urlencoded` body (RFC 6749 §3.2): each name
/// at most once, empty values as if absent (§3.1).
#[derive(Debug, Default)]
pub(super) struct Form(HashMap<String, String>);

impl Form {
    /// The value of `name`, if given and not empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn parse(body: &[u8]) -> Result<Self, &'static str> {
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            if value.is_empty() {
                continue;
            }
            if params
                .insert(name.into_owned(), value.into_owned())
                .is_some()
            {
                return Err("a parameter was sent more than once (RFC 6749 §3.2)");
            }
        }
        Ok(Self(params))
    }
}

/// Check the method (POST), the content type (a form) and the size, and read the parameters;
/// or the error response (405, 415, 413, 400 `invalid_request`).
pub(super) async fn read_form<B>(
    req: Request<B>,
    body_limit: usize,
) -> Result<(http::request::Parts, Form), Response<JsonBody>>
where
    B: http_body::Body,
{
    let (parts, body) = read_post(
        req,
        body_limit,
        "application/x-www-form-urlencoded",
        "send the parameters as Content-Type: application/x-www-form-urlencoded",
    )
    .await?;
    match Form::parse(&body) {
        Ok(form) => Ok((parts, form)),
        Err(problem) => Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            problem,
        )),
    }
}

/// 405 with `Allow: POST`.
pub(super) fn post_only() -> Response<JsonBody> {
    let mut res = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "use POST",
    );
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static("POST"));
    res
}

fn too_large() -> Response<JsonBody> {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is too large",
    )
}

/// `media_type`, with optional parameters (`; charset=utf-8`), case-insensitively.
fn has_media_type(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(media_type))
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse::<usize>()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::Form;

    #[test]
    fn form_parameters_once_each() {
        let form =
            Form::parse(b"grant_type=client_credentials&scope=a+b&client_id=&x=%41").unwrap();
        assert_eq!(form.get("scope"), Some("a b"));
        assert_eq!(form.get("x"), Some("A"));
        assert_eq!(form.get("client_id"), None);
        assert!(Form::parse(b"scope=a&scope=b").is_err());
    }
}
