//! Finding the token in a request: `Authorization: Bearer <token>` (RFC 6750 §2.1).

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::error::{AuthError, AuthErrorKind};

/// Extract the bearer token.
///
/// - no `Authorization` header, another scheme (`Basic …`) or an empty token: `Ok(None)`
///   (RFC 6750 §3.1: the request lacks authentication information);
/// - several `Authorization` headers, or a credential with more than one token: `InvalidRequest`;
/// - bytes that are not visible ASCII are left to the verifier, which rejects them as malformed.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthErrorKind::InvalidRequest.into());
    }
    let bytes = value.as_bytes();
    let (scheme, rest) = match bytes.iter().position(|b| *b == b' ') {
        Some(i) => (&bytes[..i], &bytes[i..]),
        None => (bytes, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(None);
    }
    let token = rest.trim_ascii();
    if token.is_empty() {
        return Ok(None);
    }
    if token.iter().any(|b| *b == b' ' || *b == b'\t') {
        return Err(AuthErrorKind::InvalidRequest.into());
    }
    match std::str::from_utf8(token) {
        Ok(t) => Ok(Some(t)),
        Err(_) => Err(AuthErrorKind::Malformed.into()),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn kind(r: Result<Option<&str>, AuthError>) -> AuthErrorKind {
        r.unwrap_err().kind()
    }

    #[test]
    fn bearer_token_is_found() {
        assert_eq!(
            bearer_token(&headers(&[b"Bearer abc.def.ghi"])).unwrap(),
            Some("abc.def.ghi")
        );
    }

    #[test]
    fn scheme_is_case_insensitive() {
        assert_eq!(bearer_token(&headers(&[b"bEaReR t"])).unwrap(), Some("t"));
    }

    #[test]
    fn token_case_is_kept() {
        assert_eq!(
            bearer_token(&headers(&[b"Bearer AbC"])).unwrap(),
            Some("AbC")
        );
    }

    #[test]
    fn missing_header_is_no_token() {
        assert_eq!(bearer_token(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn other_scheme_is_no_token() {
        assert_eq!(
            bearer_token(&headers(&[b"Basic dXNlcjpwYXNz"])).unwrap(),
            None
        );
        assert_eq!(bearer_token(&headers(&[b"Bearerx t"])).unwrap(), None);
    }

    #[test]
    fn empty_token_is_no_token() {
        assert_eq!(bearer_token(&headers(&[b"Bearer"])).unwrap(), None);
        assert_eq!(bearer_token(&headers(&[b"Bearer   "])).unwrap(), None);
    }

    #[test]
    fn two_tokens_are_an_invalid_request() {
        assert_eq!(
            kind(bearer_token(&headers(&[b"Bearer a b"]))),
            AuthErrorKind::InvalidRequest
        );
    }

    #[test]
    fn two_headers_are_an_invalid_request() {
        assert_eq!(
            kind(bearer_token(&headers(&[b"Bearer a", b"Bearer b"]))),
            AuthErrorKind::InvalidRequest
        );
    }

    #[test]
    fn non_utf8_token_is_malformed() {
        assert_eq!(
            kind(bearer_token(&headers(&[b"Bearer \xff\xfe"]))),
            AuthErrorKind::Malformed
        );
    }
}
