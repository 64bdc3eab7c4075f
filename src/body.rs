//! [`JsonBody`]: the small, complete response body of the services this crate ships.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A response body that is sent in one piece (the JSON of [`JwksService`](crate::jwks::JwksService)
/// and the login service). Empty by default.
#[derive(Debug, Default, Clone)]
pub struct JsonBody {
    data: Option<Bytes>,
}

impl JsonBody {
    pub(crate) fn new(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Self {
            data: (!data.is_empty()).then_some(data),
        }
    }
}

impl Body for JsonBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// A JSON error response `{"error": code, "error_description": description}`.
pub(crate) fn json_error(
    status: http::StatusCode,
    code: &'static str,
    description: &'static str,
) -> http::Response<JsonBody> {
    let body = serde_json::json!({ "error": code, "error_description": description }).to_string();
    let mut res = http::Response::new(JsonBody::new(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

/// A fixed document for `GET` and `HEAD` (an empty body for `HEAD`), 405 with `Allow: GET,
/// HEAD` for other methods.
pub(crate) fn document(
    method: &http::Method,
    doc: Option<Bytes>,
    content_type: &'static str,
    cache_control: &'static str,
) -> http::Response<JsonBody> {
    use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
    use http::{HeaderValue, Method, StatusCode};
    if method != Method::GET && method != Method::HEAD {
        let mut res = json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET",
        );
        res.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let Some(doc) = doc else {
        return json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no public keys are published (the keys are symmetric)",
        );
    };
    let body = if method == Method::HEAD {
        JsonBody::default()
    } else {
        JsonBody::new(doc)
    };
    let mut res = http::Response::new(body);
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
    res
}
