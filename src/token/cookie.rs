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

/// Two different values for one cookie name: which one the browser meant cannot be told (a
/// sibling subdomain or another port may have set one of them).
pub(crate) struct Ambiguous;

/// The value of cookie `name` (empty values count as absent); [`Ambiguous`] when the request
/// carries two different ones. HTTP/2 may split cookies over several `Cookie` headers.
pub(crate) fn find_cookie<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<Option<&'a str>, Ambiguous> {
    let mut found: Option<&'a str> = None;
    for value in headers.get_all(COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for cookie in ::cookie::Cookie::split_parse(text).flatten() {
            if cookie.name_raw() != Some(name) {
                continue;
            }
            let Some(v) = cookie.value_raw().filter(|v| !v.is_empty()) else {
                continue;
            };
            match found {
                Some(previous) if previous != v => return Err(Ambiguous),
                _ => found = Some(v),
            }
        }
    }
    Ok(found)
}

impl Find for CookieSource {
    fn find<'a>(&self, headers: &'a HeaderMap, _uri: &'a Uri) -> Found<'a> {
        let Ok(found) = find_cookie(headers, &self.name) else {
            return invalid_request();
        };
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
