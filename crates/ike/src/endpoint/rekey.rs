//! CREATE_CHILD_SA: rekeying CHILD SAs, with optional PFS (RFC 7296
//! §1.3.3), and the IKE SA itself (§1.3.2), make-before-break (§2.8), and
//! what happens when both peers rekey the same SA at once (§2.8.1).
//!
//! CHILD SA collisions follow §2.8.1: both exchanges complete; the one whose
//! four nonces hold the smallest is redundant, and its initiator deletes the
//! SA it created. IKE SA collisions are avoided instead of resolved: a
//! responder with its own IKE rekey outstanding answers TEMPORARY_FAILURE
//! (§2.25) when the peer's nonce is the smaller one, so exactly one of the two
//! exchanges completes and the other side retries later.

use super::*;

/// How long to wait before trying a refused or failed rekey again.
const REKEY_RETRY: Duration = Duration::from_secs(10);

/// A CREATE_CHILD_SA request waiting for its response.
#[derive(Debug)]
pub(super) enum Outstanding {
    Child {
        old_inbound: u32,
        new_inbound: u32,
        ni: Vec<u8>,
        dh: Option<DhSecret>,
    },
    Ike {
        new_spi: [u8; 8],
        ni: Vec<u8>,
        dh: DhSecret,
    },
}

/// A peer's rekey of a CHILD SA we were rekeying too (§2.8.1).
#[derive(Debug)]
pub(super) struct Collision {
    /// The old SA both exchanges replace (our inbound SPI).
    old_inbound: u32,
    /// The smallest nonce of the peer's exchange.
    min_nonce: Vec<u8>,
}

fn smaller<'a>(a: &'a [u8], b: &'a [u8]) -> &'a [u8] {
    if a <= b {
        a
    } else {
        b
    }
}

impl Endpoint {
    /// Sends a CREATE_CHILD_SA request for `kind` (RekeyChild or RekeyIke).
    pub(super) fn rekey_request(&mut self, now: Instant, id: [u8; 8], kind: RequestKind) {
        let Some(sa) = self.sas.get(&id) else { return };
        let Some(c) = self.cfg.connections.get(sa.conn).cloned() else {
            return;
        };
        let (payloads, outstanding) = match kind {
            RequestKind::RekeyChild(old) => {
                let Some(child) = sa
                    .children
                    .iter()
                    .find(|ch| ch.inbound_spi == old && ch.state == ChildState::Installed)
                else {
                    return self.next_queued(now, id);
                };
                let (local_ts, remote_ts) = (child.local_ts.clone(), child.remote_ts.clone());
                let new_inbound = self.random_child_spi();
                let ni = self.nonce();
                let dh = c.pfs.map(|g| DhSecret::generate(g, &mut *self.rng));
                let mut payloads = vec![
                    Payload::Notify(Notify {
                        protocol: ProtocolId::Esp,
                        spi: old.to_be_bytes().to_vec(),
                        kind: NotifyType::RekeySa,
                        data: vec![],
                    }),
                    Payload::Sa(SaPayload {
                        proposals: c
                            .esp_proposals
                            .iter()
                            .enumerate()
                            .map(|(i, p)| p.to_wire_pfs(i as u8 + 1, new_inbound, c.pfs))
                            .collect(),
                    }),
                    Payload::Nonce(ni.clone()),
                ];
                if let Some(dh) = &dh {
                    payloads.push(Payload::Ke {
                        group: dh.group().id(),
                        data: dh.public(),
                    });
                }
                // TSi is the exchange initiator's side: ours.
                payloads.push(Payload::TsI(local_ts));
                payloads.push(Payload::TsR(remote_ts));
                (
                    payloads,
                    Outstanding::Child {
                        old_inbound: old,
                        new_inbound,
                        ni,
                        dh,
                    },
                )
            }
            RequestKind::RekeyIke => {
                let Some(current) = sa.proposal else { return };
                let new_spi = self.random_spi8();
                let ni = self.nonce();
                let dh = DhSecret::generate(current.dh, &mut *self.rng);
                let mut props = c.ike_proposals.clone();
                props.sort_by_key(|p| p.dh != current.dh);
                let payloads = vec![
                    Payload::Sa(SaPayload {
                        proposals: props
                            .iter()
                            .enumerate()
                            .map(|(i, p)| p.to_wire(i as u8 + 1, new_spi.to_vec()))
                            .collect(),
                    }),
                    Payload::Nonce(ni.clone()),
                    Payload::Ke {
                        group: dh.group().id(),
                        data: dh.public(),
                    },
                ];
                (payloads, Outstanding::Ike { new_spi, ni, dh })
            }
            _ => return,
        };
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let msg_id = sa.next_request_id;
        let Some(bytes) = sa.seal(ExchangeType::CreateChildSa, false, msg_id, &payloads) else {
            return;
        };
        sa.next_request_id += 1;
        tracing::debug!(connection = %c.name, ?kind, "rekeying");
        self.start_request_with(now, id, msg_id, kind, bytes, Some(outstanding));
    }

