//! `COPY` across shards (simple protocol): `COPY sharded_table FROM STDIN` splits the rows by
//! their shard key as they stream (`fanout::copy_rows`) and commits on every shard in one
//! two-phase commit; into a reference table every shard gets every row; `COPY … TO STDOUT`
//! returns every shard's rows, one shard after the other.

use bytes::BytesMut;
use pgfleet_catalog::{TableLocation, ValueFormat};
use pgfleet_sql::shard::{copy_spec, CopyFormat, CopySpec, ShardRouter};
use pgfleet_wire::backend::encode_command_complete;
use pgfleet_wire::frame::write_message;
use pgfleet_wire::frontend::encode_query;
use pgfleet_wire::tag::backend as b;
use pgfleet_wire::tag::frontend as t;

use super::Session;
use crate::fanout::copy_rows::RowSplitter;
use crate::fanout::legs::Leg;
use crate::fanout::tags::{combine, combine_replicated};
use crate::ProxyError;

/// Shard data is sent in CopyData messages of about this size.
const CHUNK: usize = 64 * 1024;

fn refused(message: String) -> ProxyError {
    ProxyError::Client {
        code: "0A000",
        message,
    }
}

fn copy_data(out: &mut BytesMut, data: &[u8]) {
    write_message(out, t::COPY_DATA, |b| b.extend_from_slice(data));
}

