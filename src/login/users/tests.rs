//! Unit tests of `users`.

use super::*;

fn table() -> InMemoryUsers<u32> {
    // Small parameters keep the unit tests fast; the timing property does not depend on them.
    let params = Params::new(1024, 1, 1, None).unwrap();
    InMemoryUsers::with_params(params)
        .unwrap()
        .with_user("ada", "correct horse", 1)
        .unwrap()
}

#[tokio::test]
async fn right_password_returns_claims() {
    assert_eq!(
        table().authenticate("ada", "correct horse").await.unwrap(),
        Some(1)
    );
}

#[tokio::test]
async fn wrong_password_returns_none() {
    assert_eq!(table().authenticate("ada", "wrong").await.unwrap(), None);
}

#[tokio::test]
async fn unknown_user_returns_none() {
    let t = table();
    assert_eq!(t.authenticate("bob", "correct horse").await.unwrap(), None);
    assert_eq!(
        t.authenticate("bob", "dummy password for unknown users")
            .await
            .unwrap(),
        None
    );
}

#[test]
fn stored_hash_is_argon2id() {
    let t = table();
    assert!(
        t.table.users.read().unwrap()["ada"]
            .0
            .starts_with("$argon2id$v=19$")
    );
    assert!(t.table.dummy_hash.starts_with("$argon2id$v=19$"));
}

#[test]
fn debug_does_not_show_hashes() {
    let text = format!("{:?}", table());
    assert!(text.contains("ada"));
    assert!(!text.contains("argon2"));
}

#[tokio::test(flavor = "current_thread")]
async fn hashing_runs_off_the_executor() {
    // On a current-thread runtime an inline hash would block this very thread; with the
    // blocking pool the timer task keeps ticking while a slow check runs.
    let params = Params::new(64 * 1024, 3, 1, None).unwrap();
    let users = InMemoryUsers::with_params(params)
        .unwrap()
        .with_user("ada", "pw", 1)
        .unwrap();
    let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ticker = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                ticks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    let started = std::time::Instant::now();
    assert_eq!(users.authenticate("ada", "pw").await.unwrap(), Some(1));
    let took = started.elapsed();
    ticker.abort();
    let ticks = ticks.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        ticks >= 3,
        "{ticks} ticks while a {took:?} hash ran: the executor was blocked"
    );
}

#[tokio::test]
async fn a_login_that_waits_too_long_for_a_slot_is_overloaded() {
    let params = Params::new(64 * 1024, 4, 1, None).unwrap();
    let users = Arc::new(
        InMemoryUsers::with_params(params)
            .unwrap()
            .with_user("ada", "pw", 1)
            .unwrap()
            .max_concurrent_hashes(1)
            .max_hash_wait(Duration::from_millis(1)),
    );
    let busy = {
        let users = Arc::clone(&users);
        tokio::spawn(async move { users.authenticate("ada", "pw").await.unwrap() })
    };
    // Give the first check its slot, then ask for another.
    while users.slots.available_permits() == 1 {
        tokio::task::yield_now().await;
    }
    let err = users.authenticate("ada", "pw").await.unwrap_err();
    let overloaded = err
        .downcast_ref::<Overloaded>()
        .expect("an Overloaded error");
    assert_eq!(overloaded.retry_after, Duration::from_secs(1));
    assert_eq!(busy.await.unwrap(), Some(1));
}

#[tokio::test]
async fn an_outdated_hash_is_replaced_at_the_next_successful_login() {
    let old = Argon2::new(
        Argon2Algorithm::Argon2i,
        Version::V0x13,
        Params::new(512, 1, 1, None).unwrap(),
    );
    let old_phc = hash(&old, "pw").unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let users = {
        let seen = Arc::clone(&seen);
        table()
            .with_password_hash("bob", old_phc.clone(), 2)
            .unwrap()
            .on_rehash(move |user, phc| {
                seen.lock().unwrap().push((user.to_owned(), phc.to_owned()))
            })
    };
    // A wrong password never re-hashes.
    assert_eq!(users.authenticate("bob", "nope").await.unwrap(), None);
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(users.authenticate("bob", "pw").await.unwrap(), Some(2));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "bob");
    assert!(
        seen[0].1.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
        "{}",
        seen[0].1
    );
    let stored = users.table.users.read().unwrap()["bob"].0.clone();
    assert_eq!(stored, seen[0].1);
    // The new hash still verifies, and is current: no second re-hash.
    assert_eq!(users.authenticate("bob", "pw").await.unwrap(), Some(2));
    // An up-to-date user is never re-hashed.
    assert_eq!(
        users.authenticate("ada", "correct horse").await.unwrap(),
        Some(1)
    );
}