    /// A CREATE_CHILD_SA request from the peer.
    pub(super) fn on_create_child_request(
        &mut self,
        now: Instant,
        id: [u8; 8],
        mid: u32,
        payloads: &[Payload],
    ) {
        let rekey_sa = payloads.iter().find_map(|p| match p {
            Payload::Notify(n) if n.kind == NotifyType::RekeySa => Some(n),
            _ => None,
        });
        let sa_payload = payloads.iter().find_map(|p| match p {
            Payload::Sa(s) => Some(s),
            _ => None,
        });
        let is_ike =
            sa_payload.is_some_and(|s| s.proposals.iter().all(|p| p.protocol == ProtocolId::Ike));
        match (rekey_sa, is_ike) {
            (Some(n), false) => self.answer_child_rekey(now, id, mid, n, payloads),
            (None, true) => self.answer_ike_rekey(now, id, mid, payloads),
            _ => {
                // Further CHILD SAs beside the configured one are not
                // offered (RFC 7296 §1.3: NO_ADDITIONAL_SAS).
                self.respond(
                    id,
                    ExchangeType::CreateChildSa,
                    mid,
                    &[notify(NotifyType::NoAdditionalSas, vec![])],
                );
            }
        }
    }

    fn answer_child_rekey(
        &mut self,
        now: Instant,
        id: [u8; 8],
        mid: u32,
        n: &Notify,
        payloads: &[Payload],
    ) {
        let fail = |ep: &mut Self, kind: NotifyType| {
            ep.respond(
                id,
                ExchangeType::CreateChildSa,
                mid,
                &[notify(kind, vec![])],
            )
        };
        let Some(sa) = self.sas.get(&id) else { return };
        let Some(c) = self.cfg.connections.get(sa.conn).cloned() else {
            return;
        };
        // The notify names the SA by the SPI its sender receives on: our outbound.
        let Some(old_out) = <[u8; 4]>::try_from(n.spi.as_slice())
            .ok()
            .map(u32::from_be_bytes)
        else {
            return fail(self, NotifyType::InvalidSyntax);
        };
        let Some(old) = sa.children.iter().find(|ch| ch.outbound_spi == old_out) else {
            return fail(self, NotifyType::ChildSaNotFound);
        };
        if old.state != ChildState::Installed {
            // §2.25: being replaced already.
            return fail(self, NotifyType::TemporaryFailure);
        }
        let old_inbound = old.inbound_spi;
        let f = Found::of(payloads);
        let (sa_p, ke) = (f.sa, f.ke);
        let (ni, tsi, tsr) = (
            f.nonce.map(<[u8]>::to_vec),
            f.ts_i.map(<[_]>::to_vec),
            f.ts_r.map(<[_]>::to_vec),
        );
        let (Some(sa_p), Some(ni), Some(tsi), Some(tsr)) = (sa_p, ni, tsi, tsr) else {
            return fail(self, NotifyType::InvalidSyntax);
        };
        let Some((chosen, num, peer_spi)) = proposal::select_esp(&c.esp_proposals, &sa_p.proposals)
        else {
            let ours: Vec<String> = c.esp_proposals.iter().map(ToString::to_string).collect();
            tracing::warn!(connection = %c.name, "NO_PROPOSAL_CHOSEN for a CHILD SA rekey: the peer offered [{}], we accept [{}]", proposal::describe(&sa_p.proposals), ours.join(", "));
            return fail(self, NotifyType::NoProposalChosen);
        };
        // PFS: the peer's KE decides, within the groups we support; a
        // connection that demands PFS refuses a rekey without it.
        let (dh, g_ir) = match ke {
            Some((group, data)) => {
                let Some(g) = DhGroup::from_id(group) else {
                    return fail(self, NotifyType::NoProposalChosen);
                };
                if c.pfs.is_some_and(|want| want != g) {
                    return self.respond(
                        id,
                        ExchangeType::CreateChildSa,
                        mid,
                        &[notify(
                            NotifyType::InvalidKePayload,
                            c.pfs
                                .map(|w| w.id())
                                .unwrap_or(group)
                                .to_be_bytes()
                                .to_vec(),
                        )],
                    );
                }
                let dh = DhSecret::generate(g, &mut *self.rng);
                let Ok(g_ir) = dh.agree(data) else {
                    return fail(self, NotifyType::InvalidSyntax);
                };
                (Some(dh), Some(g_ir))
            }
            None if c.pfs.is_some() => return fail(self, NotifyType::NoProposalChosen),
            None => (None, None),
        };
        let n_i = narrow(&tsi, &c.remote_ts);
        let n_r = narrow(&tsr, &c.local_ts);
        if n_i.is_empty() || n_r.is_empty() {
            return fail(self, NotifyType::TsUnacceptable);
        }
        let new_inbound = self.random_child_spi();
        let nr = self.nonce();
        let mut out = vec![
            Payload::Sa(SaPayload {
                proposals: vec![chosen.to_wire_pfs(
                    num,
                    new_inbound,
                    dh.as_ref().map(DhSecret::group),
                )],
            }),
            Payload::Nonce(nr.clone()),
        ];
        if let Some(dh) = &dh {
            out.push(Payload::Ke {
                group: dh.group().id(),
                data: dh.public(),
            });
        }
        out.push(Payload::TsI(n_i.clone()));
        out.push(Payload::TsR(n_r.clone()));
        self.respond(id, ExchangeType::CreateChildSa, mid, &out);
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        // §2.8.1: our own rekey of the same SA is outstanding.
        let ours_pending = sa.pending.as_ref().is_some_and(|p| {
            matches!(p.exchange, Some(Outstanding::Child { old_inbound: o, .. }) if o == old_inbound)
        });
        if ours_pending {
            sa.collision = Some(Collision {
                old_inbound,
                min_nonce: smaller(&ni, &nr).to_vec(),
            });
        }
        if let Some(old) = sa
            .children
            .iter_mut()
            .find(|ch| ch.inbound_spi == old_inbound)
        {
            old.state = ChildState::Replaced;
            old.successor = Some(new_inbound);
        }
        tracing::info!(connection = %c.name, old = %format_args!("{old_inbound:08x}"), new = %format_args!("{new_inbound:08x}"), "CHILD SA rekeyed (responder)");
        self.install_child(
            now,
            id,
            NewChild {
                proposal: chosen,
                inbound_spi: new_inbound,
                outbound_spi: peer_spi,
                local_ts: n_r,
                remote_ts: n_i,
                g_ir,
                ni,
                nr,
                we_initiated: false,
                // Held until the initiator deletes the old SA: by then it
                // has installed the new one (make-before-break).
                activate: false,
            },
        );
    }

