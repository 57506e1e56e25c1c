//! One target on one connection: session settings, the advisory lock, the history table, and
//! each step in its own transaction (or outside one, statement by statement, when a statement
//! cannot run in a transaction block), retrying lock timeouts with backoff.

use std::time::{Duration, Instant};

use pgfleet_meta::endpoint::error_text;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::{Action, Outcome, RunOptions};
use crate::plan::{plan_target, status, AppliedRow, Step};
use crate::script::{RunMode, Script};
use crate::source::{Migration, MigrationSet};
use crate::target::{quote_ident, Target};

/// `classid` of pgfleet migrate's advisory locks ("pgmi"); the objid is `hashtext(lock key)`.
const LOCK_CLASS: i32 = 0x7067_6d69;
/// How often a waiting runner retries the advisory lock.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// Carries out `action` on `target` over `client`; `note` receives remarks worth printing.
pub(crate) async fn visit(
    client: &Client,
    target: &Target,
    set: &MigrationSet,
    action: Action,
    opts: &RunOptions,
    note: &(dyn Fn(String) + Send + Sync),
) -> Outcome {
    if let Err(e) = configure(client, target, opts).await {
        return failed(format!("setting up the session: {e}"), Vec::new());
    }
    let migrations: Vec<&Migration> = set.of_kind(target.kind).collect();
    match action {
        Action::Status => match read_history(client, target).await {
            Ok(applied) => Outcome::Status(status(&migrations, &applied)),
            Err(e) => failed(e, Vec::new()),
        },
        Action::Plan(command) => match read_history(client, target).await {
            Ok(applied) => match plan_target(&migrations, &applied, command) {
                Ok(steps) if steps.is_empty() => Outcome::UpToDate,
                Ok(steps) => Outcome::Planned {
                    steps: steps.iter().map(Step::describe).collect(),
                },
                Err(problems) => failed(join(&problems), Vec::new()),
            },
            Err(e) => failed(e, Vec::new()),
        },
        Action::Execute(command) => {
            // Nothing to do without the lock means nothing to do: another runner can only have
            // moved the target further. This keeps an up-to-date target at two round trips.
            if let Ok(applied) = read_history(client, target).await {
                if plan_target(&migrations, &applied, command).is_ok_and(|s| s.is_empty()) {
                    return Outcome::UpToDate;
                }
            }
            if let Err(e) = lock(client, target, opts).await {
                return failed(e, Vec::new());
            }
            let outcome = execute(client, target, &migrations, command, opts, note).await;
            // A broken connection released the lock with the session.
            let _ = client
                .execute(
                    "SELECT pg_advisory_unlock($1, hashtext($2))",
                    &[&LOCK_CLASS, &target.lock_key()],
                )
                .await;
            outcome
        }
    }
}

fn failed(error: String, done: Vec<String>) -> Outcome {
    Outcome::Failed { error, done }
}

fn join(problems: &[crate::plan::Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

async fn execute(
    client: &Client,
    target: &Target,
    migrations: &[&Migration],
    command: crate::plan::Command,
    opts: &RunOptions,
    note: &(dyn Fn(String) + Send + Sync),
) -> Outcome {
    // Read under the lock: another runner may have finished just before.
    let applied = match read_history(client, target).await {
        Ok(a) => a,
        Err(e) => return failed(e, Vec::new()),
    };
    let steps = match plan_target(migrations, &applied, command) {
        Ok(steps) if steps.is_empty() => return Outcome::UpToDate,
        Ok(steps) => steps,
        Err(problems) => return failed(join(&problems), Vec::new()),
    };
    if let Err(e) = ensure_history(client, target).await {
        return failed(e, Vec::new());
    }
    let mut done = Vec::new();
    for step in &steps {
        let result = match step {
            Step::Apply(m) => {
                run_script(client, target, m, &m.up, StepKind::Apply, opts, note).await
            }
            Step::Revert(m) => match &m.down {
                Some(down) => {
                    run_script(client, target, m, down, StepKind::Revert, opts, note).await
                }
                None => Err(format!("{} has no down script", m.label())),
            },
            Step::Repair { migration, .. } => client
                .execute(
                    &format!(
                        "UPDATE {} SET checksum = $2 WHERE version = $1",
                        target.history_table()
                    ),
                    &[&migration.version, &migration.up.checksum],
                )
                .await
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "recording the new checksum of {}: {}",
                        migration.label(),
                        error_text(&e)
                    )
                }),
        };
        match result {
            Ok(()) => done.push(step.describe()),
            Err(e) => return failed(e, done),
        }
    }
    Outcome::Applied { steps: done }
}

