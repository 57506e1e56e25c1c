//! `EXPLAIN` of a statement that needs several shards: every shard explains its own text, and
//! the client gets one `QUERY PLAN` result — which shards run what, how pgfleet merges, then
//! each shard's plan under its name.

use bytes::BytesMut;
use pgfleet_catalog::TableLocation;
use pgfleet_sql::merge_plan::plan_select;
use pgfleet_sql::shard::{cross_shard_kind, explain_parts, CrossShardKind, ShardRouter};
use pgfleet_wire::backend::{
    encode_command_complete, encode_data_row, encode_empty, encode_text_row_description,
};
use pgfleet_wire::frontend::{
    encode_bind, encode_execute, encode_parse, encode_query, encode_sync, BindParam,
};
use pgfleet_wire::rows::decode_data_row;
use pgfleet_wire::tag::backend as b;

use super::fanout::list;
use super::Session;
use crate::fanout::explain::merge_lines;
use crate::fanout::request::{Kind, Request};
use crate::ProxyError;

fn refused(message: String) -> ProxyError {
    ProxyError::Client {
        code: "0A000",
        message,
    }
}

impl Session<'_> {
    /// Runs EXPLAIN on `shards` with each shard's text and writes the combined plan to `out`.
    pub(super) async fn explain_across(
        &mut self,
        router: &ShardRouter,
        req: &Request,
        shards: &[usize],
        split: Option<&[(usize, String)]>,
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        let e = explain_parts(&req.sql).map_err(|m| refused(format!("pgfleet: {m}")))?;
        if !e.text_format {
            return Err(refused(
                "pgfleet: EXPLAIN of a statement on several shards is combined in FORMAT text only"
                    .into(),
            ));
        }
        let topology = router.topology();
        let (texts, mut header): (Vec<(usize, String)>, Vec<String>) = match cross_shard_kind(
            &e.inner,
        ) {
            CrossShardKind::Read => {
                let scope = |_: Option<&str>, table: &str| {
                    matches!(topology.table_location(table), TableLocation::Reference)
                };
                let q = plan_select(&e.inner, &scope).map_err(|m| ProxyError::Client {
                    code: m.sqlstate(),
                    message: format!("pgfleet: {m}"),
                })?;
                let mut lines = vec![format!(
                    "pgfleet: cross-shard SELECT on shards {}; every shard runs: {}",
                    list(shards),
                    q.sql
                )];
                lines.extend(merge_lines(&q.plan));
                (shards.iter().map(|s| (*s, q.sql.clone())).collect(), lines)
            }
            CrossShardKind::Write if e.analyze => {
                return Err(refused(
                    "pgfleet: EXPLAIN ANALYZE of a write on several shards would run it \
                         outside pgfleet's two-phase commit; use EXPLAIN without ANALYZE"
                        .into(),
                ))
            }
            CrossShardKind::Write => {
                let texts: Vec<(usize, String)> = match split {
                    // Each part is the whole EXPLAIN with that shard's rows.
                    Some(parts) => parts
                        .iter()
                        .map(|(s, t)| {
                            (*s, explain_parts(t).map_or_else(|_| t.clone(), |x| x.inner))
                        })
                        .collect(),
                    None => shards.iter().map(|s| (*s, e.inner.clone())).collect(),
                };
                let lines = vec![format!(
                        "pgfleet: write on shards {} in one two-phase commit (PREPARE TRANSACTION on every shard, decision logged, COMMIT PREPARED)",
                        list(shards)
                    )];
                (texts, lines)
            }
            _ => {
                return Err(refused(
                    "pgfleet: EXPLAIN of this statement on several shards is not supported".into(),
                ))
            }
        };
        let mut legs = self.legs(router, shards, !e.analyze).await?;
        let (params, describe) = match &req.kind {
            Kind::Simple => (Vec::new(), true),
            Kind::Extended(x) => (
                x.params()?
                    .iter()
                    .map(super::shard_params::owned_param)
                    .collect::<Vec<_>>(),
                x.describe,
            ),
        };
        let types = match &req.kind {
            Kind::Extended(x) => x.param_types.clone(),
            Kind::Simple => Vec::new(),
        };
        for leg in legs.iter_mut() {
            let Some((_, text)) = texts.iter().find(|(s, _)| *s == leg.shard) else {
                continue;
            };
            let wrapped = e.wrap(text).map_err(|m| refused(format!("pgfleet: {m}")))?;
            let mut msg = std::mem::take(&mut leg.pre);
            match &req.kind {
                Kind::Simple => encode_query(&mut msg, &wrapped),
                Kind::Extended(_) => {
                    let p: Vec<BindParam<'_>> = params
                        .iter()
                        .map(super::shard_params::borrowed_param)
                        .collect();
                    encode_parse(&mut msg, "", &wrapped, &types);
                    encode_bind(&mut msg, "", "", &p, &[0]);
                    encode_execute(&mut msg, "", 0);
                    encode_sync(&mut msg);
                }
            }
            leg.server().unnamed = 0;
            leg.server()
                .write_all(&msg)
                .await
                .map_err(ProxyError::Server)?;
        }
        let mut plans: Vec<(usize, Vec<String>)> = Vec::new();
        let mut failure = None;
        for leg in legs.iter_mut() {
            let mut lines = Vec::new();
            let r = leg
                .read_to_ready(|_, frame| {
                    if frame.tag() == b::DATA_ROW {
                        if let Ok(values) = decode_data_row(frame.body()) {
                            if let Some(Some(v)) = values.first() {
                                lines.push(String::from_utf8_lossy(v).into_owned());
                            }
                        }
                    }
                })
                .await;
            if let Err(e) = r {
                leg.broken = true;
                failure.get_or_insert(ProxyError::Server(e));
            } else if let Some(err) = leg.error.clone().or(leg.preamble_error.clone()) {
                failure.get_or_insert(ProxyError::Reported(err.raw().clone()));
            }
            plans.push((leg.shard, lines));
        }
        super::fanout::finish_legs(legs);
        self.info.set_state(crate::clients::ClientState::Idle);
        if let Some(e) = failure {
            return Err(e);
        }
        if let Kind::Extended(x) = &req.kind {
            if x.parse.is_some() {
                encode_empty(out, b::PARSE_COMPLETE);
            }
            encode_empty(out, b::BIND_COMPLETE);
        }
        if describe {
            encode_text_row_description(out, &["QUERY PLAN"]);
        }
        let config = self.rt.config();
        for (shard, lines) in plans {
            let cluster = topology.shard_cluster(shard).unwrap_or("?");
            let addr = config
                .clusters
                .get(cluster)
                .and_then(|c| c.servers.first())
                .map(|s| format!("{}:{}", s.host, s.port))
                .unwrap_or_default();
            header.push(format!("Shard {shard} (cluster {cluster}, {addr}):"));
            header.extend(lines.into_iter().map(|l| format!("  {l}")));
        }
        for line in &header {
            encode_data_row(out, &[Some(line)]);
        }
        encode_command_complete(out, "EXPLAIN");
        Ok(())
    }
}