    fn answer_ike_rekey(&mut self, now: Instant, id: [u8; 8], mid: u32, payloads: &[Payload]) {
        let fail = |ep: &mut Self, kind: NotifyType, data: Vec<u8>| {
            ep.respond(id, ExchangeType::CreateChildSa, mid, &[notify(kind, data)])
        };
        let Some(sa) = self.sas.get(&id) else { return };
        let Some(c) = self.cfg.connections.get(sa.conn).cloned() else {
            return;
        };
        let f = Found::of(payloads);
        let (sa_p, ni, ke) = (f.sa, f.nonce.map(<[u8]>::to_vec), f.ke);
        let (Some(sa_p), Some(ni), Some((group, ke_data))) = (sa_p, ni, ke) else {
            return fail(self, NotifyType::InvalidSyntax, vec![]);
        };
        if let Some(Outstanding::Ike { ni: ours, .. }) =
            sa.pending.as_ref().and_then(|p| p.exchange.as_ref())
        {
            // Both sides rekey the IKE SA: the exchange with the larger
            // initiator nonce proceeds; the other side is told to wait.
            if ni < *ours {
                return fail(self, NotifyType::TemporaryFailure, vec![]);
            }
        }
        let Some((chosen, num)) = proposal::select_ike(&c.ike_proposals, &sa_p.proposals) else {
            return fail(self, NotifyType::NoProposalChosen, vec![]);
        };
        let Some(peer_spi) = sa_p
            .proposals
            .iter()
            .find(|p| p.num == num)
            .and_then(|p| <[u8; 8]>::try_from(p.spi.as_slice()).ok())
        else {
            return fail(self, NotifyType::InvalidSyntax, vec![]);
        };
        if group != chosen.dh.id() {
            return fail(
                self,
                NotifyType::InvalidKePayload,
                chosen.dh.id().to_be_bytes().to_vec(),
            );
        }
        let dh = DhSecret::generate(chosen.dh, &mut *self.rng);
        let Ok(g_ir) = dh.agree(ke_data) else {
            return fail(self, NotifyType::InvalidSyntax, vec![]);
        };
        let new_spi = self.random_spi8();
        let nr = self.nonce();
        let Some(sa) = self.sas.get(&id) else { return };
        let (Some(old_p), Some(old_keys)) = (sa.proposal, sa.keys.as_ref()) else {
            return;
        };
        // §2.18: the exchange initiator's new SPI is SPIi of the new SA.
        let keys = IkeKeys::derive_rekey(
            old_p.prf,
            &old_keys.sk_d,
            chosen.prf,
            chosen.cipher,
            chosen.integ_key_len(),
            &g_ir,
            &ni,
            &nr,
            &peer_spi,
            &new_spi,
        );
        let out = vec![
            Payload::Sa(SaPayload {
                proposals: vec![chosen.to_wire(num, new_spi.to_vec())],
            }),
            Payload::Nonce(nr.clone()),
            Payload::Ke {
                group: chosen.dh.id(),
                data: dh.public(),
            },
        ];
        self.respond(id, ExchangeType::CreateChildSa, mid, &out);
        tracing::info!(connection = %c.name, "IKE SA rekeyed (responder)");
        self.replace_ike_sa(
            now,
            id,
            Role::Responder,
            peer_spi,
            new_spi,
            chosen,
            keys,
            ni,
            nr,
        );
        // The initiator of the rekey deletes the old IKE SA (§1.3.2).
        if let Some(old) = self.sas.get_mut(&id) {
            old.rekeyed = true;
        }
    }

