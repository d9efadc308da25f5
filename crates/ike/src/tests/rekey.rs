//! CREATE_CHILD_SA: CHILD and IKE SA rekeys, PFS, collisions.

use std::time::Duration;

use super::harness::*;
use crate::event::{DownReason, Event};

/// Every CHILD SA a side holds at the end: up events minus down events.
fn live_children(events: &[Event]) -> Vec<(u32, u32)> {
    let mut live: Vec<(u32, u32)> = Vec::new();
    for e in events {
        match e {
            Event::ChildUp(c) => live.push((c.inbound_spi, c.outbound_spi)),
            Event::ChildDown { inbound_spi, .. } => live.retain(|(i, _)| i != inbound_spi),
            _ => {}
        }
    }
    live
}

fn assert_one_matching_pair(p: &Pair) {
    let a = live_children(&p.a_events);
    let b = live_children(&p.b_events);
    assert_eq!(
        a.len(),
        1,
        "A ends with one CHILD SA: {a:x?}\n{:?}",
        p.a_events
    );
    assert_eq!(
        b.len(),
        1,
        "B ends with one CHILD SA: {b:x?}\n{:?}",
        p.b_events
    );
    assert_eq!(a[0].0, b[0].1);
    assert_eq!(a[0].1, b[0].0);
    // The keys of the surviving pair agree.
    let up = |events: &[Event], spi: u32| {
        events
            .iter()
            .find_map(|e| match e {
                Event::ChildUp(c) if c.inbound_spi == spi => {
                    Some((c.inbound_key.to_vec(), c.outbound_key.to_vec()))
                }
                _ => None,
            })
            .unwrap()
    };
    let (a_in, a_out) = up(&p.a_events, a[0].0);
    let (b_in, b_out) = up(&p.b_events, b[0].0);
    assert_eq!(a_in, b_out);
    assert_eq!(a_out, b_in);
}

fn established(a: crate::config::ConnectionConfig, b: crate::config::ConnectionConfig) -> Pair {
    let mut p = Pair::new(a, b);
    p.initiate();
    p.run(Duration::from_secs(1));
    assert_eq!(child_ups(&p.a_events).len(), 1);
    p
}

#[test]
fn child_sa_rekeys_at_its_lifetime_make_before_break() {
    let mut a = a_conn();
    a.child_lifetime = Some(Duration::from_secs(10));
    let mut p = established(a, b_conn());
    let first = live_children(&p.a_events)[0];
    p.run(Duration::from_secs(9));
    assert_one_matching_pair(&p);
    let now = live_children(&p.a_events)[0];
    assert_ne!(now, first, "rekeyed within 80-90 % of the lifetime");
    assert!(
        p.a_events
            .iter()
            .any(|e| matches!(e, Event::ChildDown { inbound_spi, .. } if *inbound_spi == first.0)),
        "the old SA is deleted"
    );
    // B answered the rekey: its new outbound SA is held until A deletes the
    // old one, then activated before the old one goes.
    let pos = |pred: &dyn Fn(&Event) -> bool| p.b_events.iter().position(pred).unwrap();
    let up = pos(&|e| matches!(e, Event::ChildUp(c) if c.inbound_spi == now.1 && !c.activate));
    let act =
        pos(&|e| matches!(e, Event::ChildActivate { inbound_spi, .. } if *inbound_spi == now.1));
    let down =
        pos(&|e| matches!(e, Event::ChildDown { inbound_spi, .. } if *inbound_spi == first.1));
    assert!(
        up < act && act < down,
        "held, activated, then the old removed: {up} {act} {down}"
    );
    // And it keeps rekeying.
    p.run(Duration::from_secs(30));
    assert_one_matching_pair(&p);
    assert!(child_ups(&p.a_events).len() >= 4);
    assert!(downs(&p.a_events).is_empty() && downs(&p.b_events).is_empty());
}

#[test]
fn child_sa_rekey_with_pfs_uses_a_fresh_key_exchange() {
    let mut a = a_conn();
    let mut b = b_conn();
    for c in [&mut a, &mut b] {
        c.pfs = Some(crate::crypto::DhGroup::Curve25519);
    }
    let mut p = established(a, b);
    let now = p.now;
    p.a.rekey_child(now, 0);
    p.run(Duration::from_secs(2));
    assert_one_matching_pair(&p);
    assert_eq!(child_ups(&p.a_events).len(), 2);
}

#[test]
fn a_rekey_without_pfs_is_refused_by_a_peer_that_demands_it() {
    let mut b = b_conn();
    b.pfs = Some(crate::crypto::DhGroup::Curve25519);
    let mut p = established(a_conn(), b);
    let now = p.now;
    p.a.rekey_child(now, 0);
    p.run(Duration::from_secs(2));
    assert_eq!(child_ups(&p.a_events).len(), 1, "no new SA");
    assert_one_matching_pair(&p);
}

#[test]
fn simultaneous_child_rekeys_leave_exactly_one_pair() {
    for round in 0..4 {
        let mut p = established(a_conn(), b_conn());
        // Vary which side's datagrams come first.
        p.reorder = round % 2 == 1;
        for _ in 0..round {
            let now = p.now;
            p.a.rekey_child(now, 0);
            p.run(Duration::from_secs(2));
        }
        let before = child_ups(&p.a_events).len();
        let now = p.now;
        p.a.rekey_child(now, 0);
        p.b.rekey_child(now, 0);
        p.run(Duration::from_secs(5));
        assert_eq!(
            child_ups(&p.a_events).len(),
            before + 2,
            "both exchanges completed (a real collision)"
        );
        assert_one_matching_pair(&p);
        assert!(downs(&p.a_events).is_empty());
    }
}

#[test]
fn ike_sa_rekeys_and_keeps_its_children() {
    let mut a = a_conn();
    a.ike_lifetime = Some(Duration::from_secs(10));
    let mut p = established(a, b_conn());
    let before = p.a.status(p.now)[0].ike;
    p.run(Duration::from_secs(9));
    let st = p.a.status(p.now);
    assert_eq!(st.len(), 1, "{st:?}");
    assert_ne!(st[0].ike, before, "a new IKE SA");
    assert_eq!(st[0].children.len(), 1, "the CHILD SA moved over");
    assert_eq!(p.b.status(p.now).len(), 1);
    assert!(downs(&p.a_events)
        .iter()
        .all(|r| **r == DownReason::Rekeyed));
    assert!(downs(&p.b_events)
        .iter()
        .all(|r| **r == DownReason::Rekeyed));
    assert_eq!(live_children(&p.a_events).len(), 1, "no CHILD SA lost");
    // The new IKE SA works: a CHILD SA rekey and a delete run over it.
    let now = p.now;
    p.b.rekey_child(now, 0);
    p.run(Duration::from_secs(1));
    assert_one_matching_pair(&p);
    let now = p.now;
    p.b.delete(now, 0);
    p.run(Duration::from_secs(1));
    assert!(p.a.status(p.now).is_empty());
}

#[test]
fn simultaneous_ike_rekeys_settle_on_one_ike_sa() {
    let mut p = established(a_conn(), b_conn());
    let now = p.now;
    p.a.rekey_ike(now, 0);
    p.b.rekey_ike(now, 0);
    p.run(Duration::from_secs(30));
    let (a, b) = (p.a.status(p.now), p.b.status(p.now));
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!((a[0].spi_i, a[0].spi_r), (b[0].spi_i, b[0].spi_r));
    assert_eq!(a[0].children.len(), 1);
    assert_one_matching_pair(&p);
}
