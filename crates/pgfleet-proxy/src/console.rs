//! The admin console's connection loop: simple queries on the database `pgfleet`, answered by a
//! [`Console`] implementation (the `pgfleet-admin` crate), so the data path does not depend on the
//! admin commands.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::BytesMut;
use pgfleet_wire::backend::{
    encode_command_complete, encode_data_row, encode_error, encode_parameter_status,
    encode_ready_for_query, encode_text_row_description, TxStatus,
};
use pgfleet_wire::frontend::decode_query;
use pgfleet_wire::tag::frontend as t;

use crate::client::ClientConn;
use crate::runtime::Runtime;

/// One result of a console command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleReply {
    /// A table of text values (NULL = None) and its command tag (e.g. "SHOW").
    Rows {
        /// Column names.
        columns: Vec<String>,
        /// Rows.
        rows: Vec<Vec<Option<String>>>,
    },
    /// A command without rows, by its tag (e.g. "RELOAD").
    Done(String),
}

/// A console error: SQLSTATE and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleError {
    /// SQLSTATE.
    pub code: &'static str,
    /// Message.
    pub message: String,
}

/// The future a console command returns.
pub type ConsoleFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ConsoleReply, ConsoleError>> + Send + 'a>>;

/// Executes admin console commands.
pub trait Console: Send + Sync {
    /// Runs one command (one statement of the query text, without the trailing semicolon).
    fn execute<'a>(&'a self, rt: &'a Arc<Runtime>, command: &'a str) -> ConsoleFuture<'a>;
}

/// Serves an authenticated admin connection until it closes.
pub(crate) async fn run_console(rt: &Arc<Runtime>, client: &mut ClientConn) {
    let mut out = BytesMut::new();
    encode_parameter_status(&mut out, "server_version", "15.0 (pgfleet)");
    encode_parameter_status(&mut out, "server_encoding", "UTF8");
    encode_parameter_status(&mut out, "client_encoding", "UTF8");
    encode_parameter_status(&mut out, "DateStyle", "ISO, MDY");
    encode_parameter_status(&mut out, "integer_datetimes", "on");
    encode_parameter_status(&mut out, "standard_conforming_strings", "on");
    encode_ready_for_query(&mut out, TxStatus::Idle);
    if client.write_all(&out).await.is_err() {
        return;
    }
    loop {
        let frame = match client.read_frame().await {
            Ok(Some(f)) => f,
            Ok(None) | Err(_) => return,
        };
        let mut out = BytesMut::new();
        match frame.tag() {
            t::TERMINATE => return,
            t::QUERY => {
                let sql = match decode_query(&frame) {
                    Ok(s) => s.to_owned(),
                    Err(e) => {
                        client.fatal("08P01", &e.to_string()).await;
                        return;
                    }
                };
                let commands: Vec<&str> = sql
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect();
                if commands.is_empty() {
                    pgfleet_wire::backend::encode_empty(
                        &mut out,
                        pgfleet_wire::tag::backend::EMPTY_QUERY_RESPONSE,
                    );
                }
                for command in commands {
                    match &rt.console {
                        Some(console) => match console.execute(rt, command).await {
                            Ok(reply) => encode_reply(&mut out, &reply),
                            Err(e) => {
                                encode_error(&mut out, "ERROR", e.code, &e.message);
                                break;
                            }
                        },
                        None => {
                            encode_error(
                                &mut out,
                                "ERROR",
                                "0A000",
                                "pgfleet: the admin console is not enabled",
                            );
                            break;
                        }
                    }
                }
            }
            other => {
                encode_error(
                    &mut out,
                    "ERROR",
                    "0A000",
                    &format!(
                        "pgfleet: the admin console supports only simple queries (got message type '{}')",
                        char::from(other).escape_default()
                    ),
                );
                if other != t::SYNC {
                    // Extended-protocol messages up to Sync get no further answer.
                    continue;
                }
            }
        }
        encode_ready_for_query(&mut out, TxStatus::Idle);
        if client.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn encode_reply(out: &mut BytesMut, reply: &ConsoleReply) {
    match reply {
        ConsoleReply::Rows { columns, rows } => {
            let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
            encode_text_row_description(out, &cols);
            for row in rows {
                let vals: Vec<Option<&str>> = row.iter().map(|v| v.as_deref()).collect();
                encode_data_row(out, &vals);
            }
            encode_command_complete(out, "SHOW");
        }
        ConsoleReply::Done(tag) => encode_command_complete(out, tag),
    }
}
