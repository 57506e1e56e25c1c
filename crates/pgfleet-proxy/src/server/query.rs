//! pgfleet's own queries on a server connection (replication monitor, catalog loading): one simple
//! Query, rows as text.

use bytes::BytesMut;
use pgfleet_wire::backend::ErrorFields;
use pgfleet_wire::frontend::encode_query;
use pgfleet_wire::tag::backend as b;

use super::{ServerConn, ServerError};

/// Rows of text values (None = NULL).
pub type Rows = Vec<Vec<Option<String>>>;

impl ServerConn {
    /// Runs one simple Query and returns the rows of its result. A server error is returned as
    /// [`ServerError::Query`]; the connection stays usable after it.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Rows, ServerError> {
        let mut out = BytesMut::new();
        encode_query(&mut out, sql);
        self.unnamed = 0;
        self.write_all(&out).await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let frame = self.read_frame().await?;
            match frame.tag() {
                b::DATA_ROW => {
                    rows.push(
                        decode_row(frame.body()).ok_or_else(|| ServerError::Unexpected {
                            addr: self.info.addr.clone(),
                            tag: b::DATA_ROW,
                        })?,
                    )
                }
                b::ERROR_RESPONSE => {
                    let fields = ErrorFields::decode(frame.body()).map_err(|source| {
                        ServerError::Protocol {
                            addr: self.info.addr.clone(),
                            source,
                        }
                    })?;
                    error = Some(fields);
                }
                b::READY_FOR_QUERY => break,
                _ => {}
            }
        }
        match error {
            Some(fields) => Err(ServerError::Query {
                addr: self.info.addr.clone(),
                fields,
            }),
            None => Ok(rows),
        }
    }
}

fn decode_row(body: &[u8]) -> Option<Vec<Option<String>>> {
    let n = i16::from_be_bytes([*body.first()?, *body.get(1)?]);
    let mut rest = &body[2..];
    let mut row = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        let len = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
        rest = &rest[4..];
        if len < 0 {
            row.push(None);
        } else {
            let v = rest.get(..len as usize)?;
            row.push(Some(String::from_utf8_lossy(v).into_owned()));
            rest = &rest[len as usize..];
        }
    }
    Some(row)
}
