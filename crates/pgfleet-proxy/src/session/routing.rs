//! Choosing the endpoint for the transaction a request opens: classify every statement of the
//! request (all of it must be buffered, up to its Sync), apply the session's role override and
//! settings, then ask the cluster view for the primary or a reader.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pgfleet_sql::{Classification, Target, WriteReason};
use pgfleet_wire::frontend::{decode_bind, decode_parse, decode_query};
use pgfleet_wire::tag::frontend as t;
use pgfleet_wire::Frame;

use super::Session;
use crate::pools::DatabasePools;
use crate::replication::{pick_reader, ClusterState, ClusterView, Lsn, PrimaryError};
use crate::route::{decide, RoleOverride, RouteContext};
use crate::ProxyError;
use pgfleet_config::Consistency;

/// What the messages of one request add up to.
#[derive(Default)]
struct RequestShape {
    statements: Vec<Arc<Classification>>,
    executes: bool,
}

/// After one message: the request ended, goes on, or must go to the primary unseen.
enum Visit {
    End,
    More,
    Partial,
}

/// How often a write waiting for a new primary looks again.
const FAILOVER_POLL: Duration = Duration::from_millis(50);

/// Where a transaction goes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Routed {
    /// The endpoint index in the cluster.
    pub endpoint: usize,
    /// Whether that endpoint is the primary.
    pub target: Target,
    /// The request may write (the router sent it to the primary for that reason, not as a read
    /// the primary happens to serve): read-your-writes and quorum writes follow its commit.
    pub writes: bool,
    /// The request is session commands only (`SET`, `RESET`, SQL `EXECUTE` …): the way a client
    /// repairs a bad `pgfleet.*` value, so such values must not refuse it.
    pub lenient: bool,
}

