//! The server connections of one cross-shard request: one [`Leg`] per shard, each a checked-out
//! server with the answers pgfleet's own preamble (settings, `BEGIN`) will produce first.

use bytes::BytesMut;
use pgfleet_pool::Guard;
use pgfleet_wire::backend::{decode_command_complete, decode_ready_for_query, TxStatus};
use pgfleet_wire::frame::split_frame;
use pgfleet_wire::tag::backend as b;
use pgfleet_wire::Frame;

use crate::server::{ServerConn, ServerError, ServerManager, MAX_SERVER_MESSAGE};

/// One shard's server connection for the duration of a cross-shard request.
pub(crate) struct Leg {
    /// The shard number.
    pub shard: usize,
    /// Its position among the request's legs (the merge's input number).
    pub slot: usize,
    pub guard: Guard<ServerManager>,
    /// pgfleet's own messages to send ahead of the request (settings, `BEGIN`).
    pub pre: BytesMut,
    /// ReadyForQuery messages of pgfleet's own preamble still to swallow.
    pub preamble: usize,
    /// The preamble failed on this server (its error, to report).
    pub preamble_error: Option<Frame>,
    /// The request's answers are complete (its ReadyForQuery arrived).
    pub ready: bool,
    /// The transaction status of that ReadyForQuery.
    pub status: TxStatus,
    /// The request's RowDescription arrived.
    pub described: bool,
    /// The request's CommandComplete (or EmptyQueryResponse) arrived.
    pub completed: bool,
    /// Its CommandComplete tag.
    pub tag: Option<String>,
    /// The first ErrorResponse of the request.
    pub error: Option<Frame>,
    /// The connection broke or is in an unknown state: never back to the pool.
    pub broken: bool,
}

impl Leg {
    pub(crate) fn new(shard: usize, slot: usize, guard: Guard<ServerManager>) -> Leg {
        Leg {
            shard,
            slot,
            guard,
            pre: BytesMut::new(),
            preamble: 0,
            preamble_error: None,
            ready: false,
            status: TxStatus::Idle,
            described: false,
            completed: false,
            tag: None,
            error: None,
            broken: false,
        }
    }

    pub(crate) fn server(&mut self) -> &mut ServerConn {
        &mut self.guard
    }

    /// Starts a new exchange on this connection (answers not yet read).
    pub(crate) fn restart(&mut self) {
        self.ready = false;
        self.described = false;
        self.completed = false;
        self.tag = None;
        self.error = None;
    }

    /// The next complete message already buffered, if any.
    pub(crate) fn buffered_frame(&mut self) -> Result<Option<Frame>, ServerError> {
        let server: &mut ServerConn = &mut self.guard;
        split_frame(&mut server.rbuf, MAX_SERVER_MESSAGE).map_err(|source| ServerError::Protocol {
            addr: server.info.addr.clone(),
            source,
        })
    }

    /// Reads the next message (waiting for the server).
    pub(crate) async fn read_frame(&mut self) -> Result<Frame, ServerError> {
        let server: &mut ServerConn = &mut self.guard;
        server.read_frame().await
    }

    /// The next message: a buffered one, else waits for the server.
    pub(crate) async fn next_frame(&mut self) -> Result<Frame, ServerError> {
        match self.buffered_frame()? {
            Some(f) => Ok(f),
            None => self.read_frame().await,
        }
    }

    /// Sorts out one server message: pgfleet's preamble answers are swallowed here (`None`);
    /// the request's own answers are returned for the caller, with the bookkeeping done.
    pub(crate) fn classify(&mut self, frame: Frame) -> Result<Option<Frame>, ServerError> {
        let addr = || self.guard.info.addr.clone();
        if self.preamble > 0 {
            match frame.tag() {
                b::ERROR_RESPONSE if self.preamble_error.is_none() => {
                    self.preamble_error = Some(frame);
                }
                b::READY_FOR_QUERY => {
                    self.preamble -= 1;
                    // After `BEGIN` the connection is in a transaction even before the request.
                    self.status = decode_ready_for_query(frame.body()).map_err(|source| {
                        ServerError::Protocol {
                            addr: addr(),
                            source,
                        }
                    })?;
                }
                _ => {}
            }
            return Ok(None);
        }
        match frame.tag() {
            b::ROW_DESCRIPTION => self.described = true,
            b::COMMAND_COMPLETE => {
                self.completed = true;
                let tag = decode_command_complete(frame.body()).map_err(|source| {
                    ServerError::Protocol {
                        addr: addr(),
                        source,
                    }
                })?;
                self.tag = Some(tag.to_owned());
            }
            b::EMPTY_QUERY_RESPONSE => self.completed = true,
            b::ERROR_RESPONSE => {
                self.completed = true;
                if self.error.is_none() {
                    self.error = Some(frame.clone());
                }
            }
            b::READY_FOR_QUERY => {
                self.ready = true;
                self.status = decode_ready_for_query(frame.body()).map_err(|source| {
                    ServerError::Protocol {
                        addr: addr(),
                        source,
                    }
                })?;
            }
            _ => {}
        }
        Ok(Some(frame))
    }

    /// Reads until the request's ReadyForQuery, handing each message of the request to `f`.
    pub(crate) async fn read_to_ready(
        &mut self,
        mut f: impl FnMut(&mut Leg, &Frame),
    ) -> Result<(), ServerError> {
        while !self.ready {
            let frame = self.next_frame().await?;
            if let Some(frame) = self.classify(frame)? {
                f(self, &frame);
            }
        }
        Ok(())
    }

    /// Sends pgfleet's preamble (settings, `BEGIN`) and reads its answers.
    pub(crate) async fn flush_preamble(&mut self) -> Result<(), ServerError> {
        let pre = std::mem::take(&mut self.pre);
        if !pre.is_empty() {
            self.server().unnamed = 0;
            self.server().write_all(&pre).await?;
        }
        while self.preamble > 0 {
            let frame = self.next_frame().await?;
            self.classify(frame)?;
        }
        Ok(())
    }

    /// Sends `bytes` and reads the answers of one simple Query up to its ReadyForQuery; the
    /// CommandComplete tag or the error is in the leg afterwards.
    pub(crate) async fn simple(&mut self, sql: &str) -> Result<(), ServerError> {
        let mut out = BytesMut::new();
        pgfleet_wire::frontend::encode_query(&mut out, sql);
        self.restart();
        self.server().unnamed = 0;
        self.server().write_all(&out).await?;
        self.read_to_ready(|_, _| {}).await
    }

    /// Gives the connection back: to the pool when it is idle and healthy, else closed.
    pub(crate) fn finish(self) {
        let clean =
            !self.broken && self.ready && self.preamble == 0 && self.status == TxStatus::Idle;
        self.guard.info.set_idle();
        if clean {
            drop(self.guard);
        } else {
            self.guard.discard();
        }
    }
}

/// The text of an ErrorResponse's message field (for logs and combined errors).
pub(crate) fn error_message(frame: &Frame) -> String {
    pgfleet_wire::backend::decode_error_frame(frame)
        .ok()
        .and_then(|f| f.get(b'M').map(str::to_owned))
        .unwrap_or_else(|| "unreadable error".to_owned())
}
