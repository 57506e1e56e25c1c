//! A client's session settings in transaction pooling: what it asked for at startup and with SET,
//! and the SQL that makes any server connection match them. Pure: no I/O.

use std::collections::BTreeMap;

/// Startup parameters that are not settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "replication", "options"];

/// The settings a client's session should have on whichever server runs its next transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionParams {
    /// Values from the startup packet (and its `options`), the session defaults RESET returns to.
    startup: BTreeMap<String, String>,
    /// Current wanted values: startup values plus SETs that took effect. Keys lower-case.
    desired: BTreeMap<String, String>,
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

/// Quotes a possibly dotted setting name as identifiers for RESET.
fn quote_name(name: &str) -> String {
    name.split('.')
        .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
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
    pub fn desired(&self) -> &BTreeMap<String, String> {
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
    pub fn all_names<'a>(&'a self, server: &'a BTreeMap<String, String>) -> Vec<String> {
        let mut v: Vec<String> = self.desired.keys().chain(server.keys()).cloned().collect();
        v.sort();
        v.dedup();
        v
    }

    /// SQL that makes a server whose known settings are `server` (beyond its login defaults
    /// `login`) match this session, and the server's settings afterwards. `None` when nothing
    /// differs.
    pub fn sync_sql(
        &self,
        server: &BTreeMap<String, String>,
        login: &[(String, String)],
    ) -> Option<(String, BTreeMap<String, String>)> {
        // Hot path (every transaction): most of the time the server was last brought to the same
        // settings (both ordered maps: a merge walk, no hashing).
        if *server == self.desired {
            return None;
        }
        // Next most common: nothing differs once login values count; decide that without
        // allocating.
        let current = |name: &str| {
            server.get(name).map(String::as_str).or_else(|| {
                login
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
            })
        };
        if self
            .desired
            .iter()
            .all(|(n, v)| current(n) == Some(v.as_str()))
            && server.keys().all(|k| self.desired.contains_key(k))
        {
            return None;
        }
        let mut sql = String::new();
        let mut after = BTreeMap::new();
        for (name, value) in &self.desired {
            let current = server.get(name).map(String::as_str).or_else(|| {
                login
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
            });
            if current != Some(value.as_str()) {
                sql.push_str(&format!(
                    "SELECT pg_catalog.set_config({}, {}, false);",
                    dollar_quote(name),
                    dollar_quote(value)
                ));
            }
            after.insert(name.clone(), value.clone());
        }
        for name in server.keys() {
            if !self.desired.contains_key(name) {
                sql.push_str(&format!("RESET {};", quote_name(name)));
            }
        }
        if sql.is_empty() {
            None
        } else {
            Some((sql, after))
        }
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
        let server: BTreeMap<String, String> =
            [("search_path".to_string(), "x".to_string())].into();
        let (sql, after) = s.sync_sql(&server, &login).unwrap();
        assert_eq!(
            sql,
            "SELECT pg_catalog.set_config($pgfleet$application_name$pgfleet$, $pgfleet$a$pgfleet$, false);RESET \"search_path\";"
        );
        assert_eq!(after.len(), 2);
        assert_eq!(
            s.sync_sql(&after, &login),
            None,
            "a synced server needs nothing"
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
