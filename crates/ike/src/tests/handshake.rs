//! IKE_SA_INIT + IKE_AUTH between two endpoints, and what goes wrong.

use std::time::Duration;

use super::harness::*;
use crate::config::EndpointConfig;
use crate::event::{DownReason, Event};
use crate::proposal::IkeProposal;

fn assert_matching_children(p: &Pair) {
    let a = child_ups(&p.a_events);
    let b = child_ups(&p.b_events);
    assert_eq!(a.len(), 1, "one CHILD SA on A: {:?}", p.a_events);
    assert_eq!(b.len(), 1, "one CHILD SA on B: {:?}", p.b_events);
    let (a, b) = (a[0], b[0]);
    assert_eq!(a.outbound_spi, b.inbound_spi);
    assert_eq!(a.inbound_spi, b.outbound_spi);
    assert_eq!(*a.outbound_key, *b.inbound_key);
    assert_eq!(*a.inbound_key, *b.outbound_key);
    assert_ne!(*a.outbound_key, *a.inbound_key);
    assert_eq!(
        a.outbound_key.len(),
        a.proposal.key_len(),
        "key (+ salt) and integrity key"
    );
    assert_eq!(a.local_ts, b.remote_ts);
    assert_eq!(a.remote_ts, b.local_ts);
}

#[test]
fn handshake_establishes_matching_child_sas() {
    let mut p = Pair::new(a_conn(), b_conn());
    p.initiate();
    p.run(Duration::from_secs(5));
    assert_eq!(ike_ups(&p.a_events), 1);
    assert_eq!(ike_ups(&p.b_events), 1);
    assert_matching_children(&p);
    let a = child_ups(&p.a_events)[0];
    assert_eq!(a.local_ts[0].to_string(), "10.1.1.0/24");
    assert_eq!(a.remote_ts[0].to_string(), "192.168.4.0/24");
    assert!(!a.encap, "no NAT, not forced: raw ESP");
    assert_eq!(a.outbound_key.len(), 36, "AES-256-GCM key + salt");
    let st = p.a.status(p.now);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].state, "ESTABLISHED");
    assert_eq!(st[0].children.len(), 1);
}

#[test]
fn forced_encapsulation_moves_both_sides_to_4500() {
    let mut a = a_conn();
    a.force_encap = true;
    let mut p = Pair::new(a, b_conn());
    p.initiate();
    p.run(Duration::from_secs(5));
    assert_matching_children(&p);
    let (a, b) = (child_ups(&p.a_events)[0], child_ups(&p.b_events)[0]);
    assert!(a.encap && b.encap);
    assert_eq!(a.peer.port(), 4500);
    assert_eq!(b.peer.port(), 4500);
}

#[test]
fn wrong_psk_fails_on_both_sides_without_child_sas() {
    let mut b = b_conn();
    b.psk = zeroize::Zeroizing::new(b"another secret".to_vec());
    let mut p = Pair::new(a_conn(), b);
    p.initiate();
    p.run(Duration::from_secs(5));
    assert!(child_ups(&p.a_events).is_empty());
    assert!(child_ups(&p.b_events).is_empty());
    assert!(
        matches!(
            downs(&p.b_events)[..],
            [DownReason::AuthenticationFailed(_)]
        ),
        "{:?}",
        p.b_events
    );
    assert!(
        matches!(
            downs(&p.a_events)[..],
            [DownReason::AuthenticationFailed(_)]
        ),
        "{:?}",
        p.a_events
    );
    assert_eq!(p.b.counters().auth_failures, 1);
    assert!(
        p.a.status(p.now).is_empty() && p.b.status(p.now).is_empty(),
        "no SA kept"
    );
}

#[test]
fn wrong_identity_is_an_authentication_failure() {
    let mut b = b_conn();
    b.remote_id = crate::config::identity_from_str("@someone-else.example");
    let mut p = Pair::new(a_conn(), b);
    p.initiate();
    p.run(Duration::from_secs(5));
    let d = downs(&p.b_events);
    let [DownReason::AuthenticationFailed(why)] = &d[..] else {
        panic!("{:?}", p.b_events)
    };
    assert!(why.contains("someone-else.example"), "{why}");
}

#[test]
fn no_common_ike_proposal_is_reported() {
    let mut b = b_conn();
    b.ike_proposals = vec!["aes128gcm16-prfsha384-ecp256".parse().unwrap()];
    let mut a = a_conn();
    a.ike_proposals = vec!["aes256gcm16-prfsha256-curve25519".parse().unwrap()];
    let mut p = Pair::new(a, b);
    p.initiate();
    p.run(Duration::from_secs(5));
    assert!(
        matches!(downs(&p.a_events)[..], [DownReason::NoProposalChosen(_)]),
        "{:?}",
        p.a_events
    );
    assert!(p.b.status(p.now).is_empty(), "the responder kept no state");
}

#[test]
fn no_common_esp_proposal_leaves_the_ike_sa_without_child() {
    let mut b = b_conn();
    b.esp_proposals = vec!["aes128gcm16-esn".parse().unwrap()];
    let mut p = Pair::new(a_conn(), b);
    p.initiate();
    p.run(Duration::from_secs(5));
    assert_eq!(ike_ups(&p.a_events), 1);
    assert!(child_ups(&p.a_events).is_empty());
    assert!(child_ups(&p.b_events).is_empty());
}

