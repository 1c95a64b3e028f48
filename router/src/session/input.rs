//! The input side of the session: frames from the peer.

use std::fmt;
use std::time::Duration;

use dndm_codec::{FrameHeader, FrameKind, frame_len};

use super::alias::flags_generation;
use super::config::check_interest_limits;
use super::error::limit;
use super::wire::{self, Reader};
use super::*;

impl Session {
    /// Handles one frame from the peer at time `now`.
    ///
    /// Data, requests and replies come back as [`Inbound`] (the payload is
    /// `payload`); control frames produce events. Frames for unknown or
    /// stale aliases are dropped (`Ok(None)`) and counted. An `Err` means the
    /// session is now closed: a goodbye is queued and the events report the
    /// withdrawals and the close.
    pub fn handle_frame(
        &mut self,
        now: Duration,
        header: &FrameHeader,
        payload: &[u8],
    ) -> Result<Option<Inbound>, SessionError> {
        if self.state == State::Closed {
            self.stats.dropped_after_close += 1;
            return Ok(None);
        }
        self.stats.frames_in += 1;
        self.last_rx = now;
        let len = frame_len(payload.len());
        if len > self.max_frame_len {
            return Err(self.fail(now, limit(LimitKind::FrameLength, len, self.max_frame_len)));
        }
        let result = match (self.state, header.kind) {
            (State::Handshake, FrameKind::Control) => {
                self.handle_hello(now, payload).map(|()| None)
            }
            (State::Handshake, kind) => Err(SessionErrorKind::BeforeHandshake { kind }),
            (_, FrameKind::Control) => self.handle_control(now, payload).map(|()| None),
            (_, FrameKind::Data) => self.resolve(now, header, Space::Topic).map(|found| {
                found.map(|intent| Inbound::Data {
                    intent,
                    header: *header,
                })
            }),
            (_, FrameKind::Request) => self.handle_request(now, header),
            (_, FrameKind::Reply) => Ok(self.handle_reply(header)),
            (_, kind) => Err(SessionErrorKind::UnexpectedKind(kind)),
        };
        result.map_err(|kind| self.fail(now, kind))
    }

