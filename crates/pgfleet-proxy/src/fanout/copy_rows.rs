//! Splitting `COPY … FROM STDIN` data by shard, as it streams: rows are found across CopyData
//! boundaries (text format: an unescaped newline; CSV: a newline outside quotes), the shard
//! key's field is decoded (text escapes, CSV quoting, the NULL string) and each row's bytes go,
//! unchanged, to its shard's buffer. Pure: the caller gives the key → shard function and sends
//! the buffers.

use bytes::BytesMut;
use pgfleet_sql::shard::{CopyFormat, CopySpec};

/// Splits the rows of one COPY.
pub(crate) struct RowSplitter {
    format: CopyFormat,
    delimiter: u8,
    quote: u8,
    escape: u8,
    null: Vec<u8>,
    key_field: usize,
    header_pending: bool,
    /// Bytes of the row being read (not yet complete).
    buf: Vec<u8>,
    /// Where the scan for the current row's end continues in `buf`.
    scan: usize,
    /// CSV: inside quotes the previous byte was the escape character.
    escaped: bool,
    /// CSV: inside a quoted field.
    in_quotes: bool,
    /// The end-of-data marker `\.` was seen: later bytes are ignored.
    ended: bool,
    /// Data rows seen (for error messages).
    pub rows: u64,
}

/// A key → shard decision: the key's decoded text (`None`: NULL) to a shard number, or why not.
pub(crate) type ShardOf<'a> = dyn Fn(Option<&[u8]>) -> Result<usize, String> + 'a;

impl RowSplitter {
    /// A splitter for `spec` whose shard key is field `key_field` (0-based) of each row.
    pub(crate) fn new(spec: &CopySpec, key_field: usize) -> RowSplitter {
        RowSplitter {
            format: spec.format,
            delimiter: spec.delimiter,
            quote: spec.quote,
            escape: spec.escape,
            null: spec.null.as_bytes().to_vec(),
            key_field,
            header_pending: spec.header,
            buf: Vec::new(),
            scan: 0,
            escaped: false,
            in_quotes: false,
            ended: false,
            rows: 0,
        }
    }

    /// Feeds one CopyData payload; complete rows are appended to `outs[shard]` (a header line to
    /// every one).
    pub(crate) fn push(
        &mut self,
        data: &[u8],
        shard_of: &ShardOf<'_>,
        outs: &mut [BytesMut],
    ) -> Result<(), String> {
        if self.ended {
            return Ok(());
        }
        self.buf.extend_from_slice(data);
        let mut start = 0;
        let mut i = self.scan;
        while i < self.buf.len() {
            let b = self.buf[i];
            // CSV tracks quotes; text escapes are counted back from a newline
            // (`escaped_newline`).
            if self.format == CopyFormat::Csv {
                if self.in_quotes {
                    if self.escaped {
                        self.escaped = false;
                    } else if b == self.escape && self.escape != self.quote {
                        self.escaped = true;
                    } else if b == self.quote {
                        self.in_quotes = false;
                    }
                } else if b == self.quote {
                    self.in_quotes = true;
                }
            }
            let row_end = b == b'\n'
                && !self.in_quotes
                && !(self.format != CopyFormat::Csv && self.escaped_newline(i, start));
            if row_end {
                let row = self.buf[start..=i].to_vec();
                self.row(&row, shard_of, outs)?;
                start = i + 1;
                if self.ended {
                    self.buf.clear();
                    self.scan = 0;
                    return Ok(());
                }
            }
            i += 1;
        }
        self.buf.drain(..start);
        self.scan = self.buf.len();
        Ok(())
    }

    /// Text format: whether the newline at `i` is escaped by a backslash (an odd run of
    /// backslashes before it, within the current row).
    fn escaped_newline(&self, i: usize, start: usize) -> bool {
        let run = self.buf[start..i]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        run % 2 == 1
    }

