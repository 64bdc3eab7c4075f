//! The cookie source (feature `cookie`): a token the browser sends by itself, so CSRF
//! protection comes with it.

use std::borrow::Cow;
use std::sync::Arc;

use http::header::COOKIE;
use http::{HeaderMap, Uri};

use super::{Find, Found, Kind, RawToken, TokenSource, invalid_request};
use crate::auth::check::Mounted;
use crate::csrf::CsrfProtection;

impl TokenSource {
    /// The value of cookie `name` (feature `cookie`). A layer reading it applies the CSRF
    /// checks of [`CsrfProtection::new`] to cookie tokens, unless given its own
    /// ([`JwtAuthLayer::csrf`](crate::JwtAuthLayer::csrf)).
    #[must_use]
    pub fn cookie(name: &str) -> Self {
        Self {
            kind: Kind::Other(Arc::new(CookieSource { name: name.into() })),
        }
    }
}

#[derive(Debug)]
struct CookieSource {
    name: Box<str>,
}

impl Find for CookieSource {
    fn find<'a>(&self, headers: &'a HeaderMap, _uri: &'a Uri) -> Found<'a> {
        let mut found: Option<&'a str> = None;
        // HTTP/2 may split cookies over several `Cookie` headers.
        for value in headers.get_all(COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for cookie in ::cookie::Cookie::split_parse(text).flatten() {
                if cookie.name_raw() != Some(&*self.name) {
                    continue;
                }
                let Some(v) = cookie.value_raw().filter(|v| !v.is_empty()) else {
                    continue;
                };
                match found {
                    Some(previous) if previous != v => return invalid_request(),
                    _ => found = Some(v),
                }
            }
        }
        Ok(found.map(|text| RawToken::Text {
            text: Cow::Borrowed(text),
            from_browser: true,
        }))
    }

    fn sent_by_browser(&self) -> bool {
        true
    }

    /// CSRF protection, unless the layer has its own.
    fn companion(&self) -> Option<Arc<dyn Mounted>> {
        Some(Arc::new(CsrfProtection::new()))
    }
}
