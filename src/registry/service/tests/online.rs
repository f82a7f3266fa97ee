//! `online` pages: limit, cursor, name prefix, total; and the bounds on
//! what a client may ask.

use super::*;

/// `(names, total, next)` of one `online` page.
fn page(
    t: &T,
    c: &mut Conn,
    token: &str,
    limit: Option<u64>,
    after: Option<&str>,
    prefix: Option<&str>,
) -> (Vec<String>, Option<u64>, Option<String>) {
    match t.ok(c, online_page(token, limit, after, prefix)) {
        ReplyBody::Users {
            users, total, next, ..
        } => (users.into_iter().map(|u| u.username).collect(), total, next),
        other => panic!("online reply: {other:?}"),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn pages_follow_the_cursor_to_the_end() {
    let mut t = T::new();
    let names = ["ann", "bea", "cal", "dan", "eve", "fay", "gus"];
    let mut conns = Vec::new();
    for (i, n) in names.iter().enumerate() {
        conns.push(t.user(n, 7000 + 10 * i as u16));
    }
    let (c, tok) = &mut conns[0];
    let p1 = page(&t, c, tok, Some(3), None, None);
    assert_eq!(p1, (strings(&names[..3]), Some(7), Some("cal".into())));
    let p2 = page(&t, c, tok, Some(3), p1.2.as_deref(), None);
    assert_eq!(p2, (strings(&names[3..6]), Some(7), Some("fay".into())));
    let p3 = page(&t, c, tok, Some(3), p2.2.as_deref(), None);
    assert_eq!(p3, (strings(&names[6..]), Some(7), None));
    // A page that ends exactly at the last user says there is no next.
    let exact = page(&t, c, tok, Some(7), None, None);
    assert_eq!(exact, (strings(&names), Some(7), None));
    // Past the end: an empty page, still with the total.
    assert_eq!(
        page(&t, c, tok, None, Some("zzz"), None),
        (vec![], Some(7), None)
    );
}

#[test]
fn prefix_filters_and_counts() {
    let mut t = T::new();
    let names = ["al", "al.x", "alan", "alba", "albert", "bob", "zal"];
    let mut conns = Vec::new();
    for (i, n) in names.iter().enumerate() {
        // "al" is too short to register: skip it, it must not be needed.
        if n.len() >= 3 {
            conns.push(t.user(n, 7000 + 10 * i as u16));
        }
    }
    let (c, tok) = &mut conns[0];
    assert_eq!(
        page(&t, c, tok, None, None, Some("al")),
        (strings(&["al.x", "alan", "alba", "albert"]), Some(4), None)
    );
    assert_eq!(
        page(&t, c, tok, Some(1), Some("alba"), Some("alb")),
        (strings(&["albert"]), Some(2), None)
    );
    assert_eq!(
        page(&t, c, tok, Some(1), None, Some("alb")),
        (strings(&["alba"]), Some(2), Some("alba".into()))
    );
    assert_eq!(
        page(&t, c, tok, None, None, Some("albert")),
        (strings(&["albert"]), Some(1), None)
    );
    assert_eq!(
        page(&t, c, tok, None, None, Some("q")),
        (vec![], Some(0), None)
    );
    assert_eq!(page(&t, c, tok, None, None, Some("")).1, Some(6));
}

#[test]
fn default_and_largest_page() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    // Sessions straight into the store: 1500 online users.
    let mut s = t.store.session_by_user("alice").unwrap().unwrap();
    for i in 0..1500 {
        s.username = format!("u{i:04}");
        s.token_hash = format!("hash-{i}");
        t.store.insert_session(&s).unwrap();
    }
    let (users, total, next) = page(&t, &mut a, &ta, None, None, None);
    assert_eq!((users.len() as u64, total), (ONLINE_PAGE, Some(1501)));
    // A default page is about 10 KB on the wire, however many are online.
    let bytes = serde_json::to_string(&t.ok(&mut a, online(&ta)))
        .unwrap()
        .len();
    assert!((8_000..12_000).contains(&bytes), "{bytes} bytes");
    assert_eq!(next.as_deref(), Some(users[users.len() - 1].as_str()));
    let (users, _, next) = page(&t, &mut a, &ta, Some(5000), None, None);
    assert_eq!(users.len() as u64, ONLINE_PAGE_MAX);
    assert_eq!(next.as_deref(), Some("u0998"));
    let (users, _, next) = page(&t, &mut a, &ta, Some(5000), next.as_deref(), None);
    assert_eq!((users.len(), next), (501, None));
    assert_eq!(users.last().map(String::as_str), Some("u1499"));
}

#[test]
fn offline_users_are_not_listed_or_counted() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    let (b, _tb) = t.user("bob", 8001);
    t.reg.disconnected(&b);
    assert_eq!(
        page(&t, &mut a, &ta, None, None, None),
        (strings(&["alice"]), Some(1), None)
    );
}

#[test]
fn bad_limits_and_names_are_refused() {
    let mut t = T::new();
    let (mut a, ta) = t.user("alice", 7001);
    for req in [
        online_page(&ta, Some(0), None, None),
        online_page(&ta, None, Some("Alice"), None),
        online_page(&ta, None, None, Some("a b")),
        online_page(&ta, None, None, Some(&"a".repeat(33))),
        online_page(&ta, None, Some("\u{7f}"), None),
    ] {
        assert_eq!(t.err(&mut a, req), ErrorCode::BadRequest);
    }
}

#[test]
fn users_coming_and_going_between_pages_do_not_shift_the_others() {
    let mut t = T::new();
    let mut conns = Vec::new();
    for (i, n) in ["bea", "dan", "fay", "hal"].iter().enumerate() {
        conns.push(t.user(n, 7000 + 10 * i as u16));
    }
    t.register(&["abe", "eve"]);
    let (mut c, tok) = conns.remove(0);
    let p1 = page(&t, &mut c, &tok, Some(2), None, None);
    assert_eq!(p1, (strings(&["bea", "dan"]), Some(4), Some("dan".into())));
    // Before the cursor someone logs in, after it someone else; one leaves.
    let mut a = t.conn();
    t.login(&mut a, "abe", 8000);
    let mut e = t.conn();
    t.login(&mut e, "eve", 8010);
    let (fay, fay_token) = &mut conns[1];
    t.ok(fay, logout(fay_token));
    let p2 = page(&t, &mut c, &tok, Some(2), p1.2.as_deref(), None);
    assert_eq!(p2, (strings(&["eve", "hal"]), Some(5), None));
}