#[test]
fn invalid_ke_payload_is_answered_by_retrying_with_the_group_asked_for() {
    let mut a = a_conn();
    a.ike_proposals = vec![
        "aes256gcm16-prfsha256-curve25519".parse().unwrap(),
        "aes256gcm16-prfsha256-ecp256".parse().unwrap(),
    ];
    let mut b = b_conn();
    b.ike_proposals = vec!["aes256gcm16-prfsha256-ecp256"
        .parse::<IkeProposal>()
        .unwrap()];
    let mut p = Pair::new(a, b);
    p.initiate();
    p.run(Duration::from_secs(5));
    assert_matching_children(&p);
    let st = p.a.status(p.now);
    assert_eq!(
        st[0].proposal.unwrap().to_string(),
        "aes256gcm16-prfsha256-ecp256"
    );
}

#[test]
fn a_responder_under_load_demands_a_cookie_and_the_initiator_honours_it() {
    let mut p = Pair::with(
        EndpointConfig {
            connections: vec![a_conn()],
            ..Default::default()
        },
        EndpointConfig {
            connections: vec![b_conn()],
            cookie_threshold: 0,
            ..Default::default()
        },
    );
    p.initiate();
    p.run(Duration::from_secs(5));
    assert_eq!(p.b.counters().cookies_sent, 1);
    assert_matching_children(&p);
}

#[test]
fn selectors_are_narrowed_to_what_the_responder_allows() {
    let a = conn(
        A_ADDR,
        B_ADDR,
        "10.0.0.0/8",
        "192.168.0.0/16",
        "a shared secret",
    );
    let mut p = Pair::new(a, b_conn());
    p.initiate();
    p.run(Duration::from_secs(5));
    assert_matching_children(&p);
    let a = child_ups(&p.a_events)[0];
    assert_eq!(a.local_ts[0].to_string(), "10.1.1.0/24");
    assert_eq!(a.remote_ts[0].to_string(), "192.168.4.0/24");
}

#[test]
fn disjoint_selectors_are_ts_unacceptable() {
    let a = conn(
        A_ADDR,
        B_ADDR,
        "10.9.0.0/16",
        "192.168.4.0/24",
        "a shared secret",
    );
    let mut p = Pair::new(a, b_conn());
    p.initiate();
    p.run(Duration::from_secs(5));
    assert_eq!(ike_ups(&p.b_events), 1, "the IKE SA itself is up");
    assert!(child_ups(&p.a_events).is_empty() && child_ups(&p.b_events).is_empty());
}

#[test]
fn lost_requests_and_responses_are_retransmitted() {
    let mut p = Pair::new(a_conn(), b_conn());
    // Lose the first IKE_SA_INIT request and the first IKE_AUTH response.
    p.fate = Box::new(|from_a, i| match (from_a, i) {
        (true, 0) => Fate::Drop,
        (false, 1) => Fate::Drop,
        _ => Fate::Deliver,
    });
    p.initiate();
    p.run(Duration::from_secs(10));
    assert_matching_children(&p);
    assert_eq!(
        ike_ups(&p.b_events),
        1,
        "a retransmitted IKE_AUTH is answered from the cache, not twice"
    );
}

#[test]
fn duplicated_and_reordered_datagrams_change_nothing() {
    let mut p = Pair::new(a_conn(), b_conn());
    p.fate = Box::new(|_, _| Fate::Duplicate);
    p.reorder = true;
    p.initiate();
    p.run(Duration::from_secs(10));
    assert_matching_children(&p);
    assert_eq!(ike_ups(&p.a_events), 1);
    assert_eq!(ike_ups(&p.b_events), 1);
}

#[test]
fn an_unanswering_peer_fails_the_handshake_after_backoff() {
    let mut p = Pair::new(a_conn(), b_conn());
    p.fate = Box::new(|from_a, _| if from_a { Fate::Drop } else { Fate::Deliver });
    let start = p.now;
    p.initiate();
    p.run(Duration::from_secs(120));
    assert!(
        matches!(downs(&p.a_events)[..], [DownReason::Failed(_)]),
        "{:?}",
        p.a_events
    );
    // 1 + 2 + 4 + 8 + 16 + 32 s of exponential backoff (5 retransmissions).
    assert!(p.now.duration_since(start) >= Duration::from_secs(63));
}

#[test]
fn dead_peer_detection_notices_a_silent_peer() {
    let mut a = a_conn();
    a.dpd_delay = Some(Duration::from_secs(10));
    let mut p = Pair::new(a, b_conn());
    p.initiate();
    p.run(Duration::from_secs(5));
    assert_matching_children(&p);
    // A live peer answers liveness checks.
    p.run(Duration::from_secs(35));
    assert!(downs(&p.a_events).is_empty());
    // Then it goes silent.
    p.fate = Box::new(|from_a, _| if from_a { Fate::Drop } else { Fate::Deliver });
    p.run(Duration::from_secs(120));
    assert!(
        matches!(downs(&p.a_events)[..], [DownReason::PeerDead]),
        "{:?}",
        p.a_events
    );
    assert!(p
        .a_events
        .iter()
        .any(|e| matches!(e, Event::ChildDown { .. })));
}

