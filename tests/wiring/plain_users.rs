// Users that can log in but cannot be reissued a token on a refresh: a refresh service, a
// login that opens sessions, or an AuthServer over them would hand out refresh tokens that no
// refresh honours. They need `Reissue`.
use tower_jwt_auth::login::{
    Authenticate, AuthServer, BoxError, LoginService, RefreshService, TokenIssuer,
};
use tower_jwt_auth::session::Sessions;
use tower_jwt_auth::{Algorithm, SigningKey};

struct Plain;

impl Authenticate for Plain {
    type Claims = serde_json::Value;

    async fn authenticate(&self, _: &str, _: &str) -> Result<Option<Self::Claims>, BoxError> {
        Ok(None)
    }
}

fn serve<S: tower::Service<http::Request<String>>>(_: S) {}

fn main() {
    let key = SigningKey::from_secret(Algorithm::HS256, [7u8; 32]).unwrap();
    let issuer = TokenIssuer::new(key.clone());
    serve(RefreshService::new(Plain, issuer.clone(), Sessions::in_memory()));
    let _ = LoginService::new(Plain, issuer).sessions(Sessions::in_memory());
    let _ = AuthServer::builder(Plain, key);
}
