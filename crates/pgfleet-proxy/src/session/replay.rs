//! Replaying a read on another server when its replica fails before answering: the replica was
//! killed, shut down or restarted between the checkout and the answer. Nothing of the read has
//! reached the client and a read changes nothing, so sending it again elsewhere is invisible to
//! the client — the same thing a driver's retry would do, done where it is known to be safe.

use bytes::BytesMut;
use pgfleet_wire::frontend::decode_parse;
use pgfleet_wire::tag::frontend as t;
use pgfleet_wire::Frame;

use crate::client::ClientConn;

/// How often one request is replayed before its error goes to the client.
pub(super) const MAX_REPLAYS: u8 = 2;

/// A read sent to a replica, kept until its transaction ends so it can be sent again.
pub(super) struct ReadReplay {
    /// The request's messages: the one that opened it, then the rest up to its end.
    request: BytesMut,
    /// Length of the opening message within `request`.
    first_len: usize,
    /// The client's consumed-bytes counter when the request was routed (opening message taken).
    consumed_at: u64,
    /// The client's written-bytes counter then.
    written_at: u64,
    /// The replica it went to.
    pub(super) endpoint: usize,
}

impl ReadReplay {
    /// A replay point for the read `first` opens, whose remaining messages (`rest`) are all
    /// buffered; `None` when some message has effects a second run would repeat or trip over
    /// (a named Parse or a Close changes the session's statement table).
    pub(super) fn new(
        first: &Frame,
        rest: &[Frame],
        client: &ClientConn,
        endpoint: usize,
    ) -> Option<ReadReplay> {
        let replayable = |f: &Frame| match f.tag() {
            t::QUERY | t::BIND | t::DESCRIBE | t::EXECUTE | t::SYNC | t::FLUSH => true,
            t::PARSE => decode_parse(f).is_ok_and(|p| p.name.is_empty()),
            _ => false,
        };
        if !replayable(first) || !rest.iter().all(replayable) {
            return None;
        }
        let mut request = BytesMut::with_capacity(
            first.raw().len() + rest.iter().map(|f| f.raw().len()).sum::<usize>(),
        );
        request.extend_from_slice(first.raw());
        for f in rest {
            request.extend_from_slice(f.raw());
        }
        Some(ReadReplay {
            request,
            first_len: first.raw().len(),
            consumed_at: client.consumed,
            written_at: client.written,
            endpoint,
        })
    }

    /// True while nothing has been written to the client since the read was routed and no
    /// message beyond the read's own has been taken from it.
    pub(super) fn applies(&self, client: &ClientConn) -> bool {
        client.written == self.written_at
            && client.consumed.saturating_sub(self.consumed_at)
                <= (self.request.len() - self.first_len) as u64
    }

    /// Puts the read's messages that were already taken back in front of the client's buffer.
    pub(super) fn restore(self, client: &mut ClientConn) {
        let taken = client.consumed.saturating_sub(self.consumed_at) as usize;
        let end = (self.first_len + taken).min(self.request.len());
        client.unread(&self.request[..end]);
    }
}