    /// The response to our CREATE_CHILD_SA.
    pub(super) fn on_rekey_response(
        &mut self,
        now: Instant,
        id: [u8; 8],
        ex: Outstanding,
        payloads: &[Payload],
    ) {
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let Some(c) = self.cfg.connections.get(sa.conn).cloned() else {
            return;
        };
        if let Some(err) = first_error(payloads) {
            tracing::info!(connection = %c.name, ?err, "the peer refused our rekey; trying again later");
            match ex {
                Outstanding::Child { old_inbound, .. } => {
                    if err != NotifyType::ChildSaNotFound {
                        if let Some(ch) = sa
                            .children
                            .iter_mut()
                            .find(|ch| ch.inbound_spi == old_inbound)
                        {
                            ch.rekey_at = Some(now + REKEY_RETRY);
                        }
                    }
                }
                Outstanding::Ike { .. } => sa.rekey_at = Some(now + REKEY_RETRY),
            }
            sa.collision = None;
            return;
        }
        match ex {
            Outstanding::Child {
                old_inbound,
                new_inbound,
                ni,
                dh,
            } => self.finish_child_rekey(now, id, &c, old_inbound, new_inbound, ni, dh, payloads),
            Outstanding::Ike { new_spi, ni, dh } => {
                self.finish_ike_rekey(now, id, &c, new_spi, ni, dh, payloads)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_child_rekey(
        &mut self,
        now: Instant,
        id: [u8; 8],
        c: &ConnectionConfig,
        old_inbound: u32,
        new_inbound: u32,
        ni: Vec<u8>,
        dh: Option<DhSecret>,
        payloads: &[Payload],
    ) {
        let f = Found::of(payloads);
        let chosen = f.chosen().and_then(EspProposal::from_chosen);
        let (nr, ke) = (f.nonce.map(<[u8]>::to_vec), f.ke.map(|(_, d)| d));
        let (tsi, tsr) = (f.ts_i.map(<[_]>::to_vec), f.ts_r.map(<[_]>::to_vec));
        let (Some((chosen, peer_spi)), Some(nr), Some(tsi), Some(tsr)) = (chosen, nr, tsi, tsr)
        else {
            self.counters.malformed += 1;
            return;
        };
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        let old = sa.children.iter().find(|ch| ch.inbound_spi == old_inbound);
        let offered_ok = c.esp_proposals.contains(&chosen)
            && old.is_some_and(|o| subset(&tsi, &o.local_ts) && subset(&tsr, &o.remote_ts));
        let g_ir = match (&dh, ke) {
            (Some(dh), Some(data)) => dh.agree(data).ok(),
            (None, None) => None,
            _ => {
                sa.collision = None;
                return;
            }
        };
        if !offered_ok || (dh.is_some() && g_ir.is_none()) {
            tracing::warn!(connection = %c.name, "the peer's rekey response does not match our request");
            sa.collision = None;
            return;
        }
        // §2.8.1: with a collision, the exchange holding the smallest of the
        // four nonces is redundant; its initiator deletes what it created.
        let lost = match sa.collision.take() {
            Some(col) if col.old_inbound == old_inbound => {
                smaller(&ni, &nr) < col.min_nonce.as_slice()
            }
            _ => false,
        };
        if !lost {
            if let Some(o) = sa
                .children
                .iter_mut()
                .find(|ch| ch.inbound_spi == old_inbound)
            {
                o.state = ChildState::Replaced;
                o.successor = None;
            }
        }
        tracing::info!(connection = %c.name, old = %format_args!("{old_inbound:08x}"), new = %format_args!("{new_inbound:08x}"), redundant = lost, "CHILD SA rekeyed (initiator)");
        self.install_child(
            now,
            id,
            NewChild {
                proposal: chosen,
                inbound_spi: new_inbound,
                outbound_spi: peer_spi,
                local_ts: tsi,
                remote_ts: tsr,
                g_ir,
                ni,
                nr,
                we_initiated: true,
                activate: !lost,
            },
        );
        if lost {
            self.request(now, id, RequestKind::DeleteChild(new_inbound));
        } else {
            self.request(now, id, RequestKind::DeleteChild(old_inbound));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_ike_rekey(
        &mut self,
        now: Instant,
        id: [u8; 8],
        c: &ConnectionConfig,
        new_spi: [u8; 8],
        ni: Vec<u8>,
        dh: DhSecret,
        payloads: &[Payload],
    ) {
        let f = Found::of(payloads);
        let (chosen, nr, ke) = (
            f.chosen(),
            f.nonce.map(<[u8]>::to_vec),
            f.ke.map(|(_, d)| d),
        );
        let (Some(wire), Some(nr), Some(ke)) = (chosen, nr, ke) else {
            self.counters.malformed += 1;
            return;
        };
        let (Some(prop), Ok(peer_spi)) = (
            IkeProposal::from_chosen(wire),
            <[u8; 8]>::try_from(wire.spi.as_slice()),
        ) else {
            self.counters.malformed += 1;
            return;
        };
        let Ok(g_ir) = dh.agree(ke) else { return };
        if !c.ike_proposals.contains(&prop) || prop.dh != dh.group() {
            tracing::warn!(connection = %c.name, "the peer's IKE rekey response chose what we did not offer");
            return;
        }
        let Some(sa) = self.sas.get(&id) else { return };
        let (Some(old_p), Some(old_keys)) = (sa.proposal, sa.keys.as_ref()) else {
            return;
        };
        let keys = IkeKeys::derive_rekey(
            old_p.prf,
            &old_keys.sk_d,
            prop.prf,
            prop.cipher,
            prop.integ_key_len(),
            &g_ir,
            &ni,
            &nr,
            &new_spi,
            &peer_spi,
        );
        tracing::info!(connection = %c.name, "IKE SA rekeyed (initiator)");
        self.replace_ike_sa(
            now,
            id,
            Role::Initiator,
            new_spi,
            peer_spi,
            prop,
            keys,
            ni,
            nr,
        );
        // We started it, so we delete the old IKE SA (§1.3.2).
        if let Some(old) = self.sas.get_mut(&id) {
            old.rekeyed = true;
            old.pending = None;
            old.queued.clear();
        }
        self.request(now, id, RequestKind::DeleteIke);
        self.remove(id, DownReason::Rekeyed);
    }

    /// Creates the IKE SA that replaces `old` and moves its CHILD SAs over.
    #[allow(clippy::too_many_arguments)]
    fn replace_ike_sa(
        &mut self,
        now: Instant,
        old: [u8; 8],
        role: Role,
        spi_i: [u8; 8],
        spi_r: [u8; 8],
        proposal: IkeProposal,
        keys: IkeKeys,
        ni: Vec<u8>,
        nr: Vec<u8>,
    ) {
        let Some((c_out, c_in)) = crypters(&proposal, &keys, role) else {
            return;
        };
        let Some(o) = self.sas.get_mut(&old) else {
            return;
        };
        let children = std::mem::take(&mut o.children);
        let sa = IkeSa {
            conn: o.conn,
            role,
            state: State::Established,
            spi_i,
            spi_r,
            local: o.local,
            remote: o.remote,
            proposal: Some(proposal),
            dh: None,
            ni,
            nr,
            cookie: None,
            keys: Some(keys),
            crypter_out: Some(c_out),
            crypter_in: Some(c_in),
            init_request: Vec::new(),
            init_response: Vec::new(),
            next_iv: 0,
            next_request_id: 0,
            peer_next_id: 0,
            pending: None,
            queued: VecDeque::new(),
            last_response: None,
            offered_child_spi: 0,
            children,
            nat: o.nat,
            created: now,
            established: Some(now),
            last_heard: now,
            rekey_at: None,
            collision: None,
            rekeyed: false,
            behind_nat: o.behind_nat,
            next_keepalive: o.next_keepalive,
        };
        let (conn, peer) = (sa.conn, sa.remote);
        let new_id = sa.our_spi();
        self.sas.insert(new_id, sa);
        self.fresh.push(new_id);
        self.schedule_ike_rekey(now, new_id);
        self.events.push_back(Event::IkeUp {
            conn,
            ike: new_id,
            peer,
            proposal,
        });
    }
}