#[test]
fn a_delete_tears_down_both_sides() {
    let mut p = Pair::new(a_conn(), b_conn());
    p.initiate();
    p.run(Duration::from_secs(5));
    let now = p.now;
    p.a.delete(now, 0);
    p.run(Duration::from_secs(5));
    assert!(matches!(downs(&p.a_events)[..], [DownReason::Deleted]));
    assert!(
        matches!(downs(&p.b_events)[..], [DownReason::DeletedByPeer]),
        "{:?}",
        p.b_events
    );
    assert!(p
        .b_events
        .iter()
        .any(|e| matches!(e, Event::ChildDown { .. })));
    assert!(p.b.status(p.now).is_empty());
}

#[test]
fn garbage_never_panics_and_is_counted() {
    let mut p = Pair::new(a_conn(), b_conn());
    p.initiate();
    p.run(Duration::from_secs(5));
    let (now, local, remote) = (p.now, p.b_addr, p.a_addr);
    for len in 0..200usize {
        let junk: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        p.b.handle_datagram(now, local, remote, &junk);
    }
    assert!(p.b.counters().malformed > 0);
    assert_eq!(p.b.status(now).len(), 1, "the established SA is untouched");
}

#[test]
fn behind_a_nat_the_initiator_floats_to_4500_and_sends_keepalives() {
    let nat: std::net::IpAddr = "203.0.113.7".parse().unwrap();
    let mut b = b_conn();
    b.remote_addr = nat;
    let mut p = Pair::new(a_conn(), b);
    p.nat = Some(nat);
    p.initiate();
    p.run(Duration::from_secs(5));
    assert_matching_children(&p);
    let (a, b) = (child_ups(&p.a_events)[0], child_ups(&p.b_events)[0]);
    assert!(a.encap && b.encap, "NAT detected: ESP in UDP");
    assert_eq!(
        b.peer,
        std::net::SocketAddr::new(nat, 4500),
        "B answers the NAT's address"
    );
    p.run(Duration::from_secs(65));
    assert!(
        p.keepalives.0 >= 3,
        "A keeps the mapping open: {:?}",
        p.keepalives
    );
    assert_eq!(p.keepalives.1, 0, "B is not behind a NAT");
    let st = p.a.status(p.now);
    assert!(st[0].nat);
}

#[test]
fn alibaba_suites_negotiate_with_cbc_hmac_and_modp() {
    // The algorithms Alibaba Cloud's VPN gateway offers (strongSwan names).
    for (ike, esp) in [
        ("aes128-sha1-modp2048", "aes128-sha1"),
        ("aes256-sha256-modp2048", "aes256-sha256"),
        ("aes192-sha384-modp2048", "aes192-sha512"),
    ] {
        let mut a = a_conn();
        let mut b = b_conn();
        for c in [&mut a, &mut b] {
            c.ike_proposals = vec![ike.parse().unwrap()];
            c.esp_proposals = vec![esp.parse().unwrap()];
        }
        let mut p = Pair::new(a, b);
        p.initiate();
        p.run(Duration::from_secs(5));
        assert_matching_children(&p);
        let child = child_ups(&p.a_events)[0];
        assert_eq!(child.proposal.to_string(), esp);
        let cipher_key = child.proposal.cipher.key_len();
        let integ_key = child.proposal.integ.unwrap().key_len();
        assert_eq!(
            child.outbound_key.len(),
            cipher_key + integ_key,
            "{esp}: encryption key then integrity key"
        );
        assert_eq!(p.a.status(p.now)[0].proposal.unwrap(), ike.parse().unwrap());
        // A CHILD SA rekey with PFS over the MODP group works too.
        let now = p.now;
        p.a.rekey_child(now, 0);
        p.run(Duration::from_secs(2));
        assert_eq!(child_ups(&p.a_events).len(), 2, "{ike}");
    }
}

#[test]
fn proposal_strings_follow_strongswan() {
    use crate::proposal::{EspProposal, IkeProposal};
    let p: IkeProposal = "aes128-sha1-modp2048".parse().unwrap();
    assert_eq!(
        p.to_string(),
        "aes128-sha1-prfsha1-modp2048",
        "the PRF follows the integrity hash"
    );
    assert!(!p.is_legacy());
    assert!("3des-md5-modp1024"
        .parse::<IkeProposal>()
        .unwrap()
        .is_legacy());
    assert!(
        "aes128gcm16-sha1-prfsha256-curve25519"
            .parse::<IkeProposal>()
            .is_err(),
        "AEAD takes no integrity"
    );
    assert!(
        "aes128-prfsha1-modp2048".parse::<IkeProposal>().is_err(),
        "CBC needs integrity"
    );
    let e: EspProposal = "aes256-sha256-esn".parse().unwrap();
    assert_eq!(e.to_string(), "aes256-sha256-esn");
    assert_eq!(e.key_len(), 32 + 32);
}
