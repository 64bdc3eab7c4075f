//! Selection of the jsonwebtoken crypto backend.
//!
//! jsonwebtoken 10+ needs exactly one process-level `CryptoProvider`; with none (or with both of its
//! features on through feature unification) its first sign or verify panics, and it caches that
//! panicking placeholder for the life of the process. We install a provider explicitly the first
//! time any key is built, and check that it works, so a bad set-up fails at construction.

use std::sync::OnceLock;

use crate::error::{ConfigError, ConfigErrorKind};

static READY: OnceLock<bool> = OnceLock::new();

/// Install this crate's crypto backend for jsonwebtoken, if none is installed yet, and check that
/// signing works.
///
/// With the `aws-lc-rs` feature (the default) aws-lc-rs is installed; with only `rust-crypto`,
/// the RustCrypto backend. With both on (as `--all-features` does), aws-lc-rs wins. With neither,
/// a provider installed by the application through
/// `jsonwebtoken::crypto::CryptoProvider::install_default` is used.
///
/// Every constructor of keys in this crate calls it, so applications only need to call it when
/// they use jsonwebtoken directly *before* building any key of ours.
///
/// # Errors
///
/// [`ConfigErrorKind::NoCryptoBackend`] when no working backend is available.
pub fn install_crypto_provider() -> Result<(), ConfigError> {
    let ok = *READY.get_or_init(|| {
        install();
        self_test()
    });
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            ConfigErrorKind::NoCryptoBackend,
            "no jsonwebtoken crypto backend: enable the `aws-lc-rs` or `rust-crypto` feature of \
             tower-jwt-auth, or install a jsonwebtoken CryptoProvider at start-up",
        ))
    }
}

#[cfg(feature = "aws-lc-rs")]
fn install() {
    // An `Err` means another provider was installed first; that one is then used.
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
}

#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
fn install() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
    );
}

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
fn install() {}

/// One HMAC round trip. The placeholder provider panics, so the check runs under `catch_unwind`;
/// this happens once per process, at construction, never on the request path.
fn self_test() -> bool {
    std::panic::catch_unwind(|| {
        let key = jsonwebtoken::EncodingKey::from_secret(b"self-test");
        let sig = jsonwebtoken::crypto::sign(b"m", &key, jsonwebtoken::Algorithm::HS256)?;
        jsonwebtoken::crypto::verify(
            &sig,
            b"m",
            &jsonwebtoken::DecodingKey::from_secret(b"self-test"),
            jsonwebtoken::Algorithm::HS256,
        )
    })
    .map(|r| matches!(r, Ok(true)))
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn provider_installs_and_works() {
        super::install_crypto_provider().expect("a backend is enabled in tests");
    }
}

#[cfg(all(test, not(any(feature = "aws-lc-rs", feature = "rust-crypto"))))]
mod no_backend_tests {
    use crate::error::ConfigErrorKind;
    use crate::keys::VerifyingKey;
    use jsonwebtoken::Algorithm;

    #[test]
    fn no_backend_fails_at_construction_not_on_a_request() {
        let err = VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32]).unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::NoCryptoBackend);
        assert!(err.to_string().contains("aws-lc-rs"));
    }
}
