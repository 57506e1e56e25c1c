//! Which tenant a session names, from the sources its database's `tenancy.identify` lists, in
//! that order (docs/config.md, `[databases.<name>.tenancy]`). Pure.

use pgfleet_config::{check_tenant_name, Config, TenancyConfig, TenantSource, TenantSwitch};

/// The startup parameter / session setting that names the tenant.
pub use pgfleet_sql::tenant_guard::TENANT_SETTING;

/// Splits a client's user name `app.acme` into the configured user `app` and the tenant `acme`,
/// when `app.acme` itself is not a configured user and the database names tenants by user name.
/// Authentication then uses `app`'s credentials (md5 hashes the name the client sent, so the
/// caller keeps that for the exchange).
pub fn split_user<'a>(
    config: &Config,
    user: &'a str,
    database: &str,
) -> (&'a str, Option<&'a str>) {
    if config.users.contains_key(user) {
        return (user, None);
    }
    let by_user = config
        .databases
        .get(database)
        .and_then(|d| d.tenancy.as_ref())
        .is_some_and(|t| t.identify.contains(&TenantSource::User));
    match user.rsplit_once('.') {
        Some((base, tenant))
            if by_user && config.users.contains_key(base) && !tenant.is_empty() =>
        {
            (base, Some(tenant))
        }
        _ => (user, None),
    }
}

/// What a session knows about its tenant before looking at its current settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// From the user name (`app.acme`).
    pub user: Option<String>,
    /// The startup parameter `pgfleet.tenant` (also via `options=-c pgfleet.tenant=…`).
    pub startup: Option<String>,
    /// The user's `users.NAME.tenant`.
    pub binding: Option<String>,
}

/// The tenant a session names now, and from which source.
pub fn resolve(
    t: &TenancyConfig,
    sources: &Sources,
    current_setting: Option<&str>,
) -> Option<(String, TenantSource)> {
    let set = current_setting
        .filter(|v| !v.is_empty())
        .filter(|v| Some(*v) != sources.startup.as_deref());
    for source in &t.identify {
        let value = match source {
            TenantSource::User => sources.user.as_deref(),
            TenantSource::Startup => sources.startup.as_deref().filter(|v| !v.is_empty()),
            TenantSource::Set => set,
            TenantSource::Binding => sources.binding.as_deref(),
        };
        if let Some(v) = value {
            return Some((v.to_owned(), *source));
        }
    }
    None
}

/// Checks a tenant name from a client; the error names where it came from.
pub fn check_name(name: &str, source: TenantSource) -> Result<(), String> {
    check_tenant_name(name).map_err(|m| {
        let from = match source {
            TenantSource::User => "the user name",
            TenantSource::Startup => "the startup parameter pgfleet.tenant",
            TenantSource::Set => "SET pgfleet.tenant",
            TenantSource::Binding => "the user's tenant binding",
        };
        format!("pgfleet: {m} (from {from})")
    })
}

/// Why `SET pgfleet.tenant` is refused for a session whose tenant is `current` (from `source`),
/// or `None` when it may switch.
pub fn switch_refused(
    t: &TenancyConfig,
    database: &str,
    current: Option<&(String, TenantSource)>,
) -> Option<String> {
    let Some(set_rank) = t.identify.iter().position(|s| *s == TenantSource::Set) else {
        return Some(format!(
            "database `{database}` does not take its tenant from SET pgfleet.tenant (tenancy.identify)"
        ));
    };
    let (tenant, source) = current?;
    let rank = t.identify.iter().position(|s| s == source).unwrap_or(0);
    if *source != TenantSource::Set && rank < set_rank {
        let from = match source {
            TenantSource::User => "the user name",
            TenantSource::Startup => "the startup parameter pgfleet.tenant",
            TenantSource::Binding => "the user's tenant binding",
            TenantSource::Set => "SET",
        };
        return Some(format!(
            "the session's tenant `{tenant}` comes from {from}; SET pgfleet.tenant cannot change it"
        ));
    }
    if t.tenant_switch == TenantSwitch::Deny {
        return Some(format!(
            "database `{database}` has tenant_switch = \"deny\": this session stays tenant `{tenant}` until it disconnects"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgfleet_config::TenantModel;

    #[test]
    fn sources_in_configured_order() {
        let mut t = TenancyConfig::with_model(TenantModel::Row);
        let s = Sources {
            user: Some("a".into()),
            startup: Some("b".into()),
            binding: Some("d".into()),
        };
        assert_eq!(resolve(&t, &s, Some("c")).unwrap().0, "a");
        t.identify = vec![TenantSource::Set, TenantSource::Binding];
        assert_eq!(resolve(&t, &s, Some("c")).unwrap().0, "c");
        // The startup value is not a SET.
        assert_eq!(resolve(&t, &s, Some("b")).unwrap().0, "d");
        assert_eq!(resolve(&t, &Sources::default(), None), None);
    }

    #[test]
    fn switching() {
        let mut t = TenancyConfig::with_model(TenantModel::Row);
        let by_user = ("a".to_owned(), TenantSource::User);
        assert!(switch_refused(&t, "app", Some(&by_user))
            .unwrap()
            .contains("user name"));
        let by_set = ("a".to_owned(), TenantSource::Set);
        assert_eq!(switch_refused(&t, "app", Some(&by_set)), None);
        assert_eq!(switch_refused(&t, "app", None), None);
        t.tenant_switch = TenantSwitch::Deny;
        assert!(switch_refused(&t, "app", Some(&by_set))
            .unwrap()
            .contains("deny"));
        t.identify = vec![TenantSource::User];
        assert!(switch_refused(&t, "app", None)
            .unwrap()
            .contains("tenancy.identify"));
    }
}
