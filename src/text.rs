//! Small text helpers shared by several modules.

use std::fmt::Write;

/// Whether `text` can go between double quotes in a header parameter (visible ASCII and
/// space, no `"` or `\`).
pub(crate) fn quotable(text: &str) -> bool {
    text.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// Whether `text` reads well wherever a client sees it (a JSON `error_description`, a header):
/// printable ASCII, no leading, trailing or double spaces (what a string literal continued on
/// the next line without its `\` leaves behind).
#[cfg(test)]
pub(crate) fn is_clean_client_text(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !text.contains("  ")
        && !text.starts_with(' ')
        && !text.ends_with(' ')
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

#[cfg(test)]
mod tests {
    /// The string literals of `source` outside raw strings, comments and char literals, with
    /// `\`-newline continuations applied as the compiler does.
    fn literals(source: &str) -> Vec<String> {
        let b = source.as_bytes();
        let (mut i, mut out) = (0, Vec::new());
        while i < b.len() {
            match b[i] {
                b'/' if b.get(i + 1) == Some(&b'/') => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                    && !ident(b, i)
                    && (i == 0 || b[i - 1] != b'b' || !ident(b, i - 1)) =>
                {
                    // A raw string (Lua scripts, PEM): skipped whole.
                    let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
                    let close = format!("\"{}", "#".repeat(hashes));
                    let start = i + 2 + hashes;
                    i = source[start..]
                        .find(&close)
                        .map_or(b.len(), |n| start + n + close.len());
                }
                b'\'' => {
                    // A char literal ('"', '\\', '\'') or a lifetime: step over it.
                    if b.get(i + 1) == Some(&b'\\') {
                        i = b[i + 3..]
                            .iter()
                            .position(|c| *c == b'\'')
                            .map_or(b.len(), |n| i + 4 + n);
                    } else if b.get(i + 2) == Some(&b'\'') {
                        i += 3;
                    } else {
                        i += 1;
                    }
                }
                b'"' => {
                    let mut text = String::new();
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        if b[i] == b'\\' && b.get(i + 1) == Some(&b'\n') {
                            i += 2;
                            while i < b.len() && b[i].is_ascii_whitespace() {
                                i += 1;
                            }
                            continue;
                        }
                        if b[i] == b'\\' {
                            text.push('\\');
                            i += 1;
                        }
                        text.push(b[i] as char);
                        i += 1;
                    }
                    out.push(text);
                    i += 1;
                }
                _ => i += 1,
            }
        }
        out
    }

    /// Whether the byte before `i` belongs to an identifier.
    fn ident(b: &[u8], i: usize) -> bool {
        i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
    }

    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Every text a client can be sent is a string literal in `src/` outside its tests: none
    /// may hold a line break (a literal continued on the next line without its `\`, which
    /// leaves a run of spaces in the text) or a run of spaces.
    #[test]
    fn client_texts_in_the_source_have_no_runs_of_spaces() {
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        assert!(files.len() > 20);
        let mut checked = 0;
        // Unit tests in a sibling `tests.rs` are test code as a whole.
        for file in files.iter().filter(|f| !f.ends_with("tests.rs")) {
            let source = std::fs::read_to_string(file).unwrap();
            let code = source.split("#[cfg(test)]").next().unwrap_or_default();
            for text in literals(code) {
                checked += 1;
                assert!(
                    !text.contains('\n') && !text.contains("  "),
                    "{}: {text:?}",
                    file.display()
                );
            }
        }
        assert!(checked > 500, "only {checked} literals found");
    }

    #[test]
    fn the_literal_scanner_finds_a_missing_continuation() {
        let found = literals("f(\"a \\\n   b\", 'x', '\"', r#\"  \"#, \"c\n   d\") // \"e  \"");
        assert_eq!(found, ["a b", "c\n   d"]);
        assert!(super::is_clean_client_text("a b"));
        assert!(!super::is_clean_client_text("a  b"));
        assert!(!super::is_clean_client_text("caf\u{e9}"));
    }
}
