//! The CommandComplete tag one server would send for a statement that ran on several shards.

/// Combines the shards' CommandComplete tags: row counts add up (`INSERT 0 n`, `UPDATE n`,
/// `DELETE n`, `MERGE n`, `SELECT n`, `COPY n`); other tags (DDL) must agree and are kept.
/// `None` when the shards disagree, which would mean they ran different statements.
pub(crate) fn combine<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut combined: Option<(String, Option<u64>)> = None;
    for tag in tags {
        let (head, count) = split(tag);
        combined = match combined {
            None => Some((head.to_owned(), count)),
            Some((h, c)) if h == head => match (c, count) {
                (Some(a), Some(b)) => Some((h, Some(a + b))),
                (None, None) => Some((h, None)),
                _ => return None,
            },
            Some(_) => return None,
        };
    }
    combined.map(|(head, count)| match count {
        Some(n) => format!("{head}{n}"),
        None => head,
    })
}

/// The tag of a statement every shard ran on its own copy of the same rows (a reference table):
/// one shard's tag stands for all; `None` when the copies answered differently (they differ).
pub(crate) fn combine_replicated<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut tags = tags.into_iter();
    let first = tags.next()?;
    tags.all(|t| t == first).then(|| first.to_owned())
}

/// Splits a tag into its words before the row count (with the trailing space) and the count,
/// for the tags that carry one.
fn split(tag: &str) -> (&str, Option<u64>) {
    const COUNTED: [&str; 7] = [
        "INSERT 0 ",
        "UPDATE ",
        "DELETE ",
        "MERGE ",
        "SELECT ",
        "COPY ",
        "MOVE ",
    ];
    for head in COUNTED {
        if let Some(rest) = tag.strip_prefix(head) {
            if let Ok(n) = rest.parse::<u64>() {
                return (head, Some(n));
            }
        }
    }
    (tag, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_ddl_tags_must_agree() {
        assert_eq!(
            combine(["INSERT 0 2", "INSERT 0 3"]).as_deref(),
            Some("INSERT 0 5")
        );
        assert_eq!(
            combine(["UPDATE 0", "UPDATE 7"]).as_deref(),
            Some("UPDATE 7")
        );
        assert_eq!(combine(["DELETE 1"]).as_deref(), Some("DELETE 1"));
        assert_eq!(
            combine(["CREATE TABLE", "CREATE TABLE"]).as_deref(),
            Some("CREATE TABLE")
        );
        assert_eq!(combine(["CREATE TABLE", "ALTER TABLE"]), None);
        assert_eq!(combine(["UPDATE 1", "DELETE 1"]), None);
        assert_eq!(combine(std::iter::empty()), None);
        assert_eq!(
            combine_replicated(["UPDATE 1", "UPDATE 1"]).as_deref(),
            Some("UPDATE 1")
        );
        assert_eq!(combine_replicated(["UPDATE 1", "UPDATE 2"]), None);
    }
}
