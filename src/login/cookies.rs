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

use subtle::ConstantTimeEq;

use super::claims::{SessionClaims, UserClaims};
use super::service::{Answer, LoginService, not_issued};
use super::{AuthServerBuilder, TokenIssuer};
use crate::auth::check::Mounted;
use crate::body::{JsonBody, json_error};
use crate::csrf::CsrfProtection;
use crate::session::{Session, Sessions};
use crate::token::TokenSource;

/// Cookie mode for a browser front end: a successful login or refresh answers with cookies
/// only, never a token in the body (`{"token_type", "expires_in"}`):
///
/// - `__Host-access_token`: the access token, `HttpOnly`;
/// - `__Host-refresh_token`: the session's refresh token, `HttpOnly` (with sessions);
/// - `__Host-csrf_token`: the session's CSRF value, readable by the page's own script, which
///   sends it back in `X-CSRF-Token` on unsafe requests. The access token carries it in its
///   `csrf` claim, and it is the same for the session's whole life
///   ([`Session::csrf`](crate::session::Session::csrf)), so a refresh checks it even after the
///   access token expired.
///
/// All three are `Secure; Path=/; SameSite=Strict` (the `__Host-` prefix makes browsers accept
/// them only from https, or `localhost`, for the whole host and without a `Domain`).
///
/// What the mode checks: a login whose `Origin` is not this server's, or whose
/// `Sec-Fetch-Site` is neither `same-origin` nor `none`, is refused with 403 (no login CSRF); a
/// refresh that carries the refresh cookie must pass the same check and send the session's CSRF
/// value in `X-CSRF-Token`; the verifying layers apply both checks to unsafe requests that
/// carry the access cookie (the `csrf` module). `/logout` and `/logout-all` clear the cookies
/// besides ending the sessions.
///
/// With the [`AuthServer`](super::AuthServer) ([`AuthServerBuilder::cookies`]) every endpoint
/// and layer is wired for it; the server's origin is its public URL when it has one, else the
/// request's scheme and `Host`.
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
    refresh: String,
    csrf: String,
    same_site: SameSite,
    protection: CsrfProtection,
    /// How long the refresh and CSRF cookies live: the sessions' lifetime.
    session_lifetime: Option<Duration>,
}

impl Default for LoginCookies {
    fn default() -> Self {
        Self::new()
    }
}

impl LoginCookies {
    /// The default name of the access-token cookie.
    pub const DEFAULT_ACCESS_COOKIE: &'static str = "__Host-access_token";
    /// The default name of the refresh-token cookie.
    pub const DEFAULT_REFRESH_COOKIE: &'static str = "__Host-refresh_token";
    /// The default name of the CSRF cookie.
    pub const DEFAULT_CSRF_COOKIE: &'static str = "__Host-csrf_token";

    /// `__Host-access_token`, `__Host-refresh_token` and `__Host-csrf_token`,
    /// `SameSite=Strict`, this server's origin only.
    pub fn new() -> Self {
        Self {
            access: Self::DEFAULT_ACCESS_COOKIE.to_owned(),
            refresh: Self::DEFAULT_REFRESH_COOKIE.to_owned(),
            csrf: Self::DEFAULT_CSRF_COOKIE.to_owned(),
            same_site: SameSite::Strict,
            protection: CsrfProtection::new(),
            session_lifetime: None,
        }
    }

    /// Name the access and CSRF cookies (keep the `__Host-` prefix unless you must share them
    /// across subdomains).
    pub fn names(mut self, access: impl Into<String>, csrf: impl Into<String>) -> Self {
        self.access = access.into();
        self.csrf = csrf.into();
        self
    }

    /// Name the refresh-token cookie (default `__Host-refresh_token`).
    pub fn refresh_name(mut self, refresh: impl Into<String>) -> Self {
        self.refresh = refresh.into();
        self
    }

    /// `SameSite=Lax` instead of `Strict`: the cookies also go with top-level navigations from
    /// other sites (a link into your app), never with their forms or scripts.
    pub fn same_site_lax(mut self) -> Self {
        self.same_site = SameSite::Lax;
        self
    }

    /// The forgery checks of the login and the refresh (and, through an
    /// [`AuthServer`](super::AuthServer), of its layers): a trusted front-end origin, another
    /// header name, this server's public origin.
    pub fn csrf(mut self, protection: CsrfProtection) -> Self {
        self.protection = protection;
        self
    }

    /// The name of the access-token cookie.
    pub(crate) fn access_name(&self) -> &str {
        &self.access
    }

    fn cookie(&self, name: &str, value: &str, http_only: bool, max_age: Duration) -> HeaderValue {
        let max_age =
            cookie::time::Duration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        let c = Cookie::build((name, value))
            .http_only(http_only)
            .secure(true)
            .same_site(self.same_site)
            .path("/")
            .max_age(max_age);
        header(&c.build())
    }

    /// The `Set-Cookie` values of a login or refresh: the access token for its lifetime, and
    /// the session's refresh token and CSRF value for the session's (without a session, the
    /// CSRF value lives as long as the token).
    pub(crate) fn set(
        &self,
        access_token: &str,
        csrf: &str,
        ttl: Duration,
        refresh_token: Option<&str>,
    ) -> Vec<HeaderValue> {
        let session_age = refresh_token.map_or(ttl, |_| self.session_lifetime.unwrap_or(ttl));
        let mut values = vec![
            self.cookie(&self.access, access_token, true, ttl),
            self.cookie(&self.csrf, csrf, false, session_age),
        ];
        if let Some(refresh) = refresh_token {
            values.push(self.cookie(&self.refresh, refresh, true, session_age));
        }
        values
    }

