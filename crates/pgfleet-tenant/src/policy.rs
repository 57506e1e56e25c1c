//! Row-level security for the row model (pure): the policy every table with the tenant column
//! should have, how to tell whether a table has it, and the SQL that fixes it.
//!
//! The policy, `pgfleet_tenant_isolation`, is PERMISSIVE, FOR ALL, TO PUBLIC, with the same
//! expression in USING and WITH CHECK: `tenant_id = current_setting('app.current_tenant', true)`
//! (column and setting from `[databases.NAME.tenancy]`). The `true` (missing_ok) makes a session
//! without the setting see no rows instead of failing. For a column that is not a string type the
//! setting is cast to the column's type, with an empty setting read as NULL
//! (`NULLIF(…, '')::uuid`): a custom setting once set in a session reads as `''` after RESET,
//! which would otherwise make `''::uuid` fail.
//!
//! Row security also needs `ENABLE ROW LEVEL SECURITY` (else policies are ignored) and `FORCE ROW
//! LEVEL SECURITY` (else the table owner is exempt). Superusers and roles with BYPASSRLS are
//! always exempt; see the PostgreSQL docs, "Row Security Policies" (ddl-rowsecurity.html).
//! Permissive policies are combined with OR, so another permissive policy on the table widens
//! what every tenant sees; that is reported.

use std::collections::BTreeMap;

use pgfleet_migrate::target::quote_ident;

/// The name of the policy pgfleet creates and checks.
pub const POLICY_NAME: &str = "pgfleet_tenant_isolation";

/// What the policy compares: the tenant column and the setting the proxy sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySpec {
    /// `tenancy.tenant_column`.
    pub column: String,
    /// `tenancy.setting`.
    pub setting: String,
}

/// The tenant column of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnFacts {
    /// Its type as `format_type` prints it (`uuid`, `character varying(20)`).
    pub sql_type: String,
    /// `pg_type.typcategory` of its type (`S` for string types).
    pub category: String,
}

/// One policy on a table, as `pg_policies` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFacts {
    /// Its name.
    pub name: String,
    /// PERMISSIVE (true) or RESTRICTIVE.
    pub permissive: bool,
    /// Roles it applies to; `["public"]` for everyone.
    pub roles: Vec<String>,
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    pub command: String,
    /// USING, deparsed.
    pub using: Option<String>,
    /// WITH CHECK, deparsed.
    pub with_check: Option<String>,
}

/// One table, with what row security needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableFacts {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Its owner.
    pub owner: String,
    /// `relrowsecurity`.
    pub rls_enabled: bool,
    /// `relforcerowsecurity`.
    pub rls_forced: bool,
    /// The tenant column, when the table has it.
    pub column: Option<ColumnFacts>,
    /// Its policies.
    pub policies: Vec<PolicyFacts>,
}

impl TableFacts {
    /// `schema.table`, for messages.
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// `"schema"."table"`, for SQL.
    pub fn quoted_name(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

/// A role the proxy logs in as, on one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleFacts {
    /// Its name.
    pub name: String,
    /// Whether the server has it.
    pub exists: bool,
    /// `rolsuper`.
    pub superuser: bool,
    /// `rolbypassrls`.
    pub bypass_rls: bool,
}

/// One thing a table lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fix {
    /// Row-level security is off.
    EnableRls,
    /// FORCE ROW LEVEL SECURITY is off.
    ForceRls,
    /// The policy is missing.
    CreatePolicy,
    /// The policy is there but differs (why).
    ReplacePolicy(String),
}

impl Fix {
    /// What is wrong, for reports.
    pub fn describe(&self) -> String {
        match self {
            Fix::EnableRls => "row-level security is off".to_string(),
            Fix::ForceRls => {
                "FORCE ROW LEVEL SECURITY is off (the table's owner is exempt from its policies)"
                    .to_string()
            }
            Fix::CreatePolicy => format!("policy {POLICY_NAME} is missing"),
            Fix::ReplacePolicy(why) => format!("policy {POLICY_NAME} differs: {why}"),
        }
    }
}