    fn handle_hello(&mut self, now: Duration, payload: &[u8]) -> Result<(), SessionErrorKind> {
        let mut r = Reader::new(payload, "hello");
        let ty = r.u8("type").map_err(SessionErrorKind::Malformed)?;
        if ty != wire::MSG_HELLO {
            return Err(SessionErrorKind::BeforeHandshake {
                kind: FrameKind::Control,
            });
        }
        let m = SessionErrorKind::Malformed;
        let version = r.u16("version").map_err(m)?;
        if version != SESSION_PROTOCOL_VERSION {
            return Err(SessionErrorKind::VersionMismatch {
                ours: SESSION_PROTOCOL_VERSION,
                theirs: version,
            });
        }
        let endian = r.u8("endianness").map_err(m)?;
        let pointer_width = r.u8("pointer width").map_err(m)?;
        let align = r.u8("alignment").map_err(m)?;
        let _reserved = r.u8("reserved").map_err(m)?;
        let theirs = ArchiveFormat {
            little_endian: endian == 1,
            pointer_width,
            aligned: align == 1,
        };
        if !matches!(endian, 1 | 2) || align > 1 || theirs != self.config.archive_format {
            return Err(SessionErrorKind::ArchiveFormat {
                ours: self.config.archive_format,
                theirs,
            });
        }
        let node_id = NodeId::from_bytes(r.array("node id").map_err(m)?);
        let capabilities = r.u64("capabilities").map_err(m)?;
        let limits = Limits {
            max_frame_len: r.u32("max frame length").map_err(m)?,
            max_declarations: r.u32("max declarations").map_err(m)?,
            max_pattern_segments: r.u8("max pattern segments").map_err(m)?,
            max_pattern_wildcards: r.u8("max pattern wildcards").map_err(m)?,
            max_name_len: r.u16("max name length").map_err(m)?,
            max_pending_requests: r.u32("max pending requests").map_err(m)?,
        };
        if limits.max_frame_len < MIN_FRAME_LEN {
            return Err(m(
                r.error("max frame length", "below the protocol minimum of 8192")
            ));
        }
        let idle_timeout = Duration::from_millis(u64::from(r.u32("idle timeout").map_err(m)?));
        let max = usize::from(self.config.limits.max_name_len);
        let name = r.str("name", usize::from(u16::MAX)).map_err(m)?;
        if name.len() > max {
            return Err(limit(LimitKind::NameLength, name.len(), max));
        }
        let name = name.to_owned();
        let path = r.str("path", usize::from(u16::MAX)).map_err(m)?;
        let path = if path.is_empty() {
            None
        } else {
            Some(
                Path::new(path).map_err(|e| SessionErrorKind::InvalidDeclaration {
                    text: path.to_owned(),
                    reason: e.to_string(),
                })?,
            )
        };
        r.finish().map_err(m)?;

        let max_frame_len = limits.max_frame_len.min(self.config.limits.max_frame_len);
        self.max_frame_len = max_frame_len as usize;
        if !idle_timeout.is_zero() {
            // A peer cannot make us ping more often than every 10 ms.
            self.keepalive = self
                .config
                .keepalive_interval
                .min(idle_timeout / 3)
                .max(MIN_KEEPALIVE);
        }
        self.peer_label = format!("{name:?} ({node_id})");
        let info = PeerInfo {
            node_id,
            name,
            path,
            capabilities,
            limits,
            idle_timeout,
            max_frame_len,
        };
        self.peer = Some(info.clone());
        self.state = State::Established;
        self.events.push_back(Event::Connected(info));

        // Everything declared so far, batched (D12: declarations made before
        // the peer connected are advertised too).
        let mut pending = Vec::new();
        for (a, i) in self.intents.iter() {
            self.check_peer_limits(&i.route.to_string(), None, 0)
                .map_err(|(what, value, limit)| peer_limit(what, value, limit))?;
            pending.push(Update::DeclareIntent(a));
        }
        for (a, i) in self.interests.iter() {
            self.check_peer_limits(&i.selector.to_string(), Some(&i.selector), 0)
                .map_err(|(what, value, limit)| peer_limit(what, value, limit))?;
            pending.push(Update::DeclareInterest(a));
        }
        self.updates = pending;
        self.flush_updates(now);
        Ok(())
    }

    fn handle_control(&mut self, now: Duration, payload: &[u8]) -> Result<(), SessionErrorKind> {
        let m = SessionErrorKind::Malformed;
        let mut r = Reader::new(payload, "control");
        match r.u8("type").map_err(m)? {
            wire::MSG_HELLO => Err(SessionErrorKind::DuplicateHello),
            wire::MSG_UPDATE => {
                r.set_message("update");
                let count = r.u16("count").map_err(m)?;
                for _ in 0..count {
                    self.handle_update_entry(&mut r)?;
                }
                r.finish().map_err(m)
            }
            wire::MSG_PING => {
                r.set_message("ping");
                let t1 = r.u64("t1").map_err(m)?;
                r.finish().map_err(m)?;
                let t = ns(now);
                self.control(now, |w| {
                    w.u8(wire::MSG_PONG).u64(t1).u64(t).u64(t);
                });
                Ok(())
            }
            wire::MSG_PONG => {
                r.set_message("pong");
                let t1 = r.u64("t1").map_err(m)?;
                let t2 = r.u64("t2").map_err(m)?;
                let t3 = r.u64("t3").map_err(m)?;
                r.finish().map_err(m)?;
                self.handle_pong(now, t1, t2, t3);
                Ok(())
            }
            wire::MSG_GOODBYE => {
                r.set_message("goodbye");
                let code = r.u16("code").map_err(m)?;
                let reason = r.str("reason", MAX_REASON_LEN).map_err(m)?.to_owned();
                r.finish().map_err(m)?;
                self.finish(CloseReason::Peer { code, reason });
                Ok(())
            }
            other => Err(SessionErrorKind::UnknownMessage(other)),
        }
    }

