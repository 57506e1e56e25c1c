//! The thin I/O step: visits targets with bounded concurrency per server and carries out what
//! [`crate::plan`] decides on each. On a failure no new target starts (unless
//! `continue_on_error`), running ones finish, and every target gets an [`Outcome`].

mod servers;
mod session;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pgfleet_config::Config;
use pgfleet_meta::Login;
use tokio::task::JoinSet;

use crate::plan::{Command, TargetStatus};
use crate::source::MigrationSet;
use crate::target::Target;
use servers::Servers;

/// How a run behaves.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Concurrent targets per server.
    pub jobs: usize,
    /// Keep starting targets after one failed.
    pub continue_on_error: bool,
    /// `lock_timeout` for migrations (0 = none).
    pub lock_timeout: Duration,
    /// `statement_timeout` for migrations (0 = none).
    pub statement_timeout: Duration,
    /// How long to wait for another runner's lock on a target.
    pub lock_wait: Duration,
    /// Retries of a migration that hit a lock timeout.
    pub lock_retries: u32,
    /// First wait before a retry; doubles each time.
    pub retry_backoff: Duration,
    /// Server login (the database is chosen per target).
    pub login: Login,
}

impl RunOptions {
    /// Defaults: 4 jobs, stop on failure, lock_timeout 5 s, statement_timeout 30 min, wait 30 s
    /// for another runner, 5 retries from 500 ms.
    pub fn new(login: Login) -> RunOptions {
        RunOptions {
            jobs: 4,
            continue_on_error: false,
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30 * 60),
            lock_wait: Duration::from_secs(30),
            lock_retries: 5,
            retry_backoff: Duration::from_millis(500),
            login,
        }
    }
}

/// What to do on each target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read the history; report version and pending count.
    Status,
    /// Read the history; report the steps `Command` would take.
    Plan(Command),
    /// Take the lock and carry out `Command`.
    Execute(Command),
}

/// What happened on one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Steps were carried out (descriptions, in order).
    Applied {
        /// The steps done.
        steps: Vec<String>,
    },
    /// Nothing to do.
    UpToDate,
    /// Dry run: these steps would run.
    Planned {
        /// The steps.
        steps: Vec<String>,
    },
    /// Status of the target.
    Status(TargetStatus),
    /// It failed; `done` lists the steps completed before.
    Failed {
        /// What went wrong, with file, line and server message.
        error: String,
        /// Steps completed before the failure.
        done: Vec<String>,
    },
    /// Not started because another target failed first.
    NotStarted,
    /// Left alone on purpose.
    Skipped {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// True for a failure.
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed { .. })
    }
}

/// One target and what happened there.
#[derive(Clone, Debug)]
pub struct TargetResult {
    /// The target.
    pub target: Target,
    /// What happened.
    pub outcome: Outcome,
}

/// Progress reports while a run goes on.
#[derive(Clone, Debug)]
pub enum Event {
    /// A phase starts with this many targets.
    Start {
        /// Targets in the phase.
        targets: usize,
    },
    /// A remark about a target (a statement run outside a transaction, a retry).
    Note {
        /// The target's name.
        target: String,
        /// The remark.
        message: String,
    },
    /// A target is done (any outcome).
    Finished {
        /// The target's name.
        target: String,
        /// Whether it failed.
        failed: bool,
    },
}

/// Receives [`Event`]s; called from several tasks.
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// An event sink that drops everything.
pub fn no_events() -> EventSink {
    Arc::new(|_| {})
}

/// Visits `targets` (in order, `opts.jobs` at a time per server) doing `action` on each.
/// `stop` is shared between phases: once set, no new target starts.
pub(crate) async fn run_targets(
    config: &Config,
    set: Arc<MigrationSet>,
    targets: Vec<Target>,
    action: Action,
    opts: Arc<RunOptions>,
    events: EventSink,
    stop: Arc<AtomicBool>,
) -> Vec<TargetResult> {
    events(Event::Start {
        targets: targets.len(),
    });
    let mut clusters: Vec<(String, String)> = Vec::new();
    for t in targets.iter().filter(|t| t.skip.is_none()) {
        if !clusters.iter().any(|(c, _)| c == &t.cluster) {
            clusters.push((t.cluster.clone(), t.server_database.clone()));
        }
    }
    let servers = Arc::new(Servers::resolve(config, &clusters, &opts.login, opts.jobs).await);
    let mut tasks = JoinSet::new();
    for (index, target) in targets.into_iter().enumerate() {
        let (set, opts, events, stop, servers) = (
            set.clone(),
            opts.clone(),
            events.clone(),
            stop.clone(),
            servers.clone(),
        );
        tasks.spawn(async move {
            let outcome = visit_one(&target, &set, action, &opts, &events, &stop, &servers).await;
            if outcome.is_failure() && !opts.continue_on_error {
                stop.store(true, Ordering::SeqCst);
            }
            events(Event::Finished {
                target: target.name(),
                failed: outcome.is_failure(),
            });
            (index, TargetResult { target, outcome })
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => results.push(r),
            // A panic in a visit is a bug; the target is reported as not done by its absence
            // below, so surface it loudly instead.
            Err(e) => tracing::error!(error = %e, "a migration task panicked"),
        }
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

async fn visit_one(
    target: &Target,
    set: &MigrationSet,
    action: Action,
    opts: &RunOptions,
    events: &EventSink,
    stop: &AtomicBool,
    servers: &Servers,
) -> Outcome {
    if let Some(reason) = &target.skip {
        return Outcome::Skipped {
            reason: reason.clone(),
        };
    }
    let slot = match servers.slot(&target.cluster) {
        Ok(s) => s,
        Err(e) => {
            return Outcome::Failed {
                error: e,
                done: Vec::new(),
            }
        }
    };
    let Ok(_permit) = slot.permits.clone().acquire_owned().await else {
        return Outcome::NotStarted;
    };
    if stop.load(Ordering::SeqCst) {
        return Outcome::NotStarted;
    }
    let client = match slot.checkout(&opts.login, &target.server_database).await {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Failed {
                error: e.to_string(),
                done: Vec::new(),
            }
        }
    };
    let name = target.name();
    let note = |message: String| {
        events(Event::Note {
            target: name.clone(),
            message,
        })
    };
    let outcome = session::visit(&client, target, set, action, opts, &note).await;
    // Migrations may have changed session state (role, settings, temporary tables): DISCARD ALL
    // before the session serves another target. After a failure it is closed instead.
    let reusable = match &outcome {
        Outcome::UpToDate | Outcome::Status(_) | Outcome::Planned { .. } => true,
        Outcome::Applied { .. } => client.batch_execute("DISCARD ALL").await.is_ok(),
        Outcome::Failed { .. } | Outcome::NotStarted | Outcome::Skipped { .. } => false,
    };
    if reusable {
        slot.checkin(&target.server_database, client);
    }
    outcome
}
