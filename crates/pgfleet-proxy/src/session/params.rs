//! A client's session settings in transaction pooling: what it asked for at startup and with SET,
//! and the calls that make any server connection match them. No I/O: the calls are written into
//! the buffer a session sends.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;
use pgfleet_wire::frontend::{encode_bind, encode_execute, encode_function_call, BindParam};

use crate::clients::ClientInfo;
use crate::execute::exchange::{Exchange, Expect, Origin};
use crate::execute::request::prepare_statement;
use crate::prepared::{PreparedRegistry, StatementDef};
use crate::server::ServerConn;
use crate::settings::Settings;

/// Startup parameters that are not settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "replication", "options"];

/// The settings a client's session should have on whichever server runs its next transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionParams {
    /// Values from the startup packet (and its `options`), the session defaults RESET returns to.
    startup: Settings,
    /// Current wanted values: startup values plus SETs that took effect. Keys lower-case.
    desired: Settings,
}

/// Splits a libpq `options` string ("-c a=b --c=d", backslash escapes spaces) into settings.
pub fn parse_options(options: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let kv = if w == "-c" {
            it.next()
        } else if let Some(rest) = w.strip_prefix("--") {
            Some(rest.to_owned())
        } else {
            w.strip_prefix("-c").map(str::to_owned)
        };
        if let Some((k, v)) = kv.as_deref().and_then(|kv| kv.split_once('=')) {
            out.push((k.replace('-', "_").to_ascii_lowercase(), v.to_owned()));
        }
    }
    out
}

/// Quotes a literal with a dollar tag that does not occur in it, so the text is taken verbatim
/// whatever standard_conforming_strings is.
pub fn dollar_quote(value: &str) -> String {
    let mut n = 0u32;
    loop {
        let tag = if n == 0 {
            "$pgfleet$".to_owned()
        } else {
            format!("$pgfleet{n}$")
        };
        if !value.contains(&tag) {
            return format!("{tag}{value}{tag}");
        }
        n += 1;
    }
}

/// OID of `pg_catalog.set_config(text, text, boolean)`: a pinned built-in function, the same OID
/// on every PostgreSQL server (pg_proc.dat).
pub const SET_CONFIG_OID: u32 = 2078;

/// What makes a server connection match a session: `set_config(name, value, false)` for every
/// setting that differs, `set_config(name, NULL, false)` (PostgreSQL's RESET) for every one the
/// server has and the session does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsSync {
    /// (name, value; `None` = reset): the changed settings in name order, then the resets.
    pub calls: Vec<(String, Option<String>)>,
    /// The server's known settings once the calls ran.
    pub after: Settings,
}

/// What a server connection's known settings hold for a setting whose value pgfleet cannot be sure
/// of: no real value contains a NUL byte, so the next sync sets (or resets) it again.
pub(crate) const UNKNOWN_VALUE: &str = "\u{0}unknown";

/// Settings a sync may change inside a client's request, in the request's own implicit
/// transaction: their new value only has to be in effect for the statements that follow. None of
/// them shapes a transaction that has already started (isolation, read-only, deferrable), changes
/// who the session is (role, session authorization), or is reported to the client (ParameterStatus;
/// not in PostgreSQL 15); custom settings (`app.current_tenant`) are placeholders without effects.
fn settable_inside_request(name: &str) -> bool {
    matches!(name, "search_path" | "statement_timeout" | "lock_timeout") || name.contains('.')
}

impl SettingsSync {
    /// Whether every change may run inside the client's request ([`SettingsSync::encode_inline`]).
    pub fn fits_inside_request(&self) -> bool {
        self.calls
            .iter()
            .all(|(name, _)| settable_inside_request(name))
    }