/// Session settings for this target: timeouts and the search_path (the tenant's schema first,
/// or the login's default for other targets: connections are reused across targets).
async fn configure(client: &Client, target: &Target, opts: &RunOptions) -> Result<(), String> {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let timeouts = (ms(opts.lock_timeout), ms(opts.statement_timeout));
    let result = match target.search_path() {
        Some(search_path) => client
            .execute(
                "SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false), \
                 set_config('search_path', $3, false)",
                &[&timeouts.0, &timeouts.1, &search_path],
            )
            .await
            .map(|_| ()),
        None => match client
            .execute(
                "SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)",
                &[&timeouts.0, &timeouts.1],
            )
            .await
        {
            Ok(_) => client.batch_execute("RESET search_path").await,
            Err(e) => Err(e),
        },
    };
    result.map_err(|e| error_text(&e))
}

/// The history rows; none when the table (or the tenant's schema) does not exist yet. One round
/// trip: the query itself tells a missing table apart, no catalog lookup first.
async fn read_history(client: &Client, target: &Target) -> Result<Vec<AppliedRow>, String> {
    let table = target.history_table();
    let rows = match client
        .query(
            &format!("SELECT version, name, checksum FROM {table} ORDER BY version"),
            &[],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e)
            if e.code() == Some(&SqlState::UNDEFINED_TABLE)
                || e.code() == Some(&SqlState::INVALID_SCHEMA_NAME) =>
        {
            return Ok(Vec::new())
        }
        Err(e) => {
            return Err(format!(
                "reading the history table {table}: {}",
                error_text(&e)
            ))
        }
    };
    Ok(rows
        .iter()
        .map(|r| AppliedRow {
            version: r.get(0),
            name: r.get(1),
            checksum: r.get(2),
        })
        .collect())
}

/// Creates the target's schema (for tenant schemas: before any migration, so that nothing
/// lands in a shared schema) and its history table.
async fn ensure_history(client: &Client, target: &Target) -> Result<(), String> {
    let sql = format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {table} (
             version         bigint PRIMARY KEY,
             name            text NOT NULL,
             checksum        text NOT NULL,
             applied_at      timestamptz NOT NULL DEFAULT now(),
             applied_by      text NOT NULL DEFAULT current_user,
             duration_ms     bigint NOT NULL,
             pgfleet_version text NOT NULL,
             transactional   boolean NOT NULL
         );",
        schema = quote_ident(target.history_schema()),
        table = target.history_table()
    );
    client.batch_execute(&sql).await.map_err(|e| {
        format!(
            "creating the history table {}: {}",
            target.history_table(),
            error_text(&e)
        )
    })
}

