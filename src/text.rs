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

/// The credential after `scheme` in an `Authorization` value (`<scheme> <credential>`, the
/// scheme matched case-insensitively), trimmed; `None` for another scheme or no credential.
#[cfg(feature = "dpop")]
pub(crate) fn after_scheme<'a>(value: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    let rest = value.get(scheme.len()..)?;
    if !value[..scheme.len()].eq_ignore_ascii_case(scheme) || rest.first() != Some(&b' ') {
        return None;
    }
    let credential = rest.trim_ascii();
    (!credential.is_empty()).then_some(credential)
}

/// Whether an `Authorization` value uses `scheme`.
pub(crate) fn has_scheme(value: &[u8], scheme: &[u8]) -> bool {
    value
        .get(..scheme.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        && matches!(value.get(scheme.len()), None | Some(b' '))
}