/// The verdict on one table with the tenant column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCheck {
    /// `schema.table`.
    pub table: String,
    /// What it lacks, in the order the fixes run; empty when it is right.
    pub fixes: Vec<Fix>,
    /// Things that weaken isolation but that pgfleet does not change (other permissive policies).
    pub warnings: Vec<String>,
}

/// The policy expression for a column of this type (see the module docs).
pub fn expected_predicate(spec: &PolicySpec, column: &ColumnFacts) -> String {
    let setting = format!("current_setting({}, true)", quote_literal(&spec.setting));
    let col = quote_ident(&spec.column);
    if column.category == "S" {
        format!("{col} = {setting}")
    } else {
        format!("{col} = NULLIF({setting}, '')::{}", column.sql_type)
    }
}

/// An expression reduced to what tells policies apart here: lower case, no white space, no
/// parentheses, no double quotes, no `::text` casts. PostgreSQL deparses
/// `current_setting('x', true)` as `current_setting('x'::text, true)`, wraps operands in
/// parentheses and quotes identifiers only when needed, so the expression as written and as
/// deparsed differ only in these. Dropping all parentheses could equate differently grouped
/// boolean expressions, but the expected one has no AND/OR, so anything equal to it after
/// reduction is the same comparison; case and quotes do not matter because the tenant column
/// and the setting are lower-case plain names (checked by the config).
pub fn normalize(expr: &str) -> String {
    let reduced: String = expr
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '(' | ')' | '"'))
        .collect();
    reduced.replace("::text", "")
}

/// What a table with the tenant column lacks; `None` for a table without it.
pub fn check_table(spec: &PolicySpec, table: &TableFacts) -> Option<TableCheck> {
    let column = table.column.as_ref()?;
    let mut fixes = Vec::new();
    if !table.rls_enabled {
        fixes.push(Fix::EnableRls);
    }
    if !table.rls_forced {
        fixes.push(Fix::ForceRls);
    }
    let expected = expected_predicate(spec, column);
    match table.policies.iter().find(|p| p.name == POLICY_NAME) {
        None => fixes.push(Fix::CreatePolicy),
        Some(p) => {
            if let Some(why) = policy_difference(p, &expected) {
                fixes.push(Fix::ReplacePolicy(why));
            }
        }
    }
    let others: Vec<&str> = table
        .policies
        .iter()
        .filter(|p| p.name != POLICY_NAME && p.permissive)
        .map(|p| p.name.as_str())
        .collect();
    let mut warnings = Vec::new();
    if !others.is_empty() {
        warnings.push(format!(
            "{} has other permissive policies ({}): PostgreSQL combines permissive policies with OR, so rows they allow are visible to every tenant; make them RESTRICTIVE or drop them",
            table.display_name(),
            others.join(", ")
        ));
    }
    Some(TableCheck {
        table: table.display_name(),
        fixes,
        warnings,
    })
}