    /// The `Set-Cookie` values that remove all three cookies.
    fn clear(&self) -> [HeaderValue; 3] {
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
        [
            removal(&self.access, true),
            removal(&self.refresh, true),
            removal(&self.csrf, false),
        ]
    }
}

/// 403 for a request from another origin, or a refresh without its session's CSRF value.
fn forged(endpoint: &'static str) -> Response<JsonBody> {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "tower_jwt_auth",
        endpoint,
        status = 403,
        "cookie-mode request refused by the forgery check (another origin, or no CSRF value of this session)"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = endpoint;
    json_error(
        StatusCode::FORBIDDEN,
        "csrf_rejected",
        "the request failed the cross-site request forgery check: send it from this site, \
         with the CSRF cookie's value in the X-CSRF-Token header",
    )
}

/// Cookie mode: the token carries the session's `csrf` claim; token, refresh token and CSRF
/// value go into cookies, and the body holds neither token.
impl Answer for LoginCookies {
    fn issue(
        &self,
        issuer: &TokenIssuer,
        claims: UserClaims,
        added: SessionClaims<'_>,
        session: Option<&Session>,
    ) -> Response<JsonBody> {
        let csrf = match session {
            Some(session) => Some(session.csrf()),
            None => crate::text::random_hex::<16>(),
        };
        let Some(csrf) = csrf.filter(|c| !c.is_empty()) else {
            return not_issued();
        };
        let added = SessionClaims {
            csrf: Some(&csrf),
            ..added
        };
        let Ok(token) = issuer.issue_claims(claims, Some(&added)) else {
            return not_issued();
        };
        let token_type = if added.is_bound() { "DPoP" } else { "Bearer" };
        let body = serde_json::json!({
            "token_type": token_type,
            "expires_in": token.expires_in(),
        });
        let mut res = Response::new(JsonBody::new(Bytes::from(body.to_string())));
        let headers = res.headers_mut();
        for value in self.set(
            token.access_token(),
            &csrf,
            Duration::from_secs(token.expires_in()),
            session.map(Session::refresh_token),
        ) {
            headers.append(SET_COOKIE, value);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        res
    }

    fn check_login(
        &self,
        headers: &http::HeaderMap,
        uri: &http::Uri,
    ) -> Result<(), Response<JsonBody>> {
        self.protection
            .check_origin(headers, uri)
            .map_err(|_| forged("login"))
    }

    fn refresh_cookie(
        &self,
        method: &http::Method,
        headers: &http::HeaderMap,
        uri: &http::Uri,
    ) -> Result<Option<String>, Response<JsonBody>> {
        let token = match crate::token::cookie::find_cookie(headers, &self.refresh) {
            Ok(Some(token)) => token,
            Ok(None) => return Ok(None),
            Err(_) => return Err(forged("refresh")),
        };
        let submitted = self
            .protection
            .check_request(method, headers, uri)
            .map_err(|_| forged("refresh"))?
            .unwrap_or_default();
        // A value that does not look like a refresh token has no CSRF value: the rotation
        // refuses it as it refuses any unknown token.
        if let Some(expected) = Sessions::csrf_of(token)
            && !bool::from(expected.as_bytes().ct_eq(submitted))
        {
            return Err(forged("refresh"));
        }
        Ok(Some(token.to_owned()))
    }

    fn end(&self, res: &mut Response<JsonBody>) {
        for value in self.clear() {
            res.headers_mut().append(SET_COOKIE, value);
        }
    }

    fn finish(
        &self,
        public_url: Option<&str>,
        session_lifetime: Duration,
    ) -> Option<Arc<dyn Answer>> {
        let mut cookies = self.clone();
        if let Some(url) = public_url {
            cookies.protection = cookies.protection.origin(url);
        }
        cookies.session_lifetime = Some(session_lifetime);
        Some(Arc::new(cookies))
    }

    fn layer_check(&self) -> Option<Arc<dyn Mounted>> {
        Some(Arc::new(self.protection.clone()))
    }
}

impl<U> AuthServerBuilder<U> {
    /// Cookie mode (feature `cookie`): the login answers with cookies
    /// ([`LoginService::cookies`]), and the layers read the access token from its cookie
    /// (after `Authorization: Bearer`), with CSRF protection.
    pub fn cookies(mut self, cookies: LoginCookies) -> Self {
        self.sources = vec![
            TokenSource::bearer(),
            TokenSource::cookie(cookies.access_name()),
        ];
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

/// A tower service that removes the cookie mode's cookies from the browser: `204 No Content`
/// with `Set-Cookie` headers that remove all three (`Error = Infallible`). It ends no session
/// on the server: an [`AuthServer`](super::AuthServer) in cookie mode does both at `/logout`
/// ([`AuthServer::logout`](super::AuthServer::logout)); use this one for a login service
/// without sessions, behind the verifying layer, so that only a real, CSRF-checked request can
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
/// assert_eq!(res.headers().get_all("set-cookie").iter().count(), 3);
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
        let set =
            LoginCookies::new().set("a.b.c", "c5rf", Duration::from_secs(900), Some("r3fresh"));
        let [access, csrf, refresh] = [0, 1, 2].map(|i| set[i].to_str().unwrap());
        assert!(
            refresh.starts_with("__Host-refresh_token=r3fresh"),
            "{refresh}"
        );
        assert!(
            refresh.contains("HttpOnly") && refresh.contains("Secure"),
            "{refresh}"
        );
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
    fn clearing_expires_all_three_cookies() {
        for value in LoginCookies::new().same_site_lax().clear() {
            let text = value.to_str().unwrap();
            assert!(text.contains("Max-Age=0"), "{text}");
            assert!(text.contains("SameSite=Lax"), "{text}");
        }
    }
}
