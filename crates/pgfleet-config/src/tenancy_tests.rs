//! `[metadata]`, `[databases.NAME.tenancy]` and `users.NAME.tenant`: defaults, every key read,
//! and every problem at its key path.

use crate::tenancy::*;
use crate::Config;

const BASE: &str = r#"
[clusters.main]
servers = [{ host = "127.0.0.1", role = "primary" }]
[users.app]
password = "app"
[users.root]
password = "root"
"#;

fn load(extra: &str) -> Result<Config, crate::ConfigErrors> {
    Config::from_toml_str(&format!("{BASE}\n{extra}"))
}

fn paths(extra: &str) -> Vec<String> {
    match load(extra) {
        Ok(c) => panic!("expected problems, got {c:?}"),
        Err(e) => e.problems.into_iter().map(|p| p.path).collect(),
    }
}

#[test]
fn tenant_names() {
    for good in ["acme", "tenant_42", "a", &"x".repeat(48)] {
        assert!(check_tenant_name(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "Acme",
        "1acme",
        "_acme",
        "ac-me",
        "app.acme",
        "acmé",
        &"x".repeat(49),
    ] {
        assert!(check_tenant_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn defaults() {
    let c = match load(
        "[metadata]\ncluster = \"main\"\n[databases.app]\ncluster = \"main\"\n[databases.app.tenancy]\nmodel = \"schema\"\n[users.app_acme]\npassword = \"x\"\ntenant = \"acme\"",
    ) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let meta = c.metadata.as_ref().map(|m| {
        (
            m.cluster.as_str(),
            m.database.as_str(),
            m.user.as_str(),
            m.password.clone(),
        )
    });
    assert_eq!(meta, Some(("main", "pgfleet_meta", "postgres", None)));
    let t = c.databases["app"].tenancy.clone();
    assert_eq!(t, Some(TenancyConfig::with_model(TenantModel::Schema)));
    let t = TenancyConfig::with_model(TenantModel::Schema);
    assert_eq!(t.schema_for("acme"), "tenant_acme");
    assert_eq!(t.database_for("acme"), "tenant_acme");
    assert_eq!(t.tenant_switch, TenantSwitch::Allow);
    assert!(t.required);
    assert_eq!(c.users["app_acme"].tenant.as_deref(), Some("acme"));
    assert_eq!(c.users["app"].tenant, None);
    assert_eq!(
        c.databases["app"]
            .tenancy
            .as_ref()
            .map(|t| t.identify.len()),
        Some(4)
    );
    assert!(load("").map(|c| c.metadata.is_none()).unwrap_or(false));
}

#[test]
fn every_key_read() {
    let c = match load(
        r#"
[metadata]
cluster = "main"
database = "meta"
user = "pgfleet"
password = "secret"
[databases.r]
cluster = "main"
[databases.r.tenancy]
model = "row"
identify = ["binding", "set"]
required = false
setting = "my.tenant"
tenant_column = "org_id"
tenant_switch = "deny"
admin_roles = ["root"]
[databases.d]
cluster = "main"
[databases.d.tenancy]
model = "database"
database_template = "db_{tenant}_x"
[databases.s]
cluster = "main"
[databases.s.tenancy]
model = "schema"
schema_template = "t_{tenant}"
shared_schemas = ["public", "ext"]
"#,
    ) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let m = c.metadata.clone().map(|m| (m.database, m.user, m.password));
    assert_eq!(
        m,
        Some(("meta".into(), "pgfleet".into(), Some("secret".into())))
    );
    assert!(!format!("{:?}", c.metadata).contains("secret"));
    let Some(r) = c.databases["r"].tenancy.clone() else {
        panic!("no tenancy")
    };
    assert_eq!(r.model, TenantModel::Row);
    assert_eq!(r.identify, vec![TenantSource::Binding, TenantSource::Set]);
    assert!(!r.required);
    assert_eq!(
        (r.setting.as_str(), r.tenant_column.as_str()),
        ("my.tenant", "org_id")
    );
    assert_eq!(r.tenant_switch, TenantSwitch::Deny);
    assert_eq!(r.admin_roles, vec!["root".to_string()]);
    let d = c.databases["d"]
        .tenancy
        .clone()
        .map(|t| t.database_for("acme"));
    assert_eq!(d.as_deref(), Some("db_acme_x"));
    let Some(s) = c.databases["s"].tenancy.clone() else {
        panic!("no tenancy")
    };
    assert_eq!(s.schema_for("acme"), "t_acme");
    assert_eq!(
        s.shared_schemas,
        vec!["public".to_string(), "ext".to_string()]
    );
}

#[test]
fn problems_have_key_paths() {
    let cases: &[(&str, &[&str])] = &[
        ("[metadata]\ndatabase = \"m\"", &["metadata.cluster"]),
        ("[metadata]\ncluster = \"mian\"", &["metadata.cluster"]),
        ("[metadata]\ncluster = \"main\"\nuser = \"\"", &["metadata.user"]),
        ("[metadata]\ncluster = \"main\"\nhost = \"x\"", &["metadata.host"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nrequired = true", &["databases.a.tenancy.model"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"rows\"", &["databases.a.tenancy.model"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"row\"\nidentify = []", &["databases.a.tenancy.identify"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"row\"\nidentify = [\"user\", \"cookie\", \"user\"]", &["databases.a.tenancy.identify.1", "databases.a.tenancy.identify.2"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"schema\"\nschema_template = \"tenant\"", &["databases.a.tenancy.schema_template"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"schema\"\nschema_template = \"Tenant-{tenant}\"", &["databases.a.tenancy.schema_template"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"schema\"\nschema_template = \"a_very_long_prefix_{tenant}\"", &["databases.a.tenancy.schema_template"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"schema\"\nshared_schemas = [\"public\", \"Bad Name\"]", &["databases.a.tenancy.shared_schemas.1"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"row\"\nsetting = \"current_tenant\"", &["databases.a.tenancy.setting"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"row\"\ntenant_column = \"Tenant\"", &["databases.a.tenancy.tenant_column"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"row\"\ntenant_switch = \"never\"", &["databases.a.tenancy.tenant_switch"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"row\"\nadmin_roles = [\"app\", \"nobody\"]", &["databases.a.tenancy.admin_roles.1"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"schema\"\nsetting = \"app.t\"", &["databases.a.tenancy.setting"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"row\"\nschema_template = \"t_{tenant}\"", &["databases.a.tenancy.schema_template"]),
        ("[databases.a]\ncluster = \"main\"\n[databases.a.tenancy]\nmodel = \"row\"\nmode = \"x\"", &["databases.a.tenancy.mode"]),
        ("[users.b]\npassword = \"b\"\ntenant = \"Acme\"", &["users.b.tenant"]),
        ("[users.b]\npassword = \"b\"\ntenant = 42", &["users.b.tenant"]),
    ];
    for (text, want) in cases {
        assert_eq!(paths(text), *want, "{text}");
    }
}
