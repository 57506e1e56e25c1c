//! Reads single values (strings, counts, durations, sizes, enums) and records a [`Problem`]
//! with the key path for each bad one. `None` means "missing or invalid: use the default";
//! an invalid value never yields a `Config` because its problem is recorded.

use std::time::Duration;

use toml::Value;

use crate::keys::suggest;
use crate::problem::Problem;
use crate::units::{parse_duration, parse_size};

#[derive(Default)]
pub(crate) struct Reader {
    pub problems: Vec<Problem>,
}

impl Reader {
    pub fn report(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    /// Reports a key nobody reads, with a "did you mean" when a known key is close.
    pub fn unknown_key(&mut self, path: String) {
        let message = match suggest(&path) {
            Some(s) => format!("unknown key; did you mean `{s}`?"),
            None => "unknown key".to_string(),
        };
        self.report(path, message);
    }

    fn wrong_type(&mut self, path: &str, want: &str, got: &Value) {
        self.report(path, format!("expected {want}, found {}", got.type_str()));
    }

    pub fn string(&mut self, path: &str, value: &Option<Value>) -> Option<String> {
        match value.as_ref()? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_type(path, "a string", other);
                None
            }
        }
    }

    pub fn boolean(&mut self, path: &str, value: &Option<Value>) -> Option<bool> {
        match value.as_ref()? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(path, "true or false", other);
                None
            }
        }
    }

    /// A non-negative integer no smaller than `min`.
    pub fn count(&mut self, path: &str, value: &Option<Value>, min: u64) -> Option<u64> {
        match value.as_ref()? {
            Value::Integer(i) if *i < 0 => {
                self.report(path, format!("must not be negative (found {i})"));
                None
            }
            Value::Integer(i) if (*i as u64) < min => {
                self.report(path, format!("must be at least {min} (found {i})"));
                None
            }
            Value::Integer(i) => Some(*i as u64),
            other => {
                self.wrong_type(path, "an integer", other);
                None
            }
        }
    }

    pub fn usize(&mut self, path: &str, value: &Option<Value>, min: u64) -> Option<usize> {
        let n = self.count(path, value, min)?;
        usize::try_from(n).ok().or_else(|| {
            self.report(path, format!("{n} is too large"));
            None
        })
    }

    pub fn duration(&mut self, path: &str, value: &Option<Value>) -> Option<Duration> {
        match value.as_ref()? {
            Value::String(s) => parse_duration(s).map_err(|m| self.report(path, m)).ok(),
            Value::Integer(i) => {
                self.report(
                    path,
                    format!(
                        "a duration needs a unit; write e.g. \"{i}s\" or \"{i}ms\" instead of {i}"
                    ),
                );
                None
            }
            other => {
                self.wrong_type(path, "a duration string such as \"30s\"", other);
                None
            }
        }
    }

    pub fn size(&mut self, path: &str, value: &Option<Value>) -> Option<usize> {
        match value.as_ref()? {
            Value::String(s) => match parse_size(s) {
                Ok(0) => {
                    self.report(path, "must be at least 1 byte");
                    None
                }
                Ok(n) => Some(n),
                Err(m) => {
                    self.report(path, m);
                    None
                }
            },
            Value::Integer(_) => self.usize(path, value, 1),
            other => {
                self.wrong_type(path, "a size such as \"64MiB\" or a number of bytes", other);
                None
            }
        }
    }

    /// An array of strings, each with its own key path (`<path>.<index>`) for later checks.
    pub fn string_list(
        &mut self,
        path: &str,
        value: &Option<Value>,
    ) -> Option<Vec<(String, String)>> {
        let items = match value.as_ref()? {
            Value::Array(items) => items,
            other => {
                self.wrong_type(path, "an array of strings such as [\"random\"]", other);
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}.{i}");
            match item {
                Value::String(s) => out.push((item_path, s.clone())),
                other => self.wrong_type(&item_path, "a string", other),
            }
        }
        Some(out)
    }

    /// One of `choices` (config spelling, value).
    pub fn choice<T: Copy>(
        &mut self,
        path: &str,
        value: &Option<Value>,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let text = self.string(path, value)?;
        if let Some((_, v)) = choices.iter().find(|(name, _)| *name == text) {
            return Some(*v);
        }
        let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        self.report(
            path,
            format!(
                "unknown value \"{text}\"; expected one of {}",
                names.join(", ")
            ),
        );
        None
    }
}