impl Session<'_> {
    /// The route of every transaction when the cluster has one endpoint: its primary, without
    /// looking at the request (no future to build for it either).
    pub(super) fn fixed_route(&self) -> Option<Routed> {
        let pools = &self.pools;
        (pools.state.is_none() || pools.endpoints.len() <= 1).then(|| self.primary_route())
    }

    fn primary_route(&self) -> Routed {
        Routed {
            endpoint: self.pools.configured_primary,
            target: Target::Primary,
            writes: true,
            lenient: false,
        }
    }

    /// The endpoint for the transaction `first` opens.
    pub(super) async fn route(&self, first: &Frame) -> Result<Routed, ProxyError> {
        let pools = &self.pools;
        let Some(state) = pools.state.as_ref().filter(|_| pools.endpoints.len() > 1) else {
            return Ok(self.primary_route());
        };
        let mut hinted = None;
        let mut shape = self.classify_request(first)?;
        if let (Some(shape), Some(begin)) = (shape.as_mut(), self.deferred_begin()) {
            // The transaction opens with the BEGIN pgfleet acknowledged itself.
            shape.statements.insert(0, self.rt.analyzer.classify(begin));
        }
        let (target, executes) = match shape {
            // Nothing but Close/Describe/Sync: a no-op outside a transaction, any server will do.
            Some(RequestShape {
                statements,
                executes,
            }) if statements.is_empty() => (Target::Replica, executes),
            Some(RequestShape {
                statements,
                executes,
            }) => {
                // Session commands alone (`SET`, `RESET`, …) run on the primary; they are also how
                // a client repairs a bad `pgfleet.*` value, so routing them must not depend on
                // those values. They may still write (SQL `EXECUTE` of a prepared INSERT), so
                // read-your-writes and quorums follow them when the settings are usable.
                if statements
                    .iter()
                    .all(|c| c.reason == Some(WriteReason::SessionCommand))
                {
                    return Ok(Routed {
                        endpoint: primary(state).await?,
                        target: Target::Primary,
                        writes: true,
                        lenient: true,
                    });
                }
                let settings = state.settings.load();
                let catalog = state.catalog.load();
                let refs: Vec<&Classification> = statements.iter().map(Arc::as_ref).collect();
                let ctx = RouteContext {
                    role: self.role_override()?,
                    volatile: &catalog,
                    allowlist: &settings.allowlist,
                };
                let (target, reason) = decide(&refs, &ctx);
                hinted = statements
                    .iter()
                    .find_map(|c| c.hints.consistency.as_deref())
                    .and_then(parse_consistency);
                tracing::debug!(client = self.info.id, ?target, ?reason, "routed");
                (target, executes)
            }
            None => (Target::Primary, true),
        };
        let consistency = match hinted {
            Some(c) => c,
            None => self.consistency()?,
        };
        match (target, consistency) {
            (Target::Primary, _) => Ok(Routed {
                endpoint: primary(state).await?,
                target: Target::Primary,
                writes: true,
                lenient: false,
            }),
            (Target::Replica, Consistency::Strong) => Ok(Routed {
                endpoint: primary(state).await?,
                target: Target::Primary,
                writes: false,
                lenient: false,
            }),
            (Target::Replica, _) => self.pick_read(state, consistency, executes).await,
        }
    }

    /// A reader for a read under `consistency` (not strong). Read-your-writes waits up to the
    /// cluster's `ryw_wait` for a replica to replay the session's last write before the primary
    /// takes the read.
    async fn pick_read(
        &self,
        state: &ClusterState,
        consistency: Consistency,
        executes: bool,
    ) -> Result<Routed, ProxyError> {
        let settings = state.settings.load();
        let mut policy = settings.read_policy;
        match consistency {
            Consistency::ReadYourWrites => {
                let after = match self.params.desired().get("pgfleet.after_lsn") {
                    Some(v) => Some(Lsn::parse(v.trim()).map_err(|e| {
                        bad_setting(
                            "pgfleet.after_lsn",
                            v,
                            &format!("{e}; use the value of SHOW pgfleet.last_write_lsn"),
                        )
                    })?),
                    None => None,
                };
                policy.min_lsn = self.last_write_lsn.max(after);
            }
            Consistency::Bounded => {
                policy.max_staleness = Some(self.max_staleness()?.unwrap_or(policy.max_lag_time));
            }
            Consistency::Eventual | Consistency::Strong => {}
        }
        // Only requests that execute something advance round robin, so a driver that prepares
        // before every execution (two requests per query) still spreads them.
        let rr = if executes {
            state.next_rr()
        } else {
            state.current_rr()
        };
        let random = state.next_random();
        let pick = |view: &ClusterView| pick_reader(view, &policy, rr, random, Instant::now());
        let is_primary = |view: &ClusterView, i: usize| view.primary(Instant::now()) == Ok(i);
        tracing::debug!(client = self.info.id, ?consistency, min_lsn = ?policy.min_lsn, "picking a reader");
        let first = {
            let view = state.view.read();
            pick(&view).map(|i| (i, is_primary(&view, i)))
        };
        let waits = policy.min_lsn.is_some() && !settings.ryw_wait.is_zero();
        let chosen = match first {
            // The primary stands in only because no replica has caught up yet: give them
            // `ryw_wait` to do so.
            Ok((_, true)) | Err(_) if waits => {
                let deadline = Instant::now() + settings.ryw_wait;
                let replica = state
                    .wait_for(deadline, |view| {
                        pick(view).ok().filter(|&i| !is_primary(view, i))
                    })
                    .await;
                match replica {
                    Some(i) => Ok((i, false)),
                    None => {
                        let view = state.view.read();
                        pick(&view).map(|i| (i, is_primary(&view, i)))
                    }
                }
            }
            other => other,
        };
        chosen
            .map(|(endpoint, on_primary)| Routed {
                endpoint,
                target: if on_primary {
                    Target::Primary
                } else {
                    Target::Replica
                },
                writes: false,
                lenient: false,
            })
            .map_err(|no| ProxyError::Client {
                code: "57P03",
                message: format!(
                    "pgfleet: no server of cluster `{}` can serve this read: {no}",
                    state.name
                ),
            })
    }

    /// The endpoint of `pools` for one part of a cross-shard request: the primary for writes;
    /// for reads, a reader the session's consistency allows (strong: the primary).
    pub(super) async fn endpoint_on(
        &self,
        pools: &DatabasePools,
        read: bool,
    ) -> Result<usize, ProxyError> {
        let Some(state) = pools.state.as_ref().filter(|_| pools.endpoints.len() > 1) else {
            return Ok(pools.configured_primary);
        };
        let role = self.role_override()?;
        let consistency = self.consistency()?;
        let to_primary = !read
            || consistency == Consistency::Strong
            || matches!(role, crate::route::RoleOverride::Primary);
        if to_primary {
            return primary(state).await;
        }
        Ok(self.pick_read(state, consistency, true).await?.endpoint)
    }

    /// Bans an endpoint that refused a connection, so the next route avoids it.
    pub(super) fn endpoint_failed(&self, endpoint: usize) {
        if let Some(state) = &self.pools.state {
            if let Some(e) = state.view.write().endpoints.get_mut(endpoint) {
                e.mark_failure(Instant::now());
            }
        }
    }

    /// Classifications of every statement of the request `first` opens, and whether it executes
    /// anything; `None` when the request is not fully buffered yet or calls a function by OID
    /// (FunctionCall): such requests go to the primary.
    fn classify_request(&self, first: &Frame) -> Result<Option<RequestShape>, ProxyError> {
        let mut request = RequestShape::default();
        match self.visit(first, &mut request)? {
            Visit::Partial => return Ok(None),
            Visit::End => return Ok(Some(request)),
            Visit::More => {}
        }
        let end = |tag| matches!(tag, t::SYNC | t::QUERY | t::FUNCTION_CALL);
        let Some((rest, _)) = self.client.peek_until(end)? else {
            return Ok(None);
        };
        for frame in &rest {
            match self.visit(frame, &mut request)? {
                Visit::Partial => return Ok(None),
                Visit::End => return Ok(Some(request)),
                Visit::More => {}
            }
        }
        Ok(None)
    }

    fn visit(&self, f: &Frame, request: &mut RequestShape) -> Result<Visit, ProxyError> {
        let analyzer = &self.rt.analyzer;
        Ok(match f.tag() {
            t::QUERY => {
                request.executes = true;
                request.statements.push(analyzer.classify(decode_query(f)?));
                Visit::End
            }
            t::SYNC => Visit::End,
            t::FUNCTION_CALL => Visit::Partial,
            t::EXECUTE => {
                request.executes = true;
                Visit::More
            }
            t::PARSE => {
                request
                    .statements
                    .push(analyzer.classify(decode_parse(f)?.query));
                Visit::More
            }
            t::BIND => {
                let bind = decode_bind(f)?;
                let text = if bind.statement.is_empty() {
                    self.unnamed.as_ref().map(|u| u.query().to_owned())
                } else {
                    self.statements.get(bind.statement).map(|d| d.query.clone())
                };
                if let Some(text) = text {
                    request.statements.push(analyzer.classify(&text));
                }
                Visit::More
            }
            _ => Visit::More,
        })
    }

    /// The session's consistency level: `SET pgfleet.consistency` / `-c pgfleet.consistency=…`,
    /// else the user's `default_consistency`. (A comment hint overrides it per request.)
    pub(super) fn consistency(&self) -> Result<Consistency, ProxyError> {
        session_consistency(&self.params, self.default_consistency)
    }

    /// `SET pgfleet.max_staleness = '200ms'` (bounded consistency).
    fn max_staleness(&self) -> Result<Option<Duration>, ProxyError> {
        let Some(v) = self.params.desired().get("pgfleet.max_staleness") else {
            return Ok(None);
        };
        pgfleet_config::units::parse_duration(v.trim())
            .map(Some)
            .map_err(|e| {
                bad_setting(
                    "pgfleet.max_staleness",
                    v,
                    &format!("{e}; write e.g. '200ms'"),
                )
            })
    }

    fn role_override(&self) -> Result<RoleOverride, ProxyError> {
        match self.params.desired().get("pgfleet.role") {
            None => Ok(self.default_role),
            Some(v) => RoleOverride::parse(v)
                .ok_or_else(|| bad_setting("pgfleet.role", v, "expected primary, replica or auto")),
        }
    }

    /// The replicas a writing transaction's COMMIT waits for: `SET pgfleet.write_quorum = N`,
    /// else the cluster's `write_quorum`.
    pub(super) fn write_quorum(&self) -> Result<usize, ProxyError> {
        session_write_quorum(&self.params, self.pools.state.as_deref())
    }
}