/// Takes the target's session advisory lock, waiting up to `lock_wait`.
async fn lock(client: &Client, target: &Target, opts: &RunOptions) -> Result<(), String> {
    let key = target.lock_key();
    let deadline = Instant::now() + opts.lock_wait;
    loop {
        let got: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&LOCK_CLASS, &key],
            )
            .await
            .map_err(|e| format!("taking the migration lock: {}", error_text(&e)))?
            .get(0);
        if got {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let holder = client
                .query_opt(
                    "SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'), \
                            to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ') \
                     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
                       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                       AND l.classid = $1::int4::oid AND l.objid = hashtext($2)::oid",
                    &[&LOCK_CLASS, &key],
                )
                .await
                .ok()
                .flatten()
                .map(|r| {
                    format!(
                        " (held by pid {} `{}` from {}, connected since {})",
                        r.get::<_, i32>(0),
                        r.get::<_, String>(1),
                        r.get::<_, String>(2),
                        r.get::<_, String>(3)
                    )
                })
                .unwrap_or_default();
            return Err(format!(
                "another pgfleet migrate is migrating this target{holder}; waited {}; rerun when it is done (or raise --lock-wait)",
                humanize(opts.lock_wait)
            ));
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StepKind {
    Apply,
    Revert,
}

/// Runs one script and records it (apply: insert the history row; revert: delete it).
async fn run_script(
    client: &Client,
    target: &Target,
    m: &Migration,
    script: &Script,
    kind: StepKind,
    opts: &RunOptions,
    note: &(dyn Fn(String) + Send + Sync),
) -> Result<(), String> {
    let started = Instant::now();
    let record = |transactional: bool| {
        let table = target.history_table();
        match kind {
            StepKind::Apply => format!(
                "INSERT INTO {table} (version, name, checksum, duration_ms, pgfleet_version, transactional) \
                 VALUES ($1, $2, $3, $4, $5, {transactional})"
            ),
            StepKind::Revert => format!("DELETE FROM {table} WHERE version = $1"),
        }
    };
    let record_params =
        |duration_ms: i64| -> Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> {
            match kind {
                StepKind::Apply => vec![
                    Box::new(m.version),
                    Box::new(m.name.clone()),
                    Box::new(m.up.checksum.clone()),
                    Box::new(duration_ms),
                    Box::new(env!("CARGO_PKG_VERSION").to_string()),
                ],
                StepKind::Revert => vec![Box::new(m.version)],
            }
        };
    let file = script.file_name();
    match script.run_mode() {
        RunMode::Transaction => {
            let mut attempt = 0;
            loop {
                // Which part failed decides how the error is told: the script (with its line)
                // or recording it in the history table.
                let result: Result<(), (bool, tokio_postgres::Error)> = async {
                    let in_script = |e| (true, e);
                    let recording = |e| (false, e);
                    client.batch_execute("BEGIN").await.map_err(recording)?;
                    client
                        .batch_execute(&script.text)
                        .await
                        .map_err(in_script)?;
                    // The history row is written as the runner's login, whatever role the
                    // migration switched to.
                    client
                        .batch_execute("RESET ROLE")
                        .await
                        .map_err(recording)?;
                    let sql = record(true);
                    let params = record_params(started.elapsed().as_millis() as i64);
                    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                        .iter()
                        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                        .collect();
                    client.execute(&sql, &refs).await.map_err(recording)?;
                    client.batch_execute("COMMIT").await.map_err(in_script)
                }
                .await;
                match result {
                    Ok(()) => return Ok(()),
                    Err((in_script, e)) => {
                        let _ = client.batch_execute("ROLLBACK").await;
                        if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
                            && attempt < opts.lock_retries
                        {
                            let wait = opts.retry_backoff * 2u32.saturating_pow(attempt);
                            note(format!(
                                "{file}: lock timeout (attempt {}), rolled back; retrying in {}",
                                attempt + 1,
                                humanize(wait)
                            ));
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                            continue;
                        }
                        return Err(if in_script {
                            format!("{file}{}: {}", position(script, &e), error_text(&e))
                        } else {
                            format!(
                                "{file}: recording it in {}: {}",
                                target.history_table(),
                                error_text(&e)
                            )
                        });
                    }
                }
            }
        }
        RunMode::Outside => {
            if let Some((s, why)) = script.first_outside() {
                note(format!(
                    "{file}: runs outside a transaction ({why} at line {}); statements are applied one by one",
                    s.line
                ));
            }
            for (i, statement) in script.statements.iter().enumerate() {
                let mut attempt = 0;
                loop {
                    match client.batch_execute(&statement.sql).await {
                        Ok(()) => break,
                        Err(e)
                            if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
                                && attempt < opts.lock_retries =>
                        {
                            let wait = opts.retry_backoff * 2u32.saturating_pow(attempt);
                            note(format!(
                                "{file} line {}: lock timeout (attempt {}); retrying in {}",
                                statement.line,
                                attempt + 1,
                                humanize(wait)
                            ));
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                        }
                        Err(e) => {
                            let kept = if i > 0 {
                                format!("; the {i} statement(s) before it ran outside a transaction and stay applied")
                            } else {
                                String::new()
                            };
                            return Err(format!(
                                "{file} line {}: {}{kept}",
                                statement.line,
                                error_text(&e)
                            ));
                        }
                    }
                }
            }
            let sql = record(false);
            if let Err(e) = client.batch_execute("RESET ROLE").await {
                return Err(format!("{file}: {}", error_text(&e)));
            }
            let params = record_params(started.elapsed().as_millis() as i64);
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            client.execute(&sql, &refs).await.map(|_| ()).map_err(|e| {
                format!(
                    "{file}: recording it in {}: {}",
                    target.history_table(),
                    error_text(&e)
                )
            })
        }
    }
}

/// " line N" for a database error with a position in the script.
fn position(script: &Script, e: &tokio_postgres::Error) -> String {
    match e.as_db_error().and_then(|d| d.position()) {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => {
            let before: String = script
                .text
                .chars()
                .take((*p as usize).saturating_sub(1))
                .collect();
            format!(" line {}", before.matches('\n').count() + 1)
        }
        _ => String::new(),
    }
}

/// "30s", "500ms".
fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
