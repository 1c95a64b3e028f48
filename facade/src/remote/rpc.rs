//! Request/reply across peers.
//!
//! A peer's servers and clients become proxies in the node's *services*
//! linker, as its publishers and subscribers do in the topics linker:
//!
//! - a peer's server is a [`PeerServer`]; a local client that links to it
//!   gets a [`RemoteServer`] (its erased face) and sends each call through
//!   the peer's [`RpcQueues`]: the driver encodes it as a request frame and
//!   completes the caller when the reply (or the peer's end) comes;
//! - a peer's client is a [`PeerClient`]; it links to local servers through
//!   their erased face ([`ErasedServer`]: validate, decode, queue without
//!   waiting) and answers each request once, through a [`RemoteReply`].
//!
//! Every reply payload a node sends ends with one outcome byte
//! ([`ReplyCode`]); before it, the archived response or a UTF-8 text. The
//! archive starts where the payload starts, so it stays aligned and is read
//! in place.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use dndm_codec::{FrameBuffer, FrameHeader, FrameKind, Message};
use dndm_core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use dndm_router::{IntentPort, InterestId, InterestPort, LinkInfo, PortError, Route};
use parking_lot::Mutex;

use super::ports::PeerShared;

/// The outcome byte that ends a reply payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ReplyCode {
    /// The archived response precedes the code.
    Reply = 0,
    /// The handler panicked; its message precedes the code.
    Panicked = 1,
    /// No server took the request (none linked, or it went away).
    NoServer = 2,
    /// The server's queue was full.
    Busy = 3,
    /// The request could not be read or the reply not written; the reason
    /// precedes the code.
    Invalid = 4,
}

impl ReplyCode {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Reply,
            1 => Self::Panicked,
            2 => Self::NoServer,
            3 => Self::Busy,
            4 => Self::Invalid,
            _ => return None,
        })
    }
}

/// Longest text (a panic message, a reason) carried in a reply.
const MAX_REPLY_TEXT: usize = 1024;

