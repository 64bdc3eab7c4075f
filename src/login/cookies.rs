//! The login service's cookie mode (features `login` and `cookie`): [`LoginCookies`] and
//! [`ClearCookies`].

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::header::{CACHE_CONTROL, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use tower_service::Service;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, PRAGMA};

use super::claims::{SessionClaims, UserClaims};
use super::service::{Answer, LoginService, not_issued};
use super::{AuthServerBuilder, TokenIssuer};
use crate::body::JsonBody;
use crate::session::Session;
use crate::token::TokenSource;

/// Cookie mode for [`LoginService`](super::LoginService): a successful login sets the access
/// token as an `HttpOnly; Secure; SameSite` cookie (named `__Host-access_token` by default, so
/// browsers only accept it from https, for the whole host, without a `Domain`), and a readable
/// CSRF cookie (`__Host-csrf_token`) whose value the token carries in its `csrf` claim. The
/// page's own script reads the CSRF cookie and sends it back in `X-CSRF-Token` on unsafe
/// requests; the verifying layer checks the two match (see the `csrf` module).
///
/// The response body then holds `token_type`, `expires_in` and `csrf_token`, but not the
/// access token: script never needs to see it. Pair it with
/// `TokenSource::cookie(LoginCookies::DEFAULT_ACCESS_COOKIE)` on the verifying side, and
/// [`ClearCookies`] to log out.
///
/// ```
/// use tower_jwt_auth::login::{InMemoryUsers, LoginCookies, LoginService, TokenIssuer};
/// use tower_jwt_auth::{Algorithm, SigningKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let users = InMemoryUsers::new()?.with_user("user1", "password1", serde_json::json!({"sub": "1"}))?;
/// let issuer = TokenIssuer::new(SigningKey::from_secret(Algorithm::HS256, [5u8; 32])?);
/// let login = LoginService::new(users, issuer).cookies(LoginCookies::new());
/// # let _ = login;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct LoginCookies {
    access: String,
    csrf: String,
    same_site: SameSite,
}

impl Default for LoginCookies {
    fn default() -> Self {
        Self::new()
    }
}

impl LoginCookies {
    /// The default name of the access-token cookie.
    pub const DEFAULT_ACCESS_COOKIE: &'static str = "__Host-access_token";
    /// The default name of the CSRF cookie.
    pub const DEFAULT_CSRF_COOKIE: &'static str = "__Host-csrf_token";

    /// `__Host-access_token` and `__Host-csrf_token`, `SameSite=Strict`.
    pub fn new() -> Self {
        Self {
            access: Self::DEFAULT_ACCESS_COOKIE.to_owned(),
            csrf: Self::DEFAULT_CSRF_COOKIE.to_owned(),
            same_site: SameSite::Strict,
        }
    }

    /// Name the cookies (keep the `__Host-` prefix unless you must share them across
    /// subdomains).
    pub fn names(mut self, access: impl Into<String>, csrf: impl Into<String>) -> Self {
        self.access = access.into();
        self.csrf = csrf.into();
        self
    }

    /// `SameSite=Lax` instead of `Strict`: the cookies also go with top-level navigations from
    /// other sites (a link into your app), never with their forms or scripts.
    pub fn same_site_lax(mut self) -> Self {
        self.same_site = SameSite::Lax;
        self
    }

    /// The `Set-Cookie` values for a fresh login.
    pub(crate) fn set(&self, access_token: &str, csrf: &str, ttl: Duration) -> [HeaderValue; 2] {
        let max_age =
            cookie::time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        let access = Cookie::build((self.access.as_str(), access_token))
            .http_only(true)
            .secure(true)
            .same_site(self.same_site)
            .path("/")
            .max_age(max_age);
        let csrf = Cookie::build((self.csrf.as_str(), csrf))
            .secure(true)
            .same_site(self.same_site)
            .path("/")
            .max_age(max_age);
        [header(&access.build()), header(&csrf.build())]
    }

    /// The `Set-Cookie` values that remove both cookies.
    fn clear(&self) -> [HeaderValue; 2] {
        let removal = |name: &str, http_only: bool| {
            let mut c = Cookie::build((name.to_owned(), ""))
                .http_only(http_only)
                .secure(true)
                .same_site(self.same_site)
                .path("/")
                .build();
            c.make_removal();
            header(&c)
        };
        [removal(&self.access, true), removal(&self.csrf, false)]
    }
}

