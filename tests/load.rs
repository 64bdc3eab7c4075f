//! 64 connections at once, mixing logins, valid, invalid, expired and missing tokens: every
//! answer must be the right one and no request may get a 5xx. (No timing is asserted.)

mod common;

use std::sync::Arc;

use common::*;
use http::StatusCode;
use jsonwebtoken::{Algorithm, Header};

const CLIENTS: usize = 64;
const ROUNDS: usize = 10;

async fn mixed_load(name: &str, alg: Algorithm) {
    // Every client logs in from 127.0.0.1, and fails on purpose: lift the login throttle, which
    // this test is not about (tests/sessions_demo.rs is).
    let mut env = env_for(alg);
    env.push(("LOGIN_IP_LIMIT".to_owned(), "100000/60".to_owned()));
    env.push(("LOGIN_USER_LIMIT".to_owned(), "100000/60".to_owned()));
    let mut server = Server::start(name, &env);
    let shared = Arc::new(Client::clone(&server));
    let key = encoding_key(alg);
    let mut expired = standard_claims();
    expired["exp"] = serde_json::json!(now() - 3600);
    let expired = Arc::new(jsonwebtoken::encode(&Header::new(alg), &expired, &key).unwrap());

    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let client = Arc::clone(&shared);
        let expired = Arc::clone(&expired);
        tasks.push(tokio::spawn(async move {
            let user = if i % 2 == 0 {
                ("user1", 1)
            } else {
                ("user2", 2)
            };
            let login = client.login(user.0, &format!("password{}", user.1)).await;
            assert_eq!(login.status, StatusCode::OK, "login: {}", login.text());
            let token = login.json()["access_token"].as_str().unwrap().to_owned();
            let mut tampered = token.clone();
            tampered.pop();
            tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
            for round in 0..ROUNDS {
                let reply = client.protected(&token).await;
                assert_eq!(reply.status, StatusCode::OK);
                assert_eq!(reply.json()["id"], user.1);
                match (i + round) % 4 {
                    0 => client
                        .protected(&tampered)
                        .await
                        .assert_unauthorized("tampered"),
                    1 => client
                        .protected(&expired)
                        .await
                        .assert_unauthorized("expired"),
                    2 => client
                        .get("/protected", &[])
                        .await
                        .assert_unauthorized("missing"),
                    _ => assert_eq!(client.get("/health", &[]).await.status, StatusCode::OK),
                }
            }
            if i % 8 == 0 {
                let bad = client.login(user.0, "wrong").await;
                assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    assert!(server.is_running(), "{name} died under load");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_get_right_answers_hs256() {
    for name in SERVERS {
        mixed_load(name, Algorithm::HS256).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_get_right_answers_es256() {
    mixed_load("axum_server", Algorithm::ES256).await;
}