    /// The end of the data: a last row without a newline counts.
    pub(crate) fn finish(
        &mut self,
        shard_of: &ShardOf<'_>,
        outs: &mut [BytesMut],
    ) -> Result<(), String> {
        if self.ended || self.buf.is_empty() {
            return Ok(());
        }
        if self.in_quotes {
            return Err("the COPY data ends inside a quoted CSV field".into());
        }
        let row = std::mem::take(&mut self.buf);
        self.scan = 0;
        self.row(&row, shard_of, outs)
    }

    fn row(
        &mut self,
        row: &[u8],
        shard_of: &ShardOf<'_>,
        outs: &mut [BytesMut],
    ) -> Result<(), String> {
        let line = strip_eol(row);
        if line == b"\\." {
            self.ended = true;
            return Ok(());
        }
        if std::mem::take(&mut self.header_pending) {
            for out in outs.iter_mut() {
                out.extend_from_slice(row);
            }
            return Ok(());
        }
        self.rows += 1;
        let key = match self.format {
            CopyFormat::Csv => self.csv_field(line),
            _ => self.text_field(line),
        }
        .map_err(|e| format!("COPY row {}: {e}", self.rows))?;
        let shard = shard_of(key.as_deref()).map_err(|e| format!("COPY row {}: {e}", self.rows))?;
        let out = outs
            .get_mut(shard)
            .ok_or_else(|| format!("COPY row {}: no shard {shard}", self.rows))?;
        out.extend_from_slice(row);
        if row.last() != Some(&b'\n') {
            out.extend_from_slice(b"\n");
        }
        Ok(())
    }

    /// The key field of a text-format line, unescaped; `None` for the NULL string.
    fn text_field(&self, line: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let mut field = 0;
        let mut from = 0;
        let mut i = 0;
        let mut raw: Option<&[u8]> = None;
        while i <= line.len() {
            if i == line.len() || line[i] == self.delimiter {
                if field == self.key_field {
                    raw = Some(&line[from..i]);
                    break;
                }
                field += 1;
                from = i + 1;
            } else if line[i] == b'\\' {
                i += 1;
            }
            i += 1;
        }
        let raw =
            raw.ok_or_else(|| format!("no field {} for the shard key", self.key_field + 1))?;
        if raw == self.null.as_slice() {
            return Ok(None);
        }
        Ok(Some(unescape_text(raw)))
    }

