//! Choosing the endpoint for the transaction a request opens: classify every statement of the
//! request (all of it must be buffered, up to its Sync), apply the session's role override and
//! settings, then ask the cluster view for the primary or a reader.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pgfleet_sql::{Classification, Target};
use pgfleet_wire::frontend::{decode_bind, decode_parse, decode_query};
use pgfleet_wire::tag::frontend as t;
use pgfleet_wire::Frame;

use super::Session;
use crate::replication::{pick_reader, ClusterState, Lsn, PrimaryError};
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

impl Session<'_> {
    /// The endpoint for the transaction `first` opens, and whether it is the primary's.
    pub(super) async fn route(&self, first: &Frame) -> Result<(usize, Target), ProxyError> {
        let pools = &self.pools;
        let Some(state) = pools.state.as_ref().filter(|_| pools.endpoints.len() > 1) else {
            return Ok((pools.configured_primary, Target::Primary));
        };
        let (target, executes) = match self.classify_request(first)? {
            // Nothing but Close/Describe/Sync: a no-op outside a transaction, any server will do.
            Some(RequestShape {
                statements,
                executes,
            }) if statements.is_empty() => (Target::Replica, executes),
            Some(RequestShape {
                statements,
                executes,
            }) => {
                let settings = state.settings.load();
                let catalog = state.catalog.load();
                let refs: Vec<&Classification> = statements.iter().map(Arc::as_ref).collect();
                let ctx = RouteContext {
                    role: self.role_override(),
                    volatile: &catalog,
                    allowlist: &settings.allowlist,
                };
                let (target, reason) = decide(&refs, &ctx);
                tracing::debug!(client = self.info.id, ?target, ?reason, "routed");
                (target, executes)
            }
            None => (Target::Primary, true),
        };
        let consistency = self.consistency();
        let target = if consistency == Consistency::Strong {
            Target::Primary
        } else {
            target
        };
        match target {
            Target::Primary => Ok((primary(state).await?, Target::Primary)),
            Target::Replica => {
                let settings = state.settings.load();
                let mut policy = settings.read_policy;
                match consistency {
                    Consistency::ReadYourWrites => {
                        let after = self
                            .params
                            .desired()
                            .get("pgfleet.after_lsn")
                            .and_then(|v| Lsn::parse(v).ok());
                        policy.min_lsn = self.last_write_lsn.max(after);
                    }
                    Consistency::Bounded => {
                        policy.max_staleness =
                            Some(self.max_staleness().unwrap_or(policy.max_lag_time));
                    }
                    Consistency::Eventual | Consistency::Strong => {}
                }
                let view = state.view.read();
                tracing::debug!(client = self.info.id, ?consistency, min_lsn = ?policy.min_lsn, "picking a reader");
                // Only requests that execute something advance round robin, so a driver that
                // prepares before every execution (two requests per query) still spreads them.
                let rr = if executes {
                    state.next_rr()
                } else {
                    state.current_rr()
                };
                pick_reader(&view, &policy, rr, state.next_random(), Instant::now())
                    .map(|i| {
                        (
                            i,
                            if view.primary(Instant::now()) == Ok(i) {
                                Target::Primary
                            } else {
                                Target::Replica
                            },
                        )
                    })
                    .map_err(|no| ProxyError::Client {
                        code: "57P03",
                        message: format!(
                            "pgfleet: no server of cluster `{}` can serve this read: {no}",
                            state.name
                        ),
                    })
            }
        }
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

    /// The session's consistency level: a comment hint is not consulted here (it applies per
    /// statement and is rare); `SET pgfleet.consistency` / `-c pgfleet.consistency=…`, else the
    /// user's `default_consistency`.
    pub(super) fn consistency(&self) -> Consistency {
        self.params
            .desired()
            .get("pgfleet.consistency")
            .and_then(|v| {
                Consistency::CHOICES
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(v.trim()))
                    .map(|(_, c)| *c)
            })
            .unwrap_or(self.default_consistency)
    }

    /// `SET pgfleet.max_staleness = '200ms'` (bounded consistency).
    fn max_staleness(&self) -> Option<Duration> {
        let v = self.params.desired().get("pgfleet.max_staleness")?;
        pgfleet_config::units::parse_duration(v.trim()).ok()
    }

    fn role_override(&self) -> RoleOverride {
        self.params
            .desired()
            .get("pgfleet.role")
            .and_then(|v| RoleOverride::parse(v))
            .unwrap_or(self.default_role)
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
