//! The operating system's certificate store (feature `os-certs`).

use rustls::RootCertStore;

use super::{KeyClientBuilder, LoadRoots, tls_error};
use crate::error::{ConfigError, ConfigErrorKind};

impl KeyClientBuilder {
    /// Whether to trust the operating system's certificate store (default `false`), read once
    /// when the client is built: on Linux the distribution's bundle, or the file named by
    /// `SSL_CERT_FILE` / the directory named by `SSL_CERT_DIR`; the keychain on macOS; the
    /// system store on Windows. This is where company networks put the CA of a TLS-inspecting
    /// proxy or of an internal identity provider.
    pub fn os_roots(mut self, trust: bool) -> Self {
        self.os_roots = trust.then_some(load as LoadRoots);
        self
    }
}

/// Add the store's certificates; none usable is an error.
fn load(roots: &mut RootCertStore) -> Result<(), ConfigError> {
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(match found.errors.into_iter().next() {
            Some(e) => ConfigError::with_source(
                ConfigErrorKind::Tls,
                "the operating system's certificate store could not be read",
                e,
            ),
            None => tls_error(
                "the operating system's certificate store holds no usable certificate \
                 (on Linux: install ca-certificates, or point SSL_CERT_FILE at a bundle)",
            ),
        });
    }
    Ok(())
}
