//! `EXPLAIN` of a statement that runs on several shards: its options, the explained statement,
//! and the `EXPLAIN` each shard runs for its own text.

use pg_query::protobuf::ExplainStmt;
use pg_query::NodeEnum;

use super::kind::{first_statement, option_value};

/// One `EXPLAIN [ (options) ] statement`.
#[derive(Clone, Debug)]
pub struct Explain {
    /// The explained statement's text (deparsed).
    pub inner: String,
    /// `ANALYZE`: the statement runs.
    pub analyze: bool,
    /// The output format is text (the default); JSON, XML and YAML are not combined.
    pub text_format: bool,
    stmt: ExplainStmt,
}

fn option_true(value: Option<&str>) -> bool {
    !matches!(
        value.map(str::to_ascii_lowercase).as_deref(),
        Some("false" | "off" | "0")
    )
}

/// Reads an EXPLAIN statement.
pub fn explain_parts(sql: &str) -> Result<Explain, String> {
    let parsed =
        pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).map_err(|e| e.to_string())?;
    let Some(NodeEnum::ExplainStmt(e)) = first_statement(&parsed) else {
        return Err("not an EXPLAIN statement".into());
    };
    let inner = e
        .query
        .as_ref()
        .and_then(|q| q.node.as_ref())
        .ok_or("EXPLAIN without a statement")?
        .deparse(pg_query::DeparseOptions::default())
        .map_err(|e| e.to_string())?;
    let mut analyze = false;
    let mut text_format = true;
    for o in &e.options {
        let Some(NodeEnum::DefElem(d)) = o.node.as_ref() else {
            continue;
        };
        let value = option_value(d);
        match d.defname.as_str() {
            "analyze" => analyze = option_true(value.as_deref()),
            "format" => {
                text_format =
                    value.as_deref().map(str::to_ascii_lowercase).as_deref() == Some("text")
            }
            _ => {}
        }
    }
    Ok(Explain {
        inner,
        analyze,
        text_format,
        stmt: (**e).clone(),
    })
}

impl Explain {
    /// The same EXPLAIN (same options) of `statement` instead: what a shard runs.
    pub fn wrap(&self, statement: &str) -> Result<String, String> {
        let parsed = pg_query::parse(statement, pg_query::ParserOptions::DEFAULT)
            .map_err(|e| e.to_string())?;
        let node = parsed
            .protobuf
            .stmts
            .into_iter()
            .next()
            .and_then(|s| s.stmt)
            .ok_or("an empty statement")?;
        let mut stmt = self.stmt.clone();
        stmt.query = Some(node);
        NodeEnum::ExplainStmt(Box::new(stmt))
            .deparse(pg_query::DeparseOptions::default())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_statement_are_read_and_rewrapped() {
        let e = explain_parts("EXPLAIN (ANALYZE, COSTS off) SELECT a FROM t ORDER BY a LIMIT 3")
            .unwrap();
        assert!(e.analyze && e.text_format);
        assert_eq!(e.inner, "SELECT a FROM t ORDER BY a LIMIT 3");
        let w = e.wrap("SELECT a FROM t ORDER BY a LIMIT 5").unwrap();
        assert!(w.starts_with("EXPLAIN (") && w.contains("LIMIT 5"), "{w}");
        assert!(w.to_lowercase().contains("analyze"), "{w}");
        let e = explain_parts("EXPLAIN (FORMAT json) SELECT 1").unwrap();
        assert!(!e.text_format && !e.analyze);
        let e = explain_parts("EXPLAIN (ANALYZE false) SELECT 1").unwrap();
        assert!(!e.analyze);
        assert!(explain_parts("SELECT 1").is_err());
    }
}