    /// Appends, for every change, a Bind of pgfleet's prepared `set_config` statement to the
    /// unnamed portal and its Execute, with no Sync: they run ahead of the client's request, in
    /// its implicit transaction, and the server answers them with the request (no flush or
    /// transaction of their own). `statement(search_path)` names the server-side statement to
    /// bind while the server's search_path is that value (`None`: its login default): PostgreSQL
    /// analyses a prepared statement again whenever it is bound under another search_path than
    /// last time, so pgfleet keeps one per search_path (see
    /// [`PreparedRegistry::set_config_statement`]). `search_path`: the server's before the calls.
    /// `token`: the secret without which the statement sets nothing
    /// ([`PreparedRegistry::set_config_sql`]).
    /// Returns how many calls.
    pub fn encode_inline(
        &self,
        out: &mut BytesMut,
        token: &str,
        mut search_path: Option<String>,
        mut statement: impl FnMut(&mut BytesMut, Option<&str>) -> Arc<StatementDef>,
    ) -> usize {
        for (name, value) in &self.calls {
            let def = statement(out, search_path.as_deref());
            let params = [
                BindParam {
                    value: Some(name.as_bytes()),
                    binary: false,
                },
                BindParam {
                    value: value.as_deref().map(str::as_bytes),
                    binary: false,
                },
                BindParam {
                    value: Some(token.as_bytes()),
                    binary: false,
                },
            ];
            encode_bind(out, "", &def.server_name, &params, &[]);
            encode_execute(out, "", 0);
            if name == "search_path" {
                search_path.clone_from(value);
            }
        }
        self.calls.len()
    }

    /// Appends one FunctionCall per change and returns how many: each is answered with its own
    /// ReadyForQuery. The protocol's fast path runs set_config without parsing or planning a
    /// statement, names the function by OID (no search_path lookup a client could redirect), and
    /// leaves the server's unnamed prepared statement alone.
    pub fn encode(&self, out: &mut BytesMut) -> usize {
        for (name, value) in &self.calls {
            encode_function_call(
                out,
                SET_CONFIG_OID,
                &[Some(name), value.as_deref(), Some("false")],
            );
        }
        self.calls.len()
    }
}

impl SessionParams {
    /// Settings from a startup packet: every parameter except user/database/replication, plus the
    /// `-c name=value` pairs of `options`; protocol extensions (`_pq_.*`) are ignored.
    pub fn from_startup(params: &[(String, String)]) -> SessionParams {
        let mut startup = BTreeMap::new();
        for (k, v) in params {
            let k = k.to_ascii_lowercase();
            if k == "options" {
                for (ok, ov) in parse_options(v) {
                    startup.insert(ok, ov);
                }
            } else if !NOT_SETTINGS.contains(&k.as_str()) && !k.starts_with("_pq_.") {
                startup.insert(k, v.clone());
            }
        }
        let startup = Settings::from(startup);
        SessionParams {
            desired: startup.clone(),
            startup,
        }
    }

    /// The client's own value for a reported parameter (case-insensitive name), if it set one.
    pub fn reported_value(&self, name: &str) -> Option<&str> {
        self.desired
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Wanted settings.
    pub fn desired(&self) -> &Settings {
        &self.desired
    }

    /// Records the value a setting actually has after the client changed it (read back from the
    /// server); `None` = the setting does not exist (unknown custom setting).
    pub fn learned(&mut self, name: &str, value: Option<String>) {
        match value {
            Some(v) => self.desired.insert(name.to_owned(), v),
            None => self.desired.remove(name),
        };
    }

    /// RESET name / RESET ALL / DISCARD ALL took effect: back to the startup value.
    pub fn reset(&mut self, name: &str) {
        match self.startup.get(name) {
            Some(v) => self.desired.insert(name.to_owned(), v.clone()),
            None => self.desired.remove(name),
        };
    }

    /// RESET ALL / DISCARD ALL took effect.
    pub fn reset_all(&mut self) {
        self.desired = self.startup.clone();
    }

    /// Names of every setting the session or its server may have changed (for RESET ALL read-back).
    pub fn all_names<'a>(&'a self, server: &'a Settings) -> Vec<String> {
        let mut v: Vec<String> = self.desired.keys().chain(server.keys()).cloned().collect();
        v.sort();
        v.dedup();
        v
    }