/// `msg` archived with rkyv, as a frame payload would carry it.
pub(crate) fn encode_archive<T: Message>(msg: &T) -> Result<Vec<u8>, String> {
    let mut buf = FrameBuffer::new();
    buf.push_message(&FrameHeader::new(FrameKind::Data, 0), msg)
        .map_err(|e| e.to_string())?;
    match dndm_codec::frames(buf.as_bytes()).next() {
        Some(Ok(frame)) => Ok(frame.payload().to_vec()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the encoder produced no frame".to_owned()),
    }
}

/// Validates and deserialises an archive of `T` (untrusted bytes).
pub(crate) fn decode_archive<T: Message>(payload: &[u8]) -> Result<T, String> {
    let archived = dndm_codec::access::<T>(payload).map_err(|e| e.to_string())?;
    dndm_codec::deserialize::<T>(archived).map_err(|e| e.to_string())
}

/// A reply payload split into its outcome and the bytes before it.
pub(crate) fn split_reply(payload: &[u8]) -> Option<(ReplyCode, &[u8])> {
    let (&code, body) = payload.split_last()?;
    Some((ReplyCode::from_byte(code)?, body))
}

fn text_body(text: &str) -> Vec<u8> {
    let mut end = text.len().min(MAX_REPLY_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.as_bytes()[..end].to_vec()
}

// ---------------------------------------------------------------------------
// Calls from local clients to a peer's servers

/// Why a call to a peer ended without a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallFailure {
    /// The peer left, or the call could not be queued for it.
    PeerGone(String),
    /// As many calls to the peer are pending as its limits allow.
    Busy,
    /// The request could not be sent (too large, refused by the session).
    Rejected(String),
}

/// What a caller is told.
pub(crate) enum Answer<'a> {
    /// The peer's reply payload (outcome byte last).
    Reply(&'a [u8]),
    /// No reply will come.
    Failed(CallFailure),
}

/// Completes one remote call exactly once; dropped uncompleted, it tells
/// the caller that the peer went away.
pub(crate) struct Completion(Option<CompleteFn>);

type CompleteFn = Box<dyn FnOnce(Answer<'_>) + Send>;

impl Completion {
    pub(crate) fn new(f: impl FnOnce(Answer<'_>) + Send + 'static) -> Self {
        Self(Some(Box::new(f)))
    }

    pub(crate) fn complete(mut self, answer: Answer<'_>) {
        if let Some(f) = self.0.take() {
            f(answer);
        }
    }

    /// Drops the completion without calling it: the caller learns the
    /// outcome another way.
    pub(crate) fn cancel(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Answer::Failed(CallFailure::PeerGone(
                "the call was dropped before a reply".to_owned(),
            )));
        }
    }
}

/// One call on its way to a peer.
pub(crate) struct OutCall {
    /// The client's route and fingerprint: the session's alias for them
    /// carries the request.
    pub(crate) route: Route,
    pub(crate) fingerprint: u64,
    pub(crate) payload: Vec<u8>,
    /// On the driver's clock; past it the call is forgotten (its caller
    /// gave up) and a late reply is dropped.
    pub(crate) deadline: Option<Duration>,
    pub(crate) complete: Completion,
}

/// Calls and replies between one peer's driver side and this node's callers
/// and servers. Both queues are bounded: calls by the peer's pending limit,
/// replies by the requests the session accepted.
pub(crate) struct RpcQueues {
    calls: Mutex<VecDeque<OutCall>>,
    replies: Mutex<Vec<(u64, Vec<u8>)>>,
    /// Set when the peer ends; nothing is queued after.
    closed: AtomicBool,
    max_calls: usize,
}

impl RpcQueues {
    pub(crate) fn new(max_calls: usize) -> Self {
        Self {
            calls: Mutex::new(VecDeque::new()),
            replies: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            max_calls: max_calls.max(1),
        }
    }

    /// Queues a call. On failure its completion is dropped uncalled: the
    /// caller learns the reason from the error.
    fn call(&self, c: OutCall) -> Result<(), CallFailure> {
        let mut calls = self.calls.lock();
        let refused = if self.closed.load(Ordering::Acquire) {
            CallFailure::PeerGone("the peer left".to_owned())
        } else if calls.len() >= self.max_calls {
            CallFailure::Busy
        } else {
            calls.push_back(c);
            return Ok(());
        };
        drop(calls);
        c.complete.cancel();
        Err(refused)
    }

    pub(crate) fn take_calls(&self) -> VecDeque<OutCall> {
        std::mem::take(&mut *self.calls.lock())
    }

    pub(crate) fn take_replies(&self) -> Vec<(u64, Vec<u8>)> {
        std::mem::take(&mut *self.replies.lock())
    }

    fn reply(&self, correlation: u64, payload: Vec<u8>) -> bool {
        let mut replies = self.replies.lock();
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        replies.push((correlation, payload));
        true
    }

    /// Refuses everything from now on; returns the calls still queued (the
    /// caller completes them) and drops unsent replies.
    pub(crate) fn close(&self) -> VecDeque<OutCall> {
        let mut calls = self.calls.lock();
        self.closed.store(true, Ordering::Release);
        self.replies.lock().clear();
        std::mem::take(&mut *calls)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A peer's server, registered in the node's services linker. Local clients
/// link to it through [`RemoteServer`], its erased face.
pub(crate) struct PeerServer {
    pub(crate) server: RemoteServer,
}

impl InterestPort for PeerServer {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn erased(&self) -> Option<&dyn std::any::Any> {
        Some(&self.server)
    }
}

/// What a local client holds to call a peer's server.
#[derive(Clone)]
pub(crate) struct RemoteServer {
    pub(crate) peer: Arc<PeerShared>,
}

impl RemoteServer {
    /// Checks the node's export filter for the client's route.
    pub(crate) fn admits(&self, route: &Route) -> bool {
        self.peer.export.allows_route(route)
    }

    /// The peer's name (or address before its hello).
    pub(crate) fn peer_name(&self) -> String {
        self.peer.name()
    }

    /// Queues `call` for the driver; on failure its completion is not
    /// called (the error says why).
    pub(crate) fn call(&self, call: OutCall) -> Result<(), CallFailure> {
        self.peer.rpc.call(call)?;
        self.peer.waker.wake_by_ref();
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Requests from a peer's clients to local servers

/// Where one request from a peer is answered, exactly once. Dropped
/// unanswered (the server went away), it answers [`ReplyCode::NoServer`].
pub(crate) struct RemoteReply {
    peer: Option<Arc<PeerShared>>,
    correlation: u64,
}

impl RemoteReply {
    pub(crate) fn new(peer: Arc<PeerShared>, correlation: u64) -> Self {
        Self {
            peer: Some(peer),
            correlation,
        }
    }

    /// The peer left: nobody reads the answer.
    pub(crate) fn abandoned(&self) -> bool {
        self.peer.as_ref().is_none_or(|p| p.rpc.is_closed())
    }

    /// Answers with `body` then `code`. False if the peer left.
    pub(crate) fn send(mut self, code: ReplyCode, mut body: Vec<u8>) -> bool {
        let Some(peer) = self.peer.take() else {
            return false;
        };
        body.push(code as u8);
        let queued = peer.rpc.reply(self.correlation, body);
        peer.waker.wake_by_ref();
        queued
    }

    /// Answers with a failure and its reason.
    pub(crate) fn fail(self, code: ReplyCode, reason: &str) -> bool {
        self.send(code, text_body(reason))
    }
}

impl Drop for RemoteReply {
    fn drop(&mut self) {
        if let Some(peer) = self.peer.take() {
            let mut body = text_body("the server went away");
            body.push(ReplyCode::NoServer as u8);
            peer.rpc.reply(self.correlation, body);
            peer.waker.wake_by_ref();
        }
    }
}

/// A local server's face toward peers: takes a request's bytes and queues
/// it without waiting (the driver thread calls it).
pub(crate) trait RequestSink: Send + Sync {
    /// Validates and decodes `payload`, then queues it on the server;
    /// `reply` answers it (at once when the request is refused).
    fn submit(&self, payload: &[u8], reply: RemoteReply);
}

/// What a server port returns from [`InterestPort::erased`].
pub(crate) struct ErasedServer(pub(crate) Arc<dyn RequestSink>);

/// A peer's client, registered in the node's services linker: it links to
/// local servers and hands each request to one of them, round-robin.
#[derive(Default)]
pub(crate) struct PeerClient {
    servers: Mutex<Vec<(InterestId, Arc<dyn RequestSink>)>>,
    next: AtomicUsize,
}

impl PeerClient {
    /// Hands one request to a linked server, or answers that none is here.
    pub(crate) fn submit(&self, payload: &[u8], reply: RemoteReply) {
        let server = {
            let servers = self.servers.lock();
            if servers.is_empty() {
                None
            } else {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % servers.len();
                Some(Arc::clone(&servers[i].1))
            }
        };
        match server {
            Some(s) => s.submit(payload, reply),
            None => {
                reply.fail(ReplyCode::NoServer, "no server on this route");
            }
        }
    }
}

impl IntentPort for PeerClient {
    fn connect(&self, interest: &dyn InterestPort, link: LinkInfo<'_>) -> Result<(), PortError> {
        let server = interest
            .erased()
            .and_then(|e| e.downcast_ref::<ErasedServer>())
            .ok_or(PortError::Incompatible)?;
        self.servers
            .lock()
            .push((link.interest, Arc::clone(&server.0)));
        Ok(())
    }

    fn disconnect(&self, _: &dyn InterestPort, link: LinkInfo<'_>) {
        let removed = {
            let mut servers = self.servers.lock();
            servers
                .iter()
                .position(|(id, _)| *id == link.interest)
                .map(|i| servers.swap_remove(i))
        };
        drop(removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_payloads_end_with_their_code() {
        assert_eq!(
            split_reply(&[1, 2, 3, 0]),
            Some((ReplyCode::Reply, &[1u8, 2, 3][..]))
        );
        assert_eq!(split_reply(&[4]), Some((ReplyCode::Invalid, &[][..])));
        assert_eq!(split_reply(&[]), None);
        assert_eq!(split_reply(&[9, 9, 5]), None);
        for code in [
            ReplyCode::Reply,
            ReplyCode::Panicked,
            ReplyCode::NoServer,
            ReplyCode::Busy,
            ReplyCode::Invalid,
        ] {
            assert_eq!(ReplyCode::from_byte(code as u8), Some(code));
        }
    }

    #[test]
    fn reply_texts_are_bounded_on_a_char_boundary() {
        let long = "é".repeat(MAX_REPLY_TEXT);
        let body = text_body(&long);
        assert!(body.len() <= MAX_REPLY_TEXT);
        assert!(std::str::from_utf8(&body).is_ok());
        assert_eq!(text_body("short"), b"short");
    }

    #[derive(
        rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, dndm_codec::Message, Debug, PartialEq,
    )]
    #[message(name = "rpc.Text")]
    struct Text {
        text: String,
    }

    #[test]
    fn archives_round_trip_and_garbage_is_refused() {
        let msg = Text {
            text: "ping".to_owned(),
        };
        let bytes = encode_archive(&msg).expect("encodes");
        assert_eq!(decode_archive::<Text>(&bytes), Ok(msg));
        assert!(decode_archive::<Text>(&[0xff; 3]).is_err());
    }
}
