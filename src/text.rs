//! Small text helpers shared by several modules.

use std::fmt::Write;

/// Whether `text` can go between double quotes in a header parameter (visible ASCII and
/// space, no `"` or `\`).
pub(crate) fn quotable(text: &str) -> bool {
    text.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// Lowercase hex.
#[cfg_attr(
    not(any(
        feature = "sessions",
        feature = "login",
        feature = "test-util",
        feature = "dpop"
    )),
    allow(dead_code)
)]
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `N` random bytes from the operating system, as lowercase hex; `None` if the generator fails
/// (never a panic: this runs on request paths).
#[cfg_attr(
    not(any(feature = "login", feature = "test-util", feature = "dpop")),
    allow(dead_code)
)]
pub(crate) fn random_hex<const N: usize>() -> Option<String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex(&bytes))
}

/// Split `url` into `scheme://authority` and the path (without query or fragment, nor a
/// trailing slash); the path is empty for `https://host` and `https://host/`.
pub(crate) fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    let url = &url[..end];
    match url[after_scheme..].find('/') {
        Some(i) => {
            let (origin, path) = url.split_at(after_scheme + i);
            (origin, path.trim_end_matches('/'))
        }
        None => (url, ""),
    }
}