    /// The calls that make a server whose known settings are `server` (beyond its login defaults
    /// `login`) match this session. `None` when nothing differs.
    pub fn sync(&self, server: &Settings, login: &[(String, String)]) -> Option<SettingsSync> {
        // Hot path (every transaction): most of the time the server was last brought to the same
        // settings (one comparison of two encodings).
        if *server == self.desired {
            return None;
        }
        let current = |name: &str| {
            server.get(name).map(String::as_str).or_else(|| {
                login
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
            })
        };
        // Next most common: nothing differs once login values count; decide that without
        // allocating.
        if self
            .desired
            .iter()
            .all(|(n, v)| current(n) == Some(v.as_str()))
            && server.keys().all(|k| self.desired.contains_key(k))
        {
            return None;
        }
        let mut calls = Vec::new();
        for (name, value) in self.desired.iter() {
            if current(name) != Some(value.as_str()) {
                calls.push((name.clone(), Some(value.clone())));
            }
        }
        for name in server.keys() {
            if !self.desired.contains_key(name) {
                calls.push((name.clone(), None));
            }
        }
        if calls.is_empty() {
            return None;
        }
        Some(SettingsSync {
            calls,
            after: self.desired.clone(),
        })
    }
}

/// Brings `server` to the session's settings ahead of the next request, if anything differs, and
/// updates the server's known settings. Returns whether anything was sent. Used at checkout, and
/// for a held server whose session's context changed (session pooling, a pinned session entering
/// its tenant again).
///
/// - Inside the request, when `inside_request` says the request may carry it (its statements are
///   all queries that cannot end or open a transaction, and it is complete up to its Sync) and
///   every change allows it ([`SettingsSync::fits_inside_request`]): Bind/Execute of pgfleet's
///   `set_config` statement (prepared on the server first if needed) ahead of the client's
///   messages. The outcome is checked when the request ends ([`Exchange::uncertain_settings`]):
///   an error rolls the changes back, so the server's settings are then marked unknown.
/// - Otherwise one FunctionCall per change, each answered with its own ReadyForQuery, swallowed;
///   the client's cancel requests wait until they are answered
///   ([`ClientInfo::start_settings_calls`]).
///
/// `sync` is what [`SessionParams::sync`] returned for this server: a server already in line
/// (the common case) costs its caller no future.
pub(crate) async fn sync_server(
    prepared: &PreparedRegistry,
    info: &ClientInfo,
    sync: SettingsSync,
    server: &mut ServerConn,
    x: &mut Exchange,
    to_server: &mut BytesMut,
    inside_request: impl FnOnce() -> bool,
) {
    if sync.fits_inside_request() && inside_request() {
        let search_path = server.params.search_path().map(str::to_owned);
        sync.encode_inline(
            to_server,
            prepared.sync_token(),
            search_path,
            |out, search_path| {
                let def = prepared.set_config_statement(search_path);
                if server.prepared.get(&def.server_name).is_none() {
                    prepare_statement(server, &def, false, x, out);
                }
                x.push(Expect::SettingsBind(def.clone()));
                x.push(Expect::SettingsExecute);
                def
            },
        );
        let before = std::mem::replace(&mut server.params, sync.after);
        x.settings_before = Some(before);
    } else {
        for _ in 0..sync.encode(to_server) {
            x.push(Expect::Query(Origin::SettingsSync));
        }
        server.params = sync.after;
        info.start_settings_calls().await;
    }
}

/// A request that carried a settings sync ended without committing it for certain: every setting
/// the sync changed (a value in `before` that differs from the server's known one, either way) is
/// marked unknown, so the next sync sets or resets it again.
pub(crate) fn forget_changed(server: &mut Settings, before: Settings) {
    let mut changed: Vec<String> = server
        .iter()
        .filter(|(name, value)| before.get(*name) != Some(*value))
        .map(|(name, _)| name.clone())
        .collect();
    changed.extend(
        before
            .into_map()
            .into_keys()
            .filter(|name| !server.contains_key(name)),
    );
    for name in changed {
        server.insert(name, UNKNOWN_VALUE.to_owned());
    }
}

