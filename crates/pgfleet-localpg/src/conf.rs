//! Editing a data directory's postgresql.conf and pg_hba.conf.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// Appends `(name, value)` settings to `dir/postgresql.conf` under a `# {comment}` line, as
/// `name = 'value'` (quoted values are accepted for every setting type; later lines win).
pub fn append_settings(dir: &Path, comment: &str, settings: &[(String, String)]) -> Result<()> {
    if settings.is_empty() {
        return Ok(());
    }
    let mut text = format!("\n# {comment}\n");
    for (name, value) in settings {
        text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
    }
    append(&dir.join("postgresql.conf"), &text)
}

/// Replaces `dir/pg_hba.conf` with `lines` (keeping the file's owner).
pub fn write_hba(dir: &Path, lines: &[String]) -> Result<()> {
    let path = dir.join("pg_hba.conf");
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).map_err(Error::io(format!("write {}", path.display())))
}

/// Appends `text` to an existing file, keeping its owner.
pub fn append(path: &Path, text: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(Error::io(format!("open {}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(Error::io(format!("append to {}", path.display())))
}