    /// The key field of a CSV line, unquoted; `None` for an unquoted NULL string.
    fn csv_field(&self, line: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let mut field = 0;
        let mut i = 0;
        loop {
            let quoted = line.get(i) == Some(&self.quote);
            let mut value = Vec::new();
            if quoted {
                i += 1;
                loop {
                    match line.get(i) {
                        None => return Err("unterminated quoted field".into()),
                        Some(&b) if b == self.escape && self.escape != self.quote => {
                            if let Some(&next) = line.get(i + 1) {
                                value.push(next);
                            }
                            i += 2;
                        }
                        Some(&b) if b == self.quote => {
                            if self.escape == self.quote && line.get(i + 1) == Some(&self.quote) {
                                value.push(b);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&b) => {
                            value.push(b);
                            i += 1;
                        }
                    }
                }
                while i < line.len() && line[i] != self.delimiter {
                    value.push(line[i]);
                    i += 1;
                }
            } else {
                while i < line.len() && line[i] != self.delimiter {
                    value.push(line[i]);
                    i += 1;
                }
            }
            if field == self.key_field {
                if !quoted && value == self.null {
                    return Ok(None);
                }
                return Ok(Some(value));
            }
            if i >= line.len() {
                return Err(format!("no field {} for the shard key", self.key_field + 1));
            }
            i += 1;
            field += 1;
        }
    }
}

/// A line without its `\n` / `\r\n`.
fn strip_eol(row: &[u8]) -> &[u8] {
    let row = row.strip_suffix(b"\n").unwrap_or(row);
    row.strip_suffix(b"\r").unwrap_or(row)
}

/// PostgreSQL's text-format escapes: `\b \f \n \r \t \v`, octal `\ooo`, hex `\xhh`, and `\c` for
/// any other character c.
fn unescape_text(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 == raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    v = v * 8 + u32::from(raw[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < raw.len() && raw[i].is_ascii_hexdigit() {
                    v = v * 16 + (raw[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pgfleet_sql::shard::copy_spec;

    /// Shard = key's text length modulo 2; NULL → shard 0.
    fn by_len(key: Option<&[u8]>) -> Result<usize, String> {
        Ok(key.map_or(0, |k| k.len() % 2))
    }

    fn split(sql: &str, key: usize, chunks: &[&[u8]]) -> Result<Vec<String>, String> {
        let spec = copy_spec(sql).unwrap();
        let mut s = RowSplitter::new(&spec, key);
        let mut outs = vec![BytesMut::new(), BytesMut::new()];
        for c in chunks {
            s.push(c, &by_len, &mut outs)?;
        }
        s.finish(&by_len, &mut outs)?;
        Ok(outs
            .iter()
            .map(|o| String::from_utf8(o.to_vec()).unwrap())
            .collect())
    }

    #[test]
    fn text_rows_split_across_chunks_and_escapes() {
        let data: &[u8] = b"1\ta\nxy\tb\\\nc\n\\N\tnull\nabc\\tde\tz\n";
        // Every split point gives the same result.
        let whole = split("COPY t FROM STDIN", 0, &[data]).unwrap();
        for cut in 0..data.len() {
            let (a, b) = data.split_at(cut);
            assert_eq!(
                split("COPY t FROM STDIN", 0, &[a, b]).unwrap(),
                whole,
                "cut {cut}"
            );
        }
        // "1" odd → 1; "xy" even → 0 (its row has an escaped newline); NULL → 0;
        // "abc\tde" unescaped is 6 bytes → 0.
        assert_eq!(whole[1], "1\ta\n");
        assert_eq!(whole[0], "xy\tb\\\nc\n\\N\tnull\nabc\\tde\tz\n");
    }

    #[test]
    fn the_key_can_be_a_later_field_and_a_last_row_needs_no_newline() {
        let out = split("COPY t FROM STDIN", 1, &[b"a\t1\nb\t22\nc\t333"]).unwrap();
        assert_eq!(out[1], "a\t1\nc\t333\n");
        assert_eq!(out[0], "b\t22\n");
        let e = split("COPY t FROM STDIN", 2, &[b"a\t1\n"]).unwrap_err();
        assert!(e.contains("row 1") && e.contains("no field 3"), "{e}");
    }

    #[test]
    fn csv_quotes_newlines_and_header() {
        let data: &[u8] = b"id,v\n\"x\ny\",1\n\"a\"\"b\",2\n,3\n\"\",4\n";
        let whole = split("COPY t FROM STDIN (FORMAT csv, HEADER)", 0, &[data]).unwrap();
        for cut in 0..data.len() {
            let (a, b) = data.split_at(cut);
            assert_eq!(
                split("COPY t FROM STDIN (FORMAT csv, HEADER)", 0, &[a, b]).unwrap(),
                whole
            );
        }
        // Header to both; "x\ny" (3) → 1; a"b (3) → 1; unquoted empty = NULL → 0; "" (0) → 0.
        assert_eq!(whole[1], "id,v\n\"x\ny\",1\n\"a\"\"b\",2\n");
        assert_eq!(whole[0], "id,v\n,3\n\"\",4\n");
    }

    #[test]
    fn end_marker_stops_and_escapes_decode() {
        let out = split("COPY t FROM STDIN", 0, &[b"a\n\\.\nignored\n"]).unwrap();
        assert_eq!(out[1], "a\n");
        assert_eq!(out[0], "");
        assert_eq!(unescape_text(b"a\\tb\\101\\x41\\\\"), b"a\tbAA\\");
    }
}