    fn handle_pong(&mut self, now: Duration, t1: u64, t2: u64, t3: u64) {
        let Some(pos) = self.pings.iter().position(|&t| t == t1) else {
            return;
        };
        self.pings.drain(..=pos);
        let t4 = ns(now);
        let (t1, t2, t3, t4) = (
            i128::from(t1),
            i128::from(t2),
            i128::from(t3),
            i128::from(t4),
        );
        let rtt = ((t4 - t1) - (t3 - t2)).max(0);
        let rtt = Duration::from_nanos(u64::try_from(rtt).unwrap_or(u64::MAX));
        let offset = ((t2 - t1) + (t3 - t4)) / 2;
        let s = &mut self.stats;
        s.pongs += 1;
        s.rtt = Some(rtt);
        s.min_rtt = Some(s.min_rtt.map_or(rtt, |m| m.min(rtt)));
        s.smoothed_rtt = Some(s.smoothed_rtt.map_or(rtt, |m| (m * 7 + rtt) / 8));
        s.clock_offset_ns =
            Some(i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX }));
    }

    fn handle_update_entry(&mut self, r: &mut Reader<'_>) -> Result<(), SessionErrorKind> {
        let m = SessionErrorKind::Malformed;
        let op = r.u8("op").map_err(m)?;
        let id = r.u32("id").map_err(m)?;
        let generation = r.u32("generation").map_err(m)?;
        if id == 0 || generation == 0 {
            return Err(m(r.error("id", "id and generation must not be 0")));
        }
        match op {
            wire::OP_DECLARE_INTENT
            | wire::OP_DECLARE_INTEREST
            | wire::OP_DECLARE_CLIENT
            | wire::OP_DECLARE_SERVER => {
                let space = if matches!(op, wire::OP_DECLARE_CLIENT | wire::OP_DECLARE_SERVER) {
                    Space::Service
                } else {
                    Space::Topic
                };
                let fingerprint = r.u64("fingerprint").map_err(m)?;
                let text = r.str("name", usize::from(u16::MAX)).map_err(m)?;
                let max = usize::from(self.config.limits.max_name_len);
                if text.len() > max {
                    return Err(limit(LimitKind::NameLength, text.len(), max));
                }
                let count = self.remote_declaration_count();
                let max = self.config.limits.max_declarations as usize;
                if count >= max {
                    return Err(limit(LimitKind::Declarations, count + 1, max));
                }
                let invalid = |e: &dyn fmt::Display| SessionErrorKind::InvalidDeclaration {
                    text: text.to_owned(),
                    reason: e.to_string(),
                };
                if matches!(op, wire::OP_DECLARE_INTENT | wire::OP_DECLARE_CLIENT) {
                    if self.remote_intents.contains_key(&id) {
                        return Err(SessionErrorKind::DuplicateDeclaration { what: "intent", id });
                    }
                    let route = Route::parse(text).map_err(|e| invalid(&e))?;
                    let accepted = self.config.import.allows_route(&route);
                    let value = RemoteIntent {
                        id: RemoteIntentId {
                            alias: id,
                            generation,
                        },
                        route,
                        fingerprint,
                        space,
                    };
                    if accepted {
                        self.events.push_back(Event::RemoteIntent(value.clone()));
                    } else {
                        self.stats.declarations_filtered += 1;
                    }
                    self.remote_intents.insert(
                        id,
                        RemoteEntry {
                            generation,
                            accepted,
                            value,
                        },
                    );
                } else {
                    if self.remote_interests.contains_key(&id) {
                        return Err(SessionErrorKind::DuplicateDeclaration {
                            what: "interest",
                            id,
                        });
                    }
                    let selector = Selector::parse(text).map_err(|e| invalid(&e))?;
                    check_interest_limits(&selector, &self.config.limits)
                        .map_err(|(what, value, max)| limit(what, value, max))?;
                    let accepted = self.config.import.allows_selector(&selector);
                    let value = RemoteInterest {
                        id: RemoteInterestId { id, generation },
                        selector,
                        fingerprint,
                        space,
                    };
                    if accepted {
                        self.events.push_back(Event::RemoteInterest(value.clone()));
                    } else {
                        self.stats.declarations_filtered += 1;
                    }
                    self.remote_interests.insert(
                        id,
                        RemoteEntry {
                            generation,
                            accepted,
                            value,
                        },
                    );
                }
                Ok(())
            }
            wire::OP_WITHDRAW_INTENT => {
                match self.remote_intents.get(&id) {
                    Some(e) if e.generation == generation => {}
                    _ => {
                        return Err(SessionErrorKind::UnknownWithdraw {
                            what: "intent",
                            id,
                            generation,
                        });
                    }
                }
                if let Some(e) = self.remote_intents.remove(&id)
                    && e.accepted
                {
                    self.events
                        .push_back(Event::Withdrawn(Withdrawn::Intent(e.value)));
                }
                Ok(())
            }
            wire::OP_WITHDRAW_INTEREST => {
                match self.remote_interests.get(&id) {
                    Some(e) if e.generation == generation => {}
                    _ => {
                        return Err(SessionErrorKind::UnknownWithdraw {
                            what: "interest",
                            id,
                            generation,
                        });
                    }
                }
                if let Some(e) = self.remote_interests.remove(&id)
                    && e.accepted
                {
                    self.events
                        .push_back(Event::Withdrawn(Withdrawn::Interest(e.value)));
                }
                Ok(())
            }
            _ => Err(m(r.error("op", "unknown update operation"))),
        }
    }

    /// Resolves the alias of a data (`space` topic) or request (`space`
    /// service) frame; `None` means dropped.
    fn resolve(
        &mut self,
        now: Duration,
        header: &FrameHeader,
        space: Space,
    ) -> Result<Option<RemoteIntentId>, SessionErrorKind> {
        let generation = flags_generation(header.flags);
        match self.remote_intents.get(&header.route) {
            Some(e) if e.generation.to_le_bytes()[0] == generation => {
                if e.value.space != space {
                    self.stats.dropped_wrong_space += 1;
                    self.junk(now).map(|()| None)
                } else if e.accepted {
                    Ok(Some(e.value.id))
                } else {
                    self.stats.dropped_filtered += 1;
                    Ok(None)
                }
            }
            Some(_) => {
                self.stats.dropped_stale_generation += 1;
                self.junk(now).map(|()| None)
            }
            None => {
                self.stats.dropped_unknown_alias += 1;
                self.junk(now).map(|()| None)
            }
        }
    }

    /// Counts a frame for an unknown or stale alias against the flood limit.
    fn junk(&mut self, now: Duration) -> Result<(), SessionErrorKind> {
        let window = self.config.unknown_alias_window;
        if now >= self.junk_window_start.saturating_add(window) {
            self.junk_window_start = now;
            self.junk_count = 0;
        }
        self.junk_count = self.junk_count.saturating_add(1);
        if self.junk_count > self.config.unknown_alias_limit {
            return Err(SessionErrorKind::UnknownAliasFlood {
                count: self.junk_count,
                window,
            });
        }
        Ok(())
    }

    fn handle_request(
        &mut self,
        now: Duration,
        header: &FrameHeader,
    ) -> Result<Option<Inbound>, SessionErrorKind> {
        let correlation = header.correlation;
        if correlation == 0 {
            return Err(SessionErrorKind::MissingCorrelation);
        }
        let Some(intent) = self.resolve(now, header, Space::Service)? else {
            return Ok(None);
        };
        if self.in_requests.contains(&correlation) {
            return Err(SessionErrorKind::DuplicateRequest(correlation));
        }
        let max = self.config.limits.max_pending_requests as usize;
        if self.in_requests.len() >= max {
            return Err(limit(
                LimitKind::PendingRequests,
                self.in_requests.len() + 1,
                max,
            ));
        }
        self.in_requests.insert(correlation);
        Ok(Some(Inbound::Request {
            intent,
            header: *header,
        }))
    }

    fn handle_reply(&mut self, header: &FrameHeader) -> Option<Inbound> {
        if self.out_requests.remove(&header.correlation).is_none() {
            self.stats.dropped_replies += 1;
            return None;
        }
        let generation = flags_generation(header.flags);
        let intent = self
            .remote_intents
            .get(&header.route)
            .filter(|e| e.accepted && e.generation.to_le_bytes()[0] == generation)
            .map(|e| e.value.id);
        Some(Inbound::Reply {
            intent,
            header: *header,
        })
    }
}

fn peer_limit(what: LimitKind, value: usize, limit: usize) -> SessionErrorKind {
    SessionErrorKind::PeerLimit {
        what,
        value: value as u64,
        limit: limit as u64,
    }
}