/// Cookie mode: the token carries a fresh `csrf` claim; both go into cookies, and the body
/// holds the CSRF token but not the access token.
impl Answer for LoginCookies {
    fn issue(
        &self,
        issuer: &TokenIssuer,
        claims: UserClaims,
        added: SessionClaims<'_>,
        session: Option<&Session>,
    ) -> Response<JsonBody> {
        let Some(csrf) = crate::text::random_hex::<32>() else {
            return not_issued();
        };
        let added = SessionClaims {
            csrf: Some(&csrf),
            ..added
        };
        let Ok(token) = issuer.issue_claims(claims, Some(&added)) else {
            return not_issued();
        };
        let mut body = serde_json::json!({
            "token_type": "Bearer",
            "expires_in": token.expires_in(),
            "csrf_token": csrf,
        });
        if let Some(session) = session {
            body["refresh_token"] = session.refresh_token().into();
        }
        let body = body.to_string();
        let mut res = Response::new(JsonBody::new(Bytes::from(body)));
        let headers = res.headers_mut();
        for value in self.set(
            token.access_token(),
            &csrf,
            Duration::from_secs(token.expires_in()),
        ) {
            headers.append(http::header::SET_COOKIE, value);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        res
    }
}

impl<U> AuthServerBuilder<U> {
    /// Cookie mode (feature `cookie`): the login answers with cookies
    /// ([`LoginService::cookies`]), and the layers read the access token from its cookie
    /// (after `Authorization: Bearer`), with CSRF protection.
    pub fn cookies(mut self, cookies: LoginCookies) -> Self {
        self.sources = vec![TokenSource::bearer(), TokenSource::cookie(&cookies.access)];
        self.answer = Some(Arc::new(cookies));
        self
    }
}

impl<A> LoginService<A> {
    /// Cookie mode (feature `cookie`): answer a successful login with the access token in an
    /// `HttpOnly` cookie and a CSRF cookie bound to it, instead of the token in the body. See
    /// [`LoginCookies`].
    #[must_use]
    pub fn cookies(mut self, cookies: LoginCookies) -> Self {
        self.options.answer = Some(Arc::new(cookies));
        self
    }
}

/// A cookie's `Set-Cookie` value; cookie names and values this crate builds are always valid
/// header values (names are configured tokens, values base64url or hex), so the fallback is
/// never used.
fn header(cookie: &Cookie<'_>) -> HeaderValue {
    let mut value =
        HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

/// A tower service that logs a cookie-mode session out of the browser: `204 No Content` with
/// `Set-Cookie` headers that remove both cookies (`Error = Infallible`). Mount it at, say,
/// `POST /logout` behind the verifying layer, so that only a real, CSRF-checked request can
/// use it.
///
/// ```
/// use http::{Request, StatusCode};
/// use tower::ServiceExt;
/// use tower_jwt_auth::login::{ClearCookies, LoginCookies};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let res = ClearCookies::new(LoginCookies::new()).oneshot(Request::new(())).await?;
/// assert_eq!(res.status(), StatusCode::NO_CONTENT);
/// assert_eq!(res.headers().get_all("set-cookie").iter().count(), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ClearCookies {
    cookies: LoginCookies,
}

impl ClearCookies {
    /// Clear the cookies that `cookies` sets.
    #[must_use]
    pub fn new(cookies: LoginCookies) -> Self {
        Self { cookies }
    }
}

impl<B> Service<Request<B>> for ClearCookies {
    type Response = Response<JsonBody>;
    type Error = Infallible;
    type Future = Ready<Result<Response<JsonBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        let mut res = Response::new(JsonBody::default());
        *res.status_mut() = StatusCode::NO_CONTENT;
        let headers = res.headers_mut();
        for value in self.cookies.clear() {
            headers.append(SET_COOKIE, value);
        }
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_cookies_are_host_only_secure_and_the_token_is_http_only() {
        let [access, csrf] = LoginCookies::new().set("a.b.c", "c5rf", Duration::from_secs(900));
        let access = access.to_str().unwrap();
        let csrf = csrf.to_str().unwrap();
        for part in [
            "__Host-access_token=a.b.c",
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=900",
        ] {
            assert!(access.contains(part), "{access} lacks {part}");
        }
        assert!(!access.contains("Domain"));
        assert!(csrf.starts_with("__Host-csrf_token=c5rf"), "{csrf}");
        assert!(
            csrf.contains("Secure") && !csrf.contains("HttpOnly"),
            "{csrf}"
        );
    }

    #[test]
    fn clearing_expires_both_cookies() {
        let [access, csrf] = LoginCookies::new().same_site_lax().clear();
        for value in [access, csrf] {
            let text = value.to_str().unwrap();
            assert!(text.contains("Max-Age=0"), "{text}");
            assert!(text.contains("SameSite=Lax"), "{text}");
        }
    }
}
