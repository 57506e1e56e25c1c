//! Logins (pure): the server login the tool uses, chosen as `pgfleet migrate` chooses it, and the
//! server roles the proxy logs in as for tenant sessions (whose row-level security matters).

use std::time::Duration;

use pgfleet_config::{Config, Secret, UserConfig};
use pgfleet_meta::Login;

/// The password pgfleet logs in to servers with for `u`: `server_password`, else a plain-text
/// `password` (as the proxy's pools do).
pub fn server_password(u: &UserConfig) -> Option<String> {
    u.server_password.clone().or_else(|| match &u.password {
        Some(Secret::Plain(p)) => Some(p.clone()),
        _ => None,
    })
}

/// The `--user` to log in as when none is given: the config's only non-admin user that pgfleet
/// has a server password for, else the superuser's usual name `postgres`.
pub fn default_user(config: &Config) -> String {
    let mut with_password = config
        .users
        .iter()
        .filter(|(_, u)| !u.admin && server_password(u).is_some());
    match (with_password.next(), with_password.next()) {
        (Some((name, _)), None) => name.clone(),
        _ => "postgres".to_owned(),
    }
}

/// The login for `user` (a `[users.NAME]` of the config: its server user and password; else a
/// server user name with `env_password`, normally `PGPASSWORD`); `None` means [`default_user`].
/// The database is `postgres`; each step picks its own.
pub fn tool_login(
    config: &Config,
    user: Option<&str>,
    env_password: Option<String>,
    application_name: &str,
) -> Login {
    let name = user.map_or_else(|| default_user(config), str::to_string);
    let (user, password) = match config.users.get(&name) {
        Some(u) => (u.server_user.clone(), server_password(u)),
        None => (name, env_password),
    };
    Login {
        user,
        password,
        database: "postgres".into(),
        application_name: application_name.into(),
        connect_timeout: Duration::from_secs(10),
    }
}

/// The server roles the proxy logs in as for tenant sessions of `database`: the server user of
/// every non-admin user that is not one of the database's `tenancy.admin_roles` (those may work
/// across tenants on purpose). Sorted, no repeats.
pub fn proxy_roles(config: &Config, database: &str) -> Vec<String> {
    let admin_roles: &[String] = config
        .databases
        .get(database)
        .and_then(|d| d.tenancy.as_ref())
        .map_or(&[], |t| t.admin_roles.as_slice());
    let mut roles: Vec<String> = config
        .users
        .iter()
        .filter(|(name, u)| !u.admin && !admin_roles.contains(name))
        .map(|(_, u)| u.server_user.clone())
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(users: &str) -> Config {
        let admin_roles = if users.contains("[users.ops]") {
            "admin_roles = [\"ops\"]"
        } else {
            ""
        };
        let text = format!(
            "[clusters.main]\nservers = [{{ host = \"127.0.0.1\" }}]\n[databases.app]\ncluster = \"main\"\n[databases.app.tenancy]\nmodel = \"row\"\n{admin_roles}\n{users}"
        );
        match Config::from_toml_str(&text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_default_login_is_the_only_user_with_a_server_password() {
        let c = config(
            "[users.app]\npassword = \"app\"\nserver_user = \"app_rw\"\n[users.admin]\npassword = \"admin\"\nadmin = true\n",
        );
        let l = tool_login(&c, None, Some("env".into()), "pgfleet-tenant");
        assert_eq!(
            (l.user.as_str(), l.password.as_deref()),
            ("app_rw", Some("app"))
        );
        assert_eq!(l.application_name, "pgfleet-tenant");
        let l = tool_login(&c, Some("postgres"), Some("env".into()), "t");
        assert_eq!(
            (l.user.as_str(), l.password.as_deref()),
            ("postgres", Some("env"))
        );
        let two = config("[users.a]\npassword = \"a\"\n[users.b]\npassword = \"b\"\n");
        assert_eq!(default_user(&two), "postgres");
    }

    #[test]
    fn proxy_roles_leave_out_admins_and_admin_roles() {
        let c = config(
            "[users.app]\npassword = \"a\"\nserver_user = \"app_rw\"\n[users.web]\npassword = \"w\"\nserver_user = \"app_rw\"\n[users.ops]\npassword = \"o\"\n[users.admin]\npassword = \"x\"\nadmin = true\n[users.report]\npassword = \"r\"\n",
        );
        assert_eq!(
            proxy_roles(&c, "app"),
            vec!["app_rw".to_string(), "report".to_string()]
        );
    }
}
