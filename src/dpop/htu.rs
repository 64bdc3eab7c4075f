//! The `htu` comparison (RFC 9449 §4.3 check 9): both sides normalised per RFC 3986 §6.2.2
//! and §6.2.3 (case, percent-encoding, dot segments, default port, empty path), without query
//! and fragment.

use http::{HeaderMap, Uri};

/// Where this server is reached from outside (`public_url`): the scheme, authority and path
/// prefix the clients see, behind any proxy.
#[derive(Clone, Debug)]
pub(crate) struct Base {
    /// `scheme://authority`, normalised.
    origin: String,
    /// The path prefix without a trailing slash (`""` or `/api`).
    prefix: String,
}

impl Base {
    /// Parse an absolute `http(s)://host[:port][/prefix]` URL without query or fragment.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        if url.contains(['?', '#']) {
            return None;
        }
        let normalised = normalize(url)?;
        let (origin, prefix) = crate::text::split_url(&normalised);
        Some(Self {
            origin: origin.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// The URI the request was made to, as the client saw it, normalised: from `base` when the
/// server knows its public URL, else from the request's own scheme (or `http`) and authority
/// (or `Host` header). `None` when the request names no host.
pub(crate) fn expected(base: Option<&Base>, uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let path = uri.path();
    match base {
        Some(base) => normalize(&format!("{}{}{path}", base.origin, base.prefix)),
        None => {
            let scheme = uri.scheme_str().unwrap_or("http");
            let authority = match uri.authority() {
                Some(a) => a.as_str(),
                None => {
                    let mut hosts = headers.get_all(http::header::HOST).iter();
                    let host = hosts.next()?;
                    if hosts.next().is_some() {
                        return None;
                    }
                    host.to_str().ok()?
                }
            };
            normalize(&format!("{scheme}://{authority}{path}"))
        }
    }
}

/// `scheme://host[:port]/path`, normalised, from an absolute http(s) URI; query and fragment
/// dropped. `None` for anything else (relative, user info, bad percent-encoding, other schemes).
pub(crate) fn normalize(uri: &str) -> Option<String> {
    let uri = uri.split('#').next().unwrap_or_default();
    let uri = uri.split('?').next().unwrap_or_default();
    let parsed: Uri = uri.parse().ok()?;
    let scheme = parsed.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = parsed.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let mut out = format!("{scheme}://{host}");
    if let Some(port) = authority.port_u16()
        && port != default_port
    {
        out.push(':');
        out.push_str(&port.to_string());
    }
    let path = percent_normalize(parsed.path())?;
    let path = remove_dot_segments(&path);
    if path.is_empty() {
        out.push('/');
    } else {
        out.push_str(&path);
    }
    Some(out)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Upper-case hex in percent-encodings, and decode the ones of unreserved characters.
fn percent_normalize(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            let value = u8::from_str_radix(text, 16).ok()?;
            if is_unreserved(value) {
                out.push(char::from(value));
            } else {
                out.push('%');
                out.push_str(&text.to_ascii_uppercase());
            }
            i += 3;
        } else {
            out.push(char::from(bytes[i]));
            i += 1;
        }
    }
    Some(out)
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if i == last {
                    output.push("");
                }
            }
            ".." => {
                if output.len() > 1 {
                    output.pop();
                }
                if i == last {
                    output.push("");
                }
            }
            s => output.push(s),
        }
    }
    output.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_uris_normalise_alike() {
        let want = Some("https://api.example.com/a/b".to_owned());
        for uri in [
            "https://api.example.com/a/b",
            "HTTPS://API.Example.COM/a/b",
            "https://api.example.com:443/a/b",
            "https://api.example.com/a/./c/../b",
            "https://api.example.com/%61/b",
            "https://api.example.com/a/b?x=1",
            "https://api.example.com/a/b#frag",
        ] {
            assert_eq!(normalize(uri), want, "{uri}");
        }
        assert_eq!(
            normalize("http://127.0.0.1:80").as_deref(),
            Some("http://127.0.0.1/")
        );
        assert_eq!(
            normalize("http://h/a%2fb").as_deref(),
            Some("http://h/a%2Fb")
        );
    }

    #[test]
    fn different_uris_stay_different() {
        let a = normalize("https://api.example.com/a/b");
        for uri in [
            "http://api.example.com/a/b",
            "https://api.example.com:8443/a/b",
            "https://api.example.org/a/b",
            "https://api.example.com/a/B",
            "https://api.example.com/a/b/",
            "https://api.example.com/a%2Fb",
        ] {
            assert_ne!(normalize(uri), a, "{uri}");
        }
    }

    #[test]
    fn only_absolute_http_uris_without_user_info() {
        for uri in [
            "/a/b",
            "ftp://h/a",
            "https://user@h/a",
            "https://h/%zz",
            "https://h/%4",
            "",
        ] {
            assert_eq!(normalize(uri), None, "{uri}");
        }
    }

    #[test]
    fn the_expected_uri_comes_from_the_public_url_or_the_host_header() {
        let uri: Uri = "/protected?q=1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(
            expected(None, &uri, &headers).as_deref(),
            Some("http://127.0.0.1:3000/protected")
        );
        let base = Base::parse("https://API.example.com/v1/").unwrap();
        assert_eq!(
            expected(Some(&base), &uri, &headers).as_deref(),
            Some("https://api.example.com/v1/protected")
        );
        assert_eq!(expected(None, &uri, &HeaderMap::new()), None);
        assert!(Base::parse("https://h/?q").is_none());
    }
}