/// Why an existing `pgfleet_tenant_isolation` is not the expected one, or `None`.
fn policy_difference(p: &PolicyFacts, expected: &str) -> Option<String> {
    let mut why = Vec::new();
    if !p.permissive {
        why.push("it is RESTRICTIVE, not PERMISSIVE".to_string());
    }
    if p.command != "ALL" {
        why.push(format!("it is FOR {}, not FOR ALL", p.command));
    }
    if p.roles != ["public"] {
        why.push(format!(
            "it applies to {}, not to PUBLIC",
            p.roles.join(", ")
        ));
    }
    let want = normalize(expected);
    match &p.using {
        Some(u) if normalize(u) == want => {}
        Some(u) => why.push(format!("USING is `{u}`, expected `{expected}`")),
        None => why.push(format!("it has no USING, expected `{expected}`")),
    }
    // Without WITH CHECK, an ALL policy checks new rows with its USING expression.
    match &p.with_check {
        None => {}
        Some(c) if normalize(c) == want => {}
        Some(c) => why.push(format!("WITH CHECK is `{c}`, expected `{expected}`")),
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// The statements that give `table` what `fixes` say it lacks (one transaction's worth).
pub fn fix_sql(spec: &PolicySpec, table: &TableFacts, fixes: &[Fix]) -> Vec<String> {
    let name = table.quoted_name();
    let Some(column) = &table.column else {
        return Vec::new();
    };
    let predicate = expected_predicate(spec, column);
    let create = format!(
        "CREATE POLICY {POLICY_NAME} ON {name} AS PERMISSIVE FOR ALL TO PUBLIC USING ({predicate}) WITH CHECK ({predicate})"
    );
    let mut sql = Vec::new();
    for fix in fixes {
        match fix {
            Fix::EnableRls => sql.push(format!("ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")),
            Fix::ForceRls => sql.push(format!("ALTER TABLE {name} FORCE ROW LEVEL SECURITY")),
            Fix::CreatePolicy => sql.push(create.clone()),
            Fix::ReplacePolicy(_) => {
                sql.push(format!("DROP POLICY {POLICY_NAME} ON {name}"));
                sql.push(create.clone());
            }
        }
    }
    sql
}

/// Warnings about the proxy's roles on one server: missing roles, superusers and BYPASSRLS (row
/// security never applies to them), and owners of tables with the tenant column (FORCE makes the
/// policy apply, but an owner can switch it off).
pub fn role_warnings(place: &str, roles: &[RoleFacts], tables: &[TableFacts]) -> Vec<String> {
    let mut warnings = Vec::new();
    for r in roles {
        let name = &r.name;
        if !r.exists {
            warnings.push(format!(
                "role `{name}` (a server user of the config) does not exist on {place}"
            ));
            continue;
        }
        if r.superuser {
            warnings.push(format!(
                "role `{name}` is a superuser on {place}: row-level security never applies to superusers, so tenants are not isolated for sessions logged in as it; let the proxy log in as a role without SUPERUSER"
            ));
        } else if r.bypass_rls {
            warnings.push(format!(
                "role `{name}` has BYPASSRLS on {place}: row-level security never applies to it, so tenants are not isolated for sessions logged in as it; run ALTER ROLE {} NOBYPASSRLS",
                quote_ident(name)
            ));
        }
    }
    let mut owned: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for t in tables.iter().filter(|t| t.column.is_some()) {
        if roles.iter().any(|r| r.exists && r.name == t.owner) {
            owned
                .entry(t.owner.as_str())
                .or_default()
                .push(t.display_name());
        }
    }
    for (role, names) in owned {
        warnings.push(format!(
            "role `{role}` owns {} table(s) with the tenant column on {place} ({}): FORCE ROW LEVEL SECURITY makes the policy apply to it, but an owner can switch row-level security off (ALTER TABLE … NO FORCE ROW LEVEL SECURITY); let the proxy log in as a role that does not own the tables",
            names.len(),
            short_list(&names)
        ));
    }
    warnings
}

/// Up to five names, then "and N more".
pub fn short_list(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// A string literal (standard_conforming_strings on, the default since PostgreSQL 9.1).
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec() -> PolicySpec {
        PolicySpec {
            column: "tenant_id".into(),
            setting: "app.current_tenant".into(),
        }
    }

    fn text_col() -> ColumnFacts {
        ColumnFacts {
            sql_type: "text".into(),
            category: "S".into(),
        }
    }

    fn uuid_col() -> ColumnFacts {
        ColumnFacts {
            sql_type: "uuid".into(),
            category: "U".into(),
        }
    }

    fn policy(using: &str, with_check: Option<&str>) -> PolicyFacts {
        PolicyFacts {
            name: POLICY_NAME.into(),
            permissive: true,
            roles: vec!["public".into()],
            command: "ALL".into(),
            using: Some(using.into()),
            with_check: with_check.map(Into::into),
        }
    }

    fn table(
        column: Option<ColumnFacts>,
        enabled: bool,
        forced: bool,
        policies: Vec<PolicyFacts>,
    ) -> TableFacts {
        TableFacts {
            schema: "public".into(),
            name: "notes".into(),
            owner: "postgres".into(),
            rls_enabled: enabled,
            rls_forced: forced,
            column,
            policies,
        }
    }

    // What PostgreSQL 15 deparses for the policies pgfleet creates (pg_policies.qual).
    const TEXT_DEPARSED: &str = "(tenant_id = current_setting('app.current_tenant'::text, true))";
    const UUID_DEPARSED: &str =
        "(tenant_id = (NULLIF(current_setting('app.current_tenant'::text, true), ''::text))::uuid)";
    const VARCHAR_DEPARSED: &str =
        "((tenant_id)::text = current_setting('app.current_tenant'::text, true))";

    #[test]
    fn the_predicate_casts_the_setting_for_non_string_columns() {
        assert_eq!(
            expected_predicate(&spec(), &text_col()),
            "\"tenant_id\" = current_setting('app.current_tenant', true)"
        );
        assert_eq!(
            expected_predicate(&spec(), &uuid_col()),
            "\"tenant_id\" = NULLIF(current_setting('app.current_tenant', true), '')::uuid"
        );
        let int = ColumnFacts {
            sql_type: "bigint".into(),
            category: "N".into(),
        };
        assert!(expected_predicate(&spec(), &int).ends_with("::bigint"));
    }

    #[test]
    fn deparsed_policies_match_what_pgfleet_writes() {
        let want = |c: &ColumnFacts| normalize(&expected_predicate(&spec(), c));
        assert_eq!(normalize(TEXT_DEPARSED), want(&text_col()));
        assert_eq!(normalize(UUID_DEPARSED), want(&uuid_col()));
        let varchar = ColumnFacts {
            sql_type: "character varying(20)".into(),
            category: "S".into(),
        };
        assert_eq!(normalize(VARCHAR_DEPARSED), want(&varchar));
        assert_ne!(
            normalize("(tenant_id = current_setting('app.other'::text, true))"),
            want(&text_col())
        );
    }

    #[test]
    fn a_bare_table_needs_everything() {
        let t = table(Some(text_col()), false, false, vec![]);
        let check = check_table(&spec(), &t).unwrap();
        assert_eq!(
            check.fixes,
            vec![Fix::EnableRls, Fix::ForceRls, Fix::CreatePolicy]
        );
        assert_eq!(
            fix_sql(&spec(), &t, &check.fixes),
            vec![
                "ALTER TABLE \"public\".\"notes\" ENABLE ROW LEVEL SECURITY".to_string(),
                "ALTER TABLE \"public\".\"notes\" FORCE ROW LEVEL SECURITY".to_string(),
                "CREATE POLICY pgfleet_tenant_isolation ON \"public\".\"notes\" AS PERMISSIVE FOR ALL TO PUBLIC USING (\"tenant_id\" = current_setting('app.current_tenant', true)) WITH CHECK (\"tenant_id\" = current_setting('app.current_tenant', true))".to_string(),
            ]
        );
        assert_eq!(
            check_table(&spec(), &table(None, false, false, vec![])),
            None
        );
    }

    #[test]
    fn a_right_table_needs_nothing() {
        let t = table(
            Some(uuid_col()),
            true,
            true,
            vec![policy(UUID_DEPARSED, Some(UUID_DEPARSED))],
        );
        assert_eq!(check_table(&spec(), &t).unwrap().fixes, vec![]);
        // No WITH CHECK: USING checks new rows too.
        let t = table(
            Some(text_col()),
            true,
            true,
            vec![policy(TEXT_DEPARSED, None)],
        );
        assert_eq!(check_table(&spec(), &t).unwrap().fixes, vec![]);
    }

    #[test]
    fn a_different_policy_is_replaced_with_the_reasons() {
        let mut p = policy(
            "(tenant_id = current_setting('other.x'::text, true))",
            Some("true"),
        );
        p.permissive = false;
        p.command = "SELECT".into();
        p.roles = vec!["app".into()];
        let t = table(Some(text_col()), true, false, vec![p]);
        let check = check_table(&spec(), &t).unwrap();
        assert_eq!(check.fixes.len(), 2);
        let Fix::ReplacePolicy(why) = &check.fixes[1] else {
            panic!("{check:?}")
        };
        for part in [
            "it is RESTRICTIVE, not PERMISSIVE",
            "it is FOR SELECT, not FOR ALL",
            "it applies to app, not to PUBLIC",
            "USING is `(tenant_id = current_setting('other.x'::text, true))`",
            "WITH CHECK is `true`",
        ] {
            assert!(why.contains(part), "{why}");
        }
        let sql = fix_sql(&spec(), &t, &check.fixes);
        assert_eq!(
            sql[0],
            "ALTER TABLE \"public\".\"notes\" FORCE ROW LEVEL SECURITY"
        );
        assert_eq!(
            sql[1],
            "DROP POLICY pgfleet_tenant_isolation ON \"public\".\"notes\""
        );
        assert!(sql[2].starts_with("CREATE POLICY pgfleet_tenant_isolation"));
    }

    #[test]
    fn other_permissive_policies_are_reported() {
        let mut open = policy("true", None);
        open.name = "everyone".into();
        let mut narrow = policy("false", None);
        narrow.name = "narrow".into();
        narrow.permissive = false;
        let t = table(
            Some(text_col()),
            true,
            true,
            vec![policy(TEXT_DEPARSED, None), open, narrow],
        );
        let check = check_table(&spec(), &t).unwrap();
        assert!(check.fixes.is_empty());
        assert_eq!(check.warnings.len(), 1);
        assert!(
            check.warnings[0].starts_with("public.notes has other permissive policies (everyone)"),
            "{:?}",
            check.warnings
        );
    }

    #[test]
    fn role_warnings_name_bypass_superuser_missing_and_owners() {
        let roles = vec![
            RoleFacts {
                name: "app".into(),
                exists: true,
                superuser: false,
                bypass_rls: true,
            },
            RoleFacts {
                name: "root".into(),
                exists: true,
                superuser: true,
                bypass_rls: true,
            },
            RoleFacts {
                name: "ghost".into(),
                exists: false,
                superuser: false,
                bypass_rls: false,
            },
            RoleFacts {
                name: "web".into(),
                exists: true,
                superuser: false,
                bypass_rls: false,
            },
        ];
        let mut owned = table(Some(text_col()), true, true, vec![]);
        owned.owner = "web".into();
        let mut no_column = owned.clone();
        no_column.column = None;
        no_column.name = "plans".into();
        let w = role_warnings("cluster main", &roles, &[owned, no_column]);
        assert_eq!(w.len(), 4, "{w:#?}");
        assert!(w[0].starts_with(
            "role `app` has BYPASSRLS on cluster main: row-level security never applies to it"
        ));
        assert!(w[0].ends_with("run ALTER ROLE \"app\" NOBYPASSRLS"));
        assert!(w[1].starts_with("role `root` is a superuser on cluster main"));
        assert!(w[2].starts_with("role `ghost` (a server user of the config) does not exist"));
        assert!(w[3].starts_with("role `web` owns 1 table(s) with the tenant column on cluster main (public.notes): FORCE ROW LEVEL SECURITY makes the policy apply to it"), "{}", w[3]);
        assert!(role_warnings("x", &roles[3..], &[]).is_empty());
    }

    #[test]
    fn short_lists() {
        let names: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
        assert_eq!(short_list(&names[..2]), "t0, t1");
        assert_eq!(short_list(&names), "t0, t1, t2, t3, t4 and 2 more");
    }
}
