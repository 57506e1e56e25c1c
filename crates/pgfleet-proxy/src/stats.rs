//! Process-wide counters (SHOW STATS). Labels are bounded enums, never SQL text. The counters of
//! every transaction (requests, transactions, bytes) are kept per client instead
//! ([`crate::clients::Traffic`]).

use std::sync::atomic::{AtomicU64, Ordering};

use pgfleet_sql::PinReason;

/// All pin reasons, in the order of [`Stats::pins`].
pub const PIN_REASONS: [PinReason; 8] = [
    PinReason::Listen,
    PinReason::AdvisoryLock,
    PinReason::WithHoldCursor,
    PinReason::TempObject,
    PinReason::SqlPrepare,
    PinReason::SessionAuthorization,
    PinReason::SetConfigDynamic,
    PinReason::Load,
];

/// Name of a pin reason in SHOW STATS and metrics.
pub fn pin_reason_name(r: PinReason) -> &'static str {
    match r {
        PinReason::Listen => "listen",
        PinReason::AdvisoryLock => "advisory_lock",
        PinReason::WithHoldCursor => "with_hold_cursor",
        PinReason::TempObject => "temp_object",
        PinReason::SqlPrepare => "sql_prepare",
        PinReason::SessionAuthorization => "session_authorization",
        PinReason::SetConfigDynamic => "set_config_dynamic",
        PinReason::Load => "load",
    }
}

/// Counters since start.
#[derive(Default, Debug)]
pub struct Stats {
    /// Client connections accepted (authenticated).
    pub clients_total: AtomicU64,
    /// Client connections refused (auth failure, protocol error, limit).
    pub clients_refused: AtomicU64,
    /// Requests run across several shards (merged reads, two-phase-commit writes).
    pub cross_shard: AtomicU64,
    /// Times a client's session settings were replayed on another server.
    pub settings_replays: AtomicU64,
    /// Statements re-prepared on a server that lacked them.
    pub reprepares: AtomicU64,
    /// Checkouts that timed out (53300 errors).
    pub checkout_timeouts: AtomicU64,
    /// Server connections lost while in use.
    pub server_losses: AtomicU64,
    /// Cancel requests forwarded.
    pub cancels: AtomicU64,
    /// Reads retried on another server after their replica failed before answering.
    pub read_retries: AtomicU64,
    /// COMMITs answered after `quorum_timeout` without their write quorum.
    pub quorum_timeouts: AtomicU64,
    /// Sessions pinned to their server, per reason (index in [`PIN_REASONS`]).
    pub pins: [AtomicU64; 8],
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn pinned(&self, r: PinReason) {
        if let Some(i) = PIN_REASONS.iter().position(|x| *x == r) {
            Self::add(&self.pins[i], 1);
        }
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
