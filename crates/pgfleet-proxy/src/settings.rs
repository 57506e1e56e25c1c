//! A set of session settings (name → value) that compares with another in one step.

use std::collections::BTreeMap;
use std::ops::Deref;

/// Settings by name, with a canonical encoding of the whole set kept beside them.
///
/// Every transaction compares the settings its session wants with those of the server it got
/// (`SessionParams::sync`). Comparing two `BTreeMap<String, String>` walks two trees and every
/// string's own allocation, memory the session last touched a whole pool queue ago; comparing the
/// encodings reads two contiguous buffers. The encoding (every name and value, each after its
/// length, in name order) is injective: equal encodings mean equal settings, exactly.
///
/// Reads go through `Deref` to the map; every change goes through a method that re-encodes.
#[derive(Clone, Default, Debug)]
pub struct Settings {
    map: BTreeMap<String, String>,
    encoded: Vec<u8>,
}

impl Settings {
    /// Sets `name` to `value`; returns the previous value.
    pub fn insert(&mut self, name: String, value: String) -> Option<String> {
        let old = self.map.insert(name, value);
        self.encode();
        old
    }

    /// Removes `name`; returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let old = self.map.remove(name);
        if old.is_some() {
            self.encode();
        }
        old
    }

    /// Removes every setting.
    pub fn clear(&mut self) {
        self.map.clear();
        self.encoded.clear();
    }

    /// The settings as a map.
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.map
    }

    fn encode(&mut self) {
        self.encoded.clear();
        for (name, value) in &self.map {
            for s in [name, value] {
                self.encoded.extend_from_slice(&s.len().to_le_bytes());
                self.encoded.extend_from_slice(s.as_bytes());
            }
        }
    }
}

impl Deref for Settings {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &BTreeMap<String, String> {
        &self.map
    }
}

impl PartialEq for Settings {
    fn eq(&self, other: &Settings) -> bool {
        self.encoded == other.encoded
    }
}

impl Eq for Settings {}

impl From<BTreeMap<String, String>> for Settings {
    fn from(map: BTreeMap<String, String>) -> Settings {
        let mut s = Settings {
            map,
            encoded: Vec::new(),
        };
        s.encode();
        s
    }
}

impl Settings {
    /// The `search_path` setting, if set (part of a prepared statement's identity).
    pub fn search_path(&self) -> Option<&str> {
        self.map.get("search_path").map(String::as_str)
    }
}

impl FromIterator<(String, String)> for Settings {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Settings {
        Settings::from(iter.into_iter().collect::<BTreeMap<_, _>>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(pairs: &[(&str, &str)]) -> Settings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equal_exactly_when_the_maps_are_equal() {
        assert_eq!(s(&[("a", "1"), ("b", "2")]), s(&[("b", "2"), ("a", "1")]));
        assert_eq!(Settings::default(), s(&[]));
        // Boundaries between names and values cannot shift.
        assert_ne!(s(&[("ab", "c")]), s(&[("a", "bc")]));
        assert_ne!(s(&[("a", "b"), ("c", "")]), s(&[("a", "b\u{8}c")]));
        assert_ne!(s(&[("a", "")]), s(&[]));
        assert_ne!(s(&[("a", "1")]), s(&[("a", "2")]));
    }

    #[test]
    fn every_change_is_seen_by_the_comparison() {
        let mut a = s(&[("a", "1")]);
        let b = a.clone();
        assert_eq!(a.insert("a".into(), "2".into()).as_deref(), Some("1"));
        assert_ne!(a, b);
        a.insert("a".into(), "1".into());
        assert_eq!(a, b);
        a.insert("z".into(), "9".into());
        assert_ne!(a, b);
        assert_eq!(a.remove("z").as_deref(), Some("9"));
        assert_eq!(a, b);
        a.clear();
        assert_eq!(a, Settings::default());
        assert!(a.is_empty());
    }
}