/// A session's consistency level from its settings, else `default`.
pub(super) fn session_consistency(
    params: &super::SessionParams,
    default: Consistency,
) -> Result<Consistency, ProxyError> {
    match params.desired().get("pgfleet.consistency") {
        None => Ok(default),
        Some(v) => parse_consistency(v).ok_or_else(|| {
            bad_setting(
                "pgfleet.consistency",
                v,
                "expected eventual, bounded, read_your_writes or strong",
            )
        }),
    }
}

/// A session's write quorum from its settings, else the cluster's.
pub(super) fn session_write_quorum(
    params: &super::SessionParams,
    state: Option<&ClusterState>,
) -> Result<usize, ProxyError> {
    let Some(state) = state else {
        return Ok(0);
    };
    let configured = state.settings.load().write_quorum;
    match params.desired().get("pgfleet.write_quorum") {
        None => Ok(configured),
        Some(v) => v.trim().parse::<usize>().map_err(|_| {
            bad_setting(
                "pgfleet.write_quorum",
                v,
                "expected a number of replicas (0 = do not wait)",
            )
        }),
    }
}

/// A consistency level by its (case-insensitive) name.
fn parse_consistency(name: &str) -> Option<Consistency> {
    Consistency::CHOICES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
        .map(|(_, c)| *c)
}

/// A `pgfleet.*` session setting with a value pgfleet cannot use: the request fails (22023) and
/// says which setting, which value and what would be right; nothing is sent to a server.
fn bad_setting(name: &str, value: &str, expected: &str) -> ProxyError {
    ProxyError::Client {
        code: "22023",
        message: format!("pgfleet: invalid value for {name}: \"{value}\" ({expected})"),
    }
}

/// The primary's endpoint. With no primary (failover in progress) waits up to `failover_timeout`
/// for one to appear; two primaries refuse at once, naming both.
async fn primary(state: &ClusterState) -> Result<usize, ProxyError> {
    let deadline = Instant::now() + state.settings.load().failover_timeout;
    loop {
        let found = state.view.read().primary(Instant::now());
        match found {
            Ok(i) => return Ok(i),
            Err(e @ PrimaryError::SplitBrain { .. }) => {
                return Err(ProxyError::Client {
                    code: "57P03",
                    message: format!("pgfleet: refusing writes to cluster `{}`: {e}", state.name),
                })
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(ProxyError::Client {
                    code: "57P03",
                    message: format!(
                        "pgfleet: cluster `{}` has had no primary for {}s: {e}",
                        state.name,
                        state.settings.load().failover_timeout.as_secs()
                    ),
                })
            }
            Err(_) => tokio::time::sleep(FAILOVER_POLL).await,
        }
    }
}
