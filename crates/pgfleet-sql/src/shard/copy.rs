//! A `COPY` statement read for running it across shards: the table, the column list, the
//! direction and the data format options that decide how rows and fields are delimited.

use pg_query::NodeEnum;

use super::kind::{first_statement, option_value};

/// COPY's data format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyFormat {
    /// `FORMAT text` (the default).
    Text,
    /// `FORMAT csv`.
    Csv,
    /// `FORMAT binary`.
    Binary,
}

/// What pgfleet needs to know of one `COPY table [(columns)] FROM STDIN | TO STDOUT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopySpec {
    /// The table (as PostgreSQL stores the name) and its schema when written.
    pub table: String,
    /// The schema, when the statement names one.
    pub schema: Option<String>,
    /// The column list, when given.
    pub columns: Option<Vec<String>>,
    /// `FROM STDIN` (true) or `TO STDOUT` (false).
    pub from: bool,
    /// Data format.
    pub format: CopyFormat,
    /// Field delimiter (tab for text, `,` for CSV).
    pub delimiter: u8,
    /// CSV quote character.
    pub quote: u8,
    /// CSV escape character (defaults to the quote).
    pub escape: u8,
    /// The string that means NULL (`\N` for text, empty for CSV).
    pub null: String,
    /// `HEADER`: the first line is a header, not a row.
    pub header: bool,
}

/// Reads a COPY statement; `Err` names what pgfleet cannot run across shards (a query instead of
/// a table, a file or program, a multi-byte delimiter, …).
pub fn copy_spec(sql: &str) -> Result<CopySpec, String> {
    let parsed =
        pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).map_err(|e| e.to_string())?;
    let Some(NodeEnum::CopyStmt(c)) = first_statement(&parsed) else {
        return Err("not a COPY statement".into());
    };
    let Some(rel) = c.relation.as_ref() else {
        return Err("COPY of a query".into());
    };
    if c.is_program || !c.filename.is_empty() {
        return Err("COPY with a file or program (only STDIN/STDOUT go through pgfleet)".into());
    }
    if c.where_clause.is_some() {
        return Err("COPY FROM … WHERE".into());
    }
    let columns = (!c.attlist.is_empty()).then(|| {
        c.attlist
            .iter()
            .filter_map(|n| match n.node.as_ref() {
                Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                _ => None,
            })
            .collect()
    });
    let mut spec = CopySpec {
        table: rel.relname.clone(),
        schema: (!rel.schemaname.is_empty()).then(|| rel.schemaname.clone()),
        columns,
        from: c.is_from,
        format: CopyFormat::Text,
        delimiter: b'\t',
        quote: b'"',
        escape: b'"',
        null: "\\N".into(),
        header: false,
    };
    let mut delimiter = None;
    let mut null = None;
    let mut escape = None;
    for o in &c.options {
        let Some(NodeEnum::DefElem(d)) = o.node.as_ref() else {
            continue;
        };
        let value = option_value(d);
        let one_byte = |what: &str| -> Result<u8, String> {
            match value.as_deref().map(str::as_bytes) {
                Some([b]) if b.is_ascii() => Ok(*b),
                _ => Err(format!("a COPY {what} that is not one ASCII character")),
            }
        };
        match d.defname.as_str() {
            "format" => {
                spec.format = match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("text") => CopyFormat::Text,
                    Some("csv") => CopyFormat::Csv,
                    Some("binary") => CopyFormat::Binary,
                    other => return Err(format!("COPY format {other:?}")),
                }
            }
            "delimiter" => delimiter = Some(one_byte("DELIMITER")?),
            "quote" => spec.quote = one_byte("QUOTE")?,
            "escape" => escape = Some(one_byte("ESCAPE")?),
            "null" => null = value.clone(),
            "header" => {
                spec.header = match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None | Some("true" | "on" | "1") => true,
                    Some("false" | "off" | "0") => false,
                    Some("match") => true,
                    Some(other) => return Err(format!("COPY HEADER {other}")),
                }
            }
            _ => {}
        }
    }
    if spec.format == CopyFormat::Csv {
        spec.delimiter = b',';
        spec.null = String::new();
    }
    if let Some(d) = delimiter {
        spec.delimiter = d;
    }
    if let Some(n) = null {
        spec.null = n;
    }
    spec.escape = escape.unwrap_or(spec.quote);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read() {
        let s = copy_spec("COPY items (id, v) FROM STDIN").unwrap();
        assert_eq!(s.table, "items");
        assert_eq!(s.columns, Some(vec!["id".into(), "v".into()]));
        assert!(s.from);
        assert_eq!(
            (s.format, s.delimiter, s.null.as_str()),
            (CopyFormat::Text, b'\t', "\\N")
        );
        let s = copy_spec(
            "COPY public.items FROM STDIN WITH (FORMAT csv, HEADER, DELIMITER ';', QUOTE '''')",
        )
        .unwrap();
        assert_eq!(s.schema.as_deref(), Some("public"));
        assert_eq!(
            (s.format, s.delimiter, s.quote, s.escape),
            (CopyFormat::Csv, b';', b'\'', b'\'')
        );
        assert!(s.header);
        assert_eq!(s.null, "");
        let s = copy_spec("COPY items TO STDOUT (FORMAT binary)").unwrap();
        assert!(!s.from);
        assert_eq!(s.format, CopyFormat::Binary);
        let s = copy_spec("COPY items FROM STDIN CSV HEADER").unwrap();
        assert_eq!(s.format, CopyFormat::Csv);
        assert!(s.header);
        assert!(copy_spec("COPY (SELECT 1) TO STDOUT").is_err());
        assert!(copy_spec("COPY items FROM '/tmp/x'").is_err());
    }
}
