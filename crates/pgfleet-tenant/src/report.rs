//! Printable text for the commands' results (pure): one line per tenant for `list`, a key/value
//! block for `show`, and a per-place summary for `policies`.

use std::fmt::Write as _;
use std::time::SystemTime;

use pgfleet_config::TenantModel;
use pgfleet_meta::Tenant;

use crate::lifecycle::TenantObject;
use crate::policy::short_list;
use crate::provision::{Created, Dropped, MigrationsDone, StateOutcome, TenantView};
use crate::rls::PolicyReport;

/// A time as RFC 3339 in UTC, to the second.
pub fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The schema or database of a directory entry, `-` for the row model.
fn own_object(t: &Tenant) -> &str {
    match t.model {
        TenantModel::Schema => t.schema_name.as_deref().unwrap_or("-"),
        TenantModel::Database => t.database_name.as_deref().unwrap_or("-"),
        TenantModel::Row => "-",
    }
}

fn shard_text(shard: Option<i32>) -> String {
    shard.map_or_else(|| "-".to_string(), |s| s.to_string())
}

/// `list`: a header and one aligned line per tenant.
pub fn list_text(database: &str, model: TenantModel, tenants: &[Tenant]) -> String {
    let object_header = match model {
        TenantModel::Schema => "SCHEMA",
        TenantModel::Database => "DATABASE",
        TenantModel::Row => "OBJECT",
    };
    let header = ["NAME", "STATE", "SHARD", object_header, "CREATED"];
    let rows: Vec<[String; 5]> = tenants
        .iter()
        .map(|t| {
            [
                t.name.clone(),
                t.state.as_str().to_string(),
                shard_text(t.shard),
                own_object(t).to_string(),
                time(t.created_at),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} tenant(s) in database `{database}` (model {})",
        tenants.len(),
        model.as_str()
    );
    if tenants.is_empty() {
        return out;
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `show`: one `key: value` line each.
pub fn show_text(view: &TenantView) -> String {
    let t = &view.tenant;
    let mut lines: Vec<(&str, String)> = vec![
        ("tenant", t.name.clone()),
        ("database", t.database.clone()),
        ("model", t.model.as_str().to_string()),
    ];
    match t.model {
        TenantModel::Schema => lines.push(("schema", own_object(t).to_string())),
        TenantModel::Database => lines.push(("tenant database", own_object(t).to_string())),
        TenantModel::Row => {}
    }
    lines.push(("shard", shard_text(t.shard)));
    lines.push((
        "place",
        match (&view.place, &view.object) {
            (Ok(p), Ok(o)) => o.describe(p),
            (Err(e), _) | (_, Err(e)) => format!("unknown: {e}"),
        },
    ));
    lines.push(("state", t.state.as_str().to_string()));
    lines.push(("created_at", time(t.created_at)));
    lines.push(("updated_at", time(t.updated_at)));
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (k, v) in lines {
        let key = format!("{k}:");
        let _ = writeln!(out, "{key:<width$} {v}");
    }
    out
}

/// `create`: what was made and what the migrations did.
pub fn created_text(c: &Created, migrations_dir: Option<&str>) -> String {
    let mut out = String::new();
    let t = &c.tenant;
    match &c.object {
        TenantObject::Rows { column, .. } => {
            let _ = writeln!(
                out,
                "tenant `{}` added to database `{}` (model row, {}): nothing to create; its rows are told apart by column {column}",
                t.name,
                t.database,
                c.place
            );
        }
        object => {
            let _ = writeln!(
                out,
                "tenant `{}` created in database `{}`: {}",
                t.name,
                t.database,
                object.describe(&c.place)
            );
        }
    }
    let dir = migrations_dir.unwrap_or("migrations");
    let migrations = match &c.migrations {
        MigrationsDone::NotApplicable => None,
        MigrationsDone::NoneGiven => Some(format!(
            "no migrations directory ({dir}); the tenant starts empty"
        )),
        MigrationsDone::NoTenantMigrations => Some(format!(
            "{dir} has no tenant migrations; the tenant starts empty"
        )),
        MigrationsDone::UpToDate => Some("tenant migrations: already current".to_string()),
        MigrationsDone::Applied(steps) => Some(format!(
            "tenant migrations: {} step(s): {}",
            steps.len(),
            steps.join("; ")
        )),
    };
    if let Some(m) = migrations {
        let _ = writeln!(out, "{m}");
    }
    let _ = writeln!(out, "state: {}", t.state.as_str());
    out
}

/// `drop`: what went.
pub fn dropped_text(d: &Dropped) -> String {
    let name = &d.tenant.name;
    let described = d.object.describe(&d.place);
    match (&d.object, d.object_existed) {
        (TenantObject::Rows { .. }, _) => format!(
            "tenant `{name}` removed from the tenant directory; its {described} stay (delete them yourself if they should go)\n"
        ),
        (_, true) => format!("tenant `{name}` dropped: {described} dropped, directory entry removed\n"),
        (_, false) => format!(
            "tenant `{name}` removed from the tenant directory; its {described} was already gone\n"
        ),
    }
}

/// `suspend` / `resume`.
pub fn state_text(outcome: &StateOutcome) -> String {
    match outcome {
        StateOutcome::Changed(t) => format!("tenant `{}` is now {}\n", t.name, t.state.as_str()),
        StateOutcome::Already(t) => format!(
            "tenant `{}` is already {}; nothing changed\n",
            t.name,
            t.state.as_str()
        ),
    }
}

/// `policies`: per place, the tables that are right, those that need (or got) fixes, those
/// without the tenant column; then a summary line. Warnings are not included (see
/// [`PolicyReport::warnings`]).
pub fn policies_text(r: &PolicyReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "row-level security of database `{}` (column {}, setting {}):",
        r.database, r.spec.column, r.spec.setting
    );
    let (mut ok, mut needing, mut failed) = (0usize, 0usize, 0usize);
    for p in &r.places {
        let _ = writeln!(out, "{}, database {}:", p.place, p.server_database);
        if let Some(e) = &p.error {
            let _ = writeln!(out, "  error: {e}");
            continue;
        }
        for (table, fixes) in &p.fixed {
            let _ = writeln!(out, "  fixed {table}: {}", fixes.join("; "));
        }
        for (table, error) in &p.failed {
            let _ = writeln!(out, "  failed {table}: {error}");
        }
        failed += p.failed.len();
        let good: Vec<String> = p
            .checks
            .iter()
            .filter(|c| c.fixes.is_empty())
            .map(|c| c.table.clone())
            .collect();
        ok += good.len();
        if !good.is_empty() {
            let _ = writeln!(out, "  ok: {}", good.join(", "));
        }
        for c in p.checks.iter().filter(|c| !c.fixes.is_empty()) {
            needing += 1;
            if !p.failed.iter().any(|(t, _)| *t == c.table) {
                let what: Vec<String> = c.fixes.iter().map(|f| f.describe()).collect();
                let _ = writeln!(out, "  needs fixing {}: {}", c.table, what.join("; "));
            }
        }
        if !p.without_column.is_empty() {
            let _ = writeln!(
                out,
                "  without column {} (no policy, shared by every tenant): {}",
                r.spec.column,
                short_list(&p.without_column)
            );
        }
    }
    let errors = r.places.iter().filter(|p| p.error.is_some()).count();
    let mut summary = format!("{ok} table(s) ok, {needing} need fixing");
    if failed > 0 {
        summary.push_str(&format!(", {failed} fix(es) failed"));
    }
    if errors > 0 {
        summary.push_str(&format!(", {errors} place(s) not checked"));
    }
    if needing > 0 && !r.applied {
        summary.push_str("; run `pgfleet tenant policies --apply` to fix them");
    }
    let _ = writeln!(out, "{summary}");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use pgfleet_meta::TenantState;

    use super::*;
    use crate::policy::{Fix, PolicySpec, TableCheck};
    use crate::rls::PlaceResult;
    use crate::scope::Place;

    fn tenant(name: &str, shard: Option<i32>) -> Tenant {
        Tenant {
            database: "app".into(),
            name: name.into(),
            model: TenantModel::Schema,
            schema_name: Some(format!("tenant_{name}")),
            database_name: None,
            shard,
            state: TenantState::Active,
            created_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            updated_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100),
        }
    }

    #[test]
    fn list_is_aligned() {
        let text = list_text(
            "app",
            TenantModel::Schema,
            &[tenant("acme", None), tenant("globex_corp", Some(2))],
        );
        assert_eq!(
            text,
            "2 tenant(s) in database `app` (model schema)\n\
             NAME         STATE   SHARD  SCHEMA              CREATED\n\
             acme         active  -      tenant_acme         2023-11-14T22:13:20Z\n\
             globex_corp  active  2      tenant_globex_corp  2023-11-14T22:13:20Z\n"
        );
        assert_eq!(
            list_text("app", TenantModel::Row, &[]),
            "0 tenant(s) in database `app` (model row)\n"
        );
    }

    #[test]
    fn show_has_every_detail() {
        let view = TenantView {
            tenant: tenant("acme", None),
            place: Ok(Place::Cluster("main".into())),
            object: Ok(TenantObject::Schema {
                name: "tenant_acme".into(),
                server_database: "app".into(),
            }),
        };
        assert_eq!(
            show_text(&view),
            "tenant:     acme\n\
             database:   app\n\
             model:      schema\n\
             schema:     tenant_acme\n\
             shard:      -\n\
             place:      schema tenant_acme in database app on cluster main\n\
             state:      active\n\
             created_at: 2023-11-14T22:13:20Z\n\
             updated_at: 2023-11-14T22:15:00Z\n"
        );
    }

    #[test]
    fn policies_summary() {
        let report = PolicyReport {
            database: "app".into(),
            spec: PolicySpec {
                column: "tenant_id".into(),
                setting: "app.current_tenant".into(),
            },
            applied: false,
            places: vec![PlaceResult {
                place: "cluster main".into(),
                server_database: "app".into(),
                checks: vec![
                    TableCheck {
                        table: "public.a".into(),
                        fixes: vec![],
                        warnings: vec![],
                    },
                    TableCheck {
                        table: "public.b".into(),
                        fixes: vec![Fix::EnableRls, Fix::CreatePolicy],
                        warnings: vec![],
                    },
                ],
                without_column: vec!["public.plans".into()],
                ..PlaceResult::default()
            }],
        };
        assert!(!report.is_clean());
        assert_eq!(
            policies_text(&report),
            "row-level security of database `app` (column tenant_id, setting app.current_tenant):\n\
             cluster main, database app:\n  \
             ok: public.a\n  \
             needs fixing public.b: row-level security is off; policy pgfleet_tenant_isolation is missing\n  \
             without column tenant_id (no policy, shared by every tenant): public.plans\n\
             1 table(s) ok, 1 need fixing; run `pgfleet tenant policies --apply` to fix them\n"
        );
    }
}