impl Session<'_> {
    /// A COPY whose table lives on several shards.
    pub(super) async fn copy_across(
        &mut self,
        router: &ShardRouter,
        sql: &str,
        shards: &[usize],
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        let spec = copy_spec(sql)
            .map_err(|e| refused(format!("pgfleet: {e} cannot run across shards")))?;
        if spec.format == CopyFormat::Binary {
            return Err(refused(format!(
                "pgfleet: COPY {} in binary format cannot be split by shard; use text or csv",
                spec.table
            )));
        }
        if spec.from {
            self.check_cross_shard_write(shards)?;
            self.copy_in(router, sql, &spec, shards, out).await
        } else {
            self.copy_out(router, sql, &spec, shards, out).await
        }
    }

    async fn copy_in(
        &mut self,
        router: &ShardRouter,
        sql: &str,
        spec: &CopySpec,
        shards: &[usize],
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        let topology = router.topology();
        let sharded = match topology.table_location(&spec.table) {
            TableLocation::Sharded(t) => Some(t.clone()),
            _ => None,
        };
        let mut legs = self.legs(router, shards, false).await?;
        for leg in legs.iter_mut() {
            encode_query(&mut leg.pre, "BEGIN");
            leg.preamble += 1;
        }
        let result = self
            .copy_in_legs(sql, spec, sharded.as_ref(), topology, &mut legs)
            .await;
        let result = match result {
            Ok(()) => {
                let error = legs
                    .iter()
                    .find_map(|l| l.preamble_error.clone().or_else(|| l.error.clone()));
                match error {
                    Some(frame) => Err(ProxyError::Reported(frame.raw().clone())),
                    None => match if sharded.is_some() {
                        combine(legs.iter().filter_map(|l| l.tag.as_deref()))
                    } else {
                        combine_replicated(legs.iter().filter_map(|l| l.tag.as_deref()))
                    } {
                        Some(tag) => self.commit_across(&mut legs, shards).await.map(|()| tag),
                        None => Err(ProxyError::Client {
                            code: "XX000",
                            message: "pgfleet: the shards answered the COPY differently".into(),
                        }),
                    },
                }
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            super::fanout::rollback_all(&mut legs).await;
        }
        super::fanout::finish_legs(legs);
        self.info.set_state(crate::clients::ClientState::Idle);
        let tag = result?;
        encode_command_complete(out, &tag);
        Ok(())
    }

    /// Runs the COPY on every leg (inside `BEGIN`) with the client's data; afterwards each leg
    /// holds its tag or error. `Err`: pgfleet's own failure (the legs are then rolled back).
    async fn copy_in_legs(
        &mut self,
        sql: &str,
        spec: &CopySpec,
        sharded: Option<&pgfleet_catalog::ShardedTable>,
        topology: &pgfleet_catalog::DatabaseTopology,
        legs: &mut [Leg],
    ) -> Result<(), ProxyError> {
        for leg in legs.iter_mut() {
            leg.flush_preamble().await.map_err(ProxyError::Server)?;
            if let Some(e) = &leg.preamble_error {
                return Err(ProxyError::Reported(e.raw().clone()));
            }
        }
        // Which field of each row holds the shard key.
        let key_field = match sharded {
            None => None,
            Some(table) => Some(match &spec.columns {
                Some(cols) => cols.iter().position(|c| c == table.column()).ok_or_else(|| {
                    ProxyError::Client {
                        code: "0A000",
                        message: format!(
                            "pgfleet: COPY {} into a sharded table needs its shard key column `{}` in the column list",
                            spec.table,
                            table.column()
                        ),
                    }
                })?,
                None => {
                    let name = match &spec.schema {
                        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&spec.table)),
                        None => quote_ident(&spec.table),
                    };
                    let rows = legs[0]
                        .server()
                        .simple_query(&format!(
                            "SELECT attname FROM pg_attribute WHERE attrelid = '{}'::regclass \
                             AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                            name.replace('\'', "''")
                        ))
                        .await
                        .map_err(ProxyError::Server)?;
                    rows.iter()
                        .position(|r| r.first().and_then(|v| v.as_deref()) == Some(table.column()))
                        .ok_or_else(|| ProxyError::Client {
                            code: "42703",
                            message: format!(
                                "pgfleet: table {} has no shard key column `{}`",
                                spec.table,
                                table.column()
                            ),
                        })?
                }
            }),
        };
        let mut msg = BytesMut::new();
        encode_query(&mut msg, sql);
        for leg in legs.iter_mut() {
            leg.restart();
            leg.server().unnamed = 0;
            leg.server()
                .write_all(&msg)
                .await
                .map_err(ProxyError::Server)?;
        }
        // Every shard must enter COPY IN mode.
        let mut copy_in_response = None;
        for leg in legs.iter_mut() {
            loop {
                let frame = leg.next_frame().await.map_err(ProxyError::Server)?;
                if frame.tag() == b::COPY_IN_RESPONSE {
                    copy_in_response.get_or_insert(frame);
                    break;
                }
                leg.classify(frame).map_err(ProxyError::Server)?;
                if leg.ready {
                    break;
                }
            }
        }
        if legs.iter().any(|l| l.ready) {
            // A shard refused the COPY: end the others' copy mode, report its error.
            self.copy_fail_all(legs, "another shard refused the COPY")
                .await?;
            return Ok(());
        }
        let Some(response) = copy_in_response else {
            return Err(ProxyError::Client {
                code: "XX000",
                message: "pgfleet: no shard entered COPY mode".into(),
            });
        };
        self.client.write_all(response.raw()).await?;
        // Stream the client's rows to their shards.
        let slots: Vec<usize> = legs.iter().map(|l| l.shard).collect();
        let table = sharded.map(|t| t.name().to_owned());
        let map = sharded.map(|t| t.map().clone());
        let shard_of = |key: Option<&[u8]>| -> Result<usize, String> {
            let shard = match (key, &table, &map) {
                (None, _, Some(map)) => map.shard_for_null().map_err(|e| e.to_string())?,
                (Some(k), Some(table), _) => topology
                    .shard_for_wire(table, ValueFormat::Text, k)
                    .map_err(|e| e.to_string())?,
                _ => 0,
            };
            slots
                .iter()
                .position(|s| *s == shard)
                .ok_or_else(|| format!("its shard {shard} is not part of this COPY"))
        };
        let mut splitter = key_field.map(|k| RowSplitter::new(spec, k));
        let mut outs = vec![BytesMut::new(); legs.len()];
        let failure: Option<String> = loop {
            let Some(frame) = self.client.read_frame().await? else {
                for leg in legs.iter_mut() {
                    leg.broken = true;
                }
                return Err(ProxyError::ClientIo(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            };
            match frame.tag() {
                t::COPY_DATA => {
                    let pushed = match splitter.as_mut() {
                        Some(s) => s.push(frame.body(), &shard_of, &mut outs),
                        None => {
                            for o in outs.iter_mut() {
                                o.extend_from_slice(frame.body());
                            }
                            Ok(())
                        }
                    };
                    if let Err(e) = pushed {
                        break Some(e);
                    }
                    send_full(legs, &mut outs, CHUNK).await?;
                }
                t::COPY_DONE => {
                    if let Some(s) = splitter.as_mut() {
                        if let Err(e) = s.finish(&shard_of, &mut outs) {
                            break Some(e);
                        }
                    }
                    send_full(legs, &mut outs, 1).await?;
                    let mut done = BytesMut::new();
                    write_message(&mut done, t::COPY_DONE, |_| {});
                    for leg in legs.iter_mut() {
                        leg.server()
                            .write_all(&done)
                            .await
                            .map_err(ProxyError::Server)?;
                    }
                    break None;
                }
                t::COPY_FAIL => {
                    let why = String::from_utf8_lossy(
                        frame.body().strip_suffix(&[0]).unwrap_or(frame.body()),
                    )
                    .into_owned();
                    self.copy_fail_all(legs, &why).await?;
                    return Err(ProxyError::Client {
                        code: "57014",
                        message: format!("COPY from stdin failed: {why}"),
                    });
                }
                t::FLUSH | t::SYNC => {}
                other => {
                    self.copy_fail_all(legs, "protocol violation").await?;
                    return Err(ProxyError::Client {
                        code: "08P01",
                        message: format!(
                            "unexpected message type 0x{other:02X} during COPY from stdin"
                        ),
                    });
                }
            }
        };
        if let Some(e) = failure {
            self.copy_fail_all(legs, &e).await?;
            return Err(ProxyError::Client {
                code: "22P02",
                message: format!("pgfleet: {e}; nothing was copied"),
            });
        }
        for leg in legs.iter_mut() {
            leg.read_to_ready(|_, _| {})
                .await
                .map_err(ProxyError::Server)?;
        }
        Ok(())
    }

    /// Ends COPY IN mode on every leg with CopyFail and reads their answers.
    async fn copy_fail_all(&mut self, legs: &mut [Leg], why: &str) -> Result<(), ProxyError> {
        let mut fail = BytesMut::new();
        write_message(&mut fail, t::COPY_FAIL, |b| {
            pgfleet_wire::frame::put_cstr(b, why);
        });
        for leg in legs.iter_mut().filter(|l| !l.ready) {
            leg.server()
                .write_all(&fail)
                .await
                .map_err(ProxyError::Server)?;
            leg.read_to_ready(|_, _| {})
                .await
                .map_err(ProxyError::Server)?;
        }
        Ok(())
    }

    async fn copy_out(
        &mut self,
        router: &ShardRouter,
        sql: &str,
        spec: &CopySpec,
        shards: &[usize],
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        let mut legs = self.legs(router, shards, true).await?;
        let result = self.copy_out_legs(sql, spec, &mut legs).await;
        super::fanout::finish_legs(legs);
        self.info.set_state(crate::clients::ClientState::Idle);
        let tag = result?;
        encode_command_complete(out, &tag);
        Ok(())
    }

    /// Every shard's COPY TO STDOUT, one after the other, as one: one CopyOutResponse, every
    /// row (a CSV header once), one CopyDone, `COPY total`.
    async fn copy_out_legs(
        &mut self,
        sql: &str,
        spec: &CopySpec,
        legs: &mut [Leg],
    ) -> Result<String, ProxyError> {
        for leg in legs.iter_mut() {
            let mut msg = std::mem::take(&mut leg.pre);
            encode_query(&mut msg, sql);
            leg.server().unnamed = 0;
            leg.server()
                .write_all(&msg)
                .await
                .map_err(ProxyError::Server)?;
        }
        let mut started = false;
        let mut buf = BytesMut::new();
        for (i, leg) in legs.iter_mut().enumerate() {
            let mut first_row = true;
            let mut error = None;
            while !leg.ready {
                let frame = leg.next_frame().await.map_err(ProxyError::Server)?;
                let Some(frame) = leg.classify(frame).map_err(ProxyError::Server)? else {
                    continue;
                };
                match frame.tag() {
                    b::COPY_OUT_RESPONSE if !started => {
                        started = true;
                        buf.extend_from_slice(frame.raw());
                    }
                    b::COPY_DATA => {
                        let header = spec.header && first_row && i > 0;
                        first_row = false;
                        if !header {
                            buf.extend_from_slice(frame.raw());
                        }
                    }
                    b::ERROR_RESPONSE => error = Some(frame),
                    _ => {}
                }
                if buf.len() >= CHUNK {
                    self.client.write_all(&buf).await?;
                    buf.clear();
                }
            }
            if let Some(e) = error.or_else(|| leg.preamble_error.clone()) {
                self.client.write_all(&buf).await?;
                leg.broken = true;
                return Err(ProxyError::Reported(e.raw().clone()));
            }
        }
        write_message(&mut buf, b::COPY_DONE, |_| {});
        self.client.write_all(&buf).await?;
        combine(legs.iter().filter_map(|l| l.tag.as_deref())).ok_or_else(|| ProxyError::Client {
            code: "XX000",
            message: "pgfleet: the shards answered the COPY differently".into(),
        })
    }
}

/// Sends each leg's buffered rows once at least `at` bytes are waiting.
async fn send_full(legs: &mut [Leg], outs: &mut [BytesMut], at: usize) -> Result<(), ProxyError> {
    for (leg, o) in legs.iter_mut().zip(outs.iter_mut()) {
        if o.len() >= at && !o.is_empty() {
            let mut msg = BytesMut::with_capacity(o.len() + 5);
            copy_data(&mut msg, o);
            o.clear();
            leg.server()
                .write_all(&msg)
                .await
                .map_err(ProxyError::Server)?;
        }
    }
    Ok(())
}

/// A double-quoted identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
