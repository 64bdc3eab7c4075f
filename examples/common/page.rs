//! The browser front end of cookie mode (`LOGIN_COOKIES=1`): one page at `/`, its script at
//! `/app.js` and its style at `/app.css`, all served by the demo (no outside resource), under
//! a `Content-Security-Policy` that allows nothing else: no inline script or style, no other
//! origin, no framing.

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/app.css");

/// Scripts and styles from this server only, requests to this server only, no forms sent
/// anywhere (the script posts them), no plugins, no framing, no `<base>`.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// The page's files: `/`, `/app.js`, `/app.css`; `None` for any other path.
pub(crate) fn asset(path: &str) -> Option<Response<String>> {
    let (body, content_type) = match path {
        "/" => (INDEX, "text/html; charset=utf-8"),
        "/app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/app.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut res = Response::new(body.to_owned());
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(res)
}
