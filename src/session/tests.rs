use super::*;

#[test]
fn refresh_tokens_have_the_documented_shape() {
    let token = format!("{}{}{}", "a".repeat(32), "b".repeat(22), "c".repeat(43));
    assert_eq!(token.len(), TOKEN_LEN);
    assert_eq!(
        parse_token(&token),
        Some((&*"a".repeat(32), &*"b".repeat(22)))
    );
    for bad in [
        String::new(),
        "a.b.c".to_owned(),
        format!("{}{}{}", "A".repeat(32), "b".repeat(22), "c".repeat(43)),
        format!("{}{}{}.", "a".repeat(32), "b".repeat(22), "c".repeat(42)),
        format!("{}{}{}", "a".repeat(32), "b+".repeat(11), "c".repeat(43)),
        format!("{}{}{}", "a".repeat(32), "b".repeat(22), "é".repeat(21)),
        "x".repeat(10_000),
    ] {
        assert_eq!(parse_token(&bad), None, "{bad}");
    }
}

#[test]
fn sealing_round_trips_and_hex_is_strict() {
    let secret = [7u8; 32];
    let sealed = hex(&xor(&secret, &pad("pred")));
    let opened = xor(&unhex32(&sealed).unwrap(), &pad("pred"));
    assert_eq!(opened, secret);
    assert_ne!(xor(&unhex32(&sealed).unwrap(), &pad("other")), secret);
    assert_eq!(unhex32("zz"), None);
    assert_eq!(unhex32(&"g".repeat(64)), None);
}

#[test]
fn tags_and_sids_never_show_their_input() {
    let tag = user_tag("alice@example.com");
    assert_eq!(tag.len(), 32);
    assert!(!tag.contains("alice"));
    assert_ne!(sid_of("f1"), sid_of("f2"));
}

#[tokio::test]
async fn the_csrf_value_is_the_sessions_for_its_whole_life() {
    let sessions = Sessions::in_memory();
    let session = sessions.open("1").await.unwrap();
    let csrf = session.csrf();
    assert_eq!(csrf.len(), 32);
    let next = sessions.refresh(session.refresh_token()).await.unwrap();
    assert_eq!(next.csrf(), csrf, "a rotation keeps it");
    assert_eq!(Sessions::csrf_of(next.refresh_token()), Some(csrf.clone()));
    let other = sessions.open("1").await.unwrap();
    assert_ne!(other.csrf(), csrf, "another session has its own");
    assert!(!csrf.contains(session.sid()) && csrf != session.sid());
    assert_eq!(Sessions::csrf_of("garbage"), None);
}