/// SQL that reads the current values of settings: rows of (name, value or NULL if unknown).
pub fn readback_sql(names: &[String]) -> String {
    let list: Vec<String> = names.iter().map(|n| dollar_quote(n)).collect();
    format!(
        "SELECT n, pg_catalog.current_setting(n, true) FROM pg_catalog.unnest(ARRAY[{}]::text[]) AS n",
        list.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn startup_params_and_options() {
        let s = SessionParams::from_startup(&p(&[
            ("user", "app"),
            ("database", "app"),
            ("application_name", "psql"),
            (
                "options",
                "-c search_path=a,b --statement-timeout=5s -c x.y=with\\ space",
            ),
            ("_pq_.foo", "1"),
        ]));
        let d: Vec<_> = s
            .desired()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            d,
            vec![
                ("application_name", "psql"),
                ("search_path", "a,b"),
                ("statement_timeout", "5s"),
                ("x.y", "with space")
            ]
        );
    }

    #[test]
    fn sync_sets_differences_and_resets_extras() {
        let s = SessionParams::from_startup(&p(&[
            ("application_name", "a"),
            ("DateStyle", "ISO, MDY"),
        ]));
        let login = p(&[("DateStyle", "ISO, MDY"), ("application_name", "")]);
        let server: Settings = [("search_path".to_string(), "x".to_string())]
            .into_iter()
            .collect();
        let sync = s.sync(&server, &login).unwrap();
        assert_eq!(
            sync.calls,
            vec![
                ("application_name".to_string(), Some("a".to_string())),
                ("search_path".to_string(), None),
            ]
        );
        assert_eq!(sync.after.len(), 2);
        assert_eq!(
            s.sync(&sync.after, &login),
            None,
            "a synced server needs nothing"
        );
        let mut out = BytesMut::new();
        assert_eq!(sync.encode(&mut out), 2, "one FunctionCall per change");
        assert_eq!(out[0], pgfleet_wire::tag::frontend::FUNCTION_CALL);
    }

    #[test]
    fn only_harmless_settings_go_inside_a_request() {
        let sync = |names: &[&str]| SettingsSync {
            calls: names.iter().map(|n| (n.to_string(), None)).collect(),
            after: Settings::default(),
        };
        assert!(
            sync(&["search_path", "app.current_tenant", "statement_timeout"]).fits_inside_request()
        );
        for name in [
            "default_transaction_isolation",
            "default_transaction_read_only",
            "role",
            "application_name",
            "client_encoding",
        ] {
            assert!(
                !sync(&["search_path", name]).fits_inside_request(),
                "{name}"
            );
        }
        let registry = PreparedRegistry::default();
        let mut out = BytesMut::new();
        assert_eq!(
            sync(&["app.x", "search_path"]).encode_inline(&mut out, "t", None, |_, sp| {
                registry.set_config_statement(sp)
            }),
            2
        );
        assert_eq!(out[0], pgfleet_wire::tag::frontend::BIND);
    }

    #[test]
    fn uncertain_settings_are_set_again() {
        let s = SessionParams::from_startup(&p(&[("app.t", "acme"), ("search_path", "a")]));
        let before: Settings = [
            ("app.t".to_string(), "globex".to_string()),
            ("work_mem".to_string(), "8MB".to_string()),
        ]
        .into_iter()
        .collect();
        let sync = s.sync(&before, &[]).unwrap();
        let mut server = sync.after.clone();
        forget_changed(&mut server, before);
        // app.t and search_path changed; work_mem was reset: all three unknown now.
        assert!(server.values().all(|v| v == UNKNOWN_VALUE), "{server:?}");
        assert_eq!(server.len(), 3);
        let again = s.sync(&server, &[]).unwrap();
        assert_eq!(
            again.calls,
            vec![
                ("app.t".to_string(), Some("acme".to_string())),
                ("search_path".to_string(), Some("a".to_string())),
                ("work_mem".to_string(), None),
            ]
        );
    }

    #[test]
    fn reset_returns_to_startup_value() {
        let mut s = SessionParams::from_startup(&p(&[("application_name", "a")]));
        s.learned("application_name", Some("b".into()));
        s.learned("work_mem", Some("8MB".into()));
        s.reset("application_name");
        s.reset("work_mem");
        assert_eq!(s.reported_value("application_name"), Some("a"));
        assert_eq!(s.reported_value("work_mem"), None);
    }

    #[test]
    fn dollar_quote_avoids_its_tag() {
        assert_eq!(
            dollar_quote("a$pgfleet$b"),
            "$pgfleet1$a$pgfleet$b$pgfleet1$"
        );
    }
}
