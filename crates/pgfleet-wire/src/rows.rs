//! Query results: RowDescription and DataRow (PostgreSQL docs 55.7), decoded to typed views and
//! encoded back, for the cross-shard merge that rewrites results.

use bytes::{BufMut, BytesMut};

use crate::cursor::Cursor;
use crate::frame::{put_cstr, write_message};
use crate::tag::backend as t;
use crate::WireError;

/// One column of a RowDescription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDescription {
    /// Column name.
    pub name: String,
    /// OID of the table the column comes from, or 0.
    pub table_oid: u32,
    /// Attribute number of the column in that table, or 0.
    pub column: i16,
    /// OID of the column's data type.
    pub type_oid: u32,
    /// `pg_type.typlen` (negative: variable width).
    pub type_size: i16,
    /// `pg_attribute.atttypmod` (type-specific, -1 when none).
    pub type_modifier: i32,
    /// Format code of the values: 0 text, 1 binary.
    pub format: i16,
}

/// Decodes a RowDescription body.
pub fn decode_row_description(body: &[u8]) -> Result<Vec<FieldDescription>, WireError> {
    let mut c = Cursor::new(body, "RowDescription");
    let n = c.i16()?;
    let mut fields = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        fields.push(FieldDescription {
            name: c.cstr()?.to_owned(),
            table_oid: c.i32()? as u32,
            column: c.i16()?,
            type_oid: c.i32()? as u32,
            type_size: c.i16()?,
            type_modifier: c.i32()?,
            format: c.i16()?,
        });
    }
    Ok(fields)
}

/// Appends a RowDescription.
pub fn encode_row_description(out: &mut BytesMut, fields: &[FieldDescription]) {
    write_message(out, t::ROW_DESCRIPTION, |b| {
        b.put_i16(fields.len() as i16);
        for f in fields {
            put_cstr(b, &f.name);
            b.put_u32(f.table_oid);
            b.put_i16(f.column);
            b.put_u32(f.type_oid);
            b.put_i16(f.type_size);
            b.put_i32(f.type_modifier);
            b.put_i16(f.format);
        }
    });
}

/// Decodes a DataRow body into its values (`None` = NULL), borrowing from `body`.
pub fn decode_data_row(body: &[u8]) -> Result<Vec<Option<&[u8]>>, WireError> {
    data_row_values(body)?.collect()
}

/// The values of a DataRow body in column order (`None` = NULL), read as they are asked for:
/// collect them into whatever container suits (the merge uses one on the stack). Yields an error
/// for a truncated row or bytes after its last value, then stops.
pub fn data_row_values(body: &[u8]) -> Result<DataRowValues<'_>, WireError> {
    let mut cursor = Cursor::new(body, "DataRow");
    let left = cursor.i16()?.max(0) as usize;
    if left == 0 && !cursor.is_empty() {
        return Err(WireError::Truncated("DataRow"));
    }
    Ok(DataRowValues { cursor, left })
}

/// Iterator of [`data_row_values`].
pub struct DataRowValues<'a> {
    cursor: Cursor<'a>,
    left: usize,
}

impl<'a> Iterator for DataRowValues<'a> {
    type Item = Result<Option<&'a [u8]>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let value = self.cursor.i32().and_then(|len| {
            if len < 0 {
                Ok(None)
            } else {
                self.cursor.bytes(len as usize).map(Some)
            }
        });
        let value = match value {
            Ok(_) if self.left == 0 && !self.cursor.is_empty() => {
                Err(WireError::Truncated("DataRow"))
            }
            v => v,
        };
        if value.is_err() {
            self.left = 0;
        }
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// The row's column count until an error, then 0.
impl ExactSizeIterator for DataRowValues<'_> {}

/// Appends a DataRow of raw values in any format (`None` = NULL).
pub fn encode_data_row_raw(out: &mut BytesMut, values: &[Option<&[u8]>]) {
    write_message(out, t::DATA_ROW, |b| {
        b.put_i16(values.len() as i16);
        for v in values {
            match v {
                Some(bytes) => {
                    b.put_i32(bytes.len() as i32);
                    b.extend_from_slice(bytes);
                }
                None => b.put_i32(-1),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::split_frame;

    #[test]
    fn row_description_round_trip() {
        let fields = vec![
            FieldDescription {
                name: "id".into(),
                table_oid: 16384,
                column: 1,
                type_oid: 20,
                type_size: 8,
                type_modifier: -1,
                format: 1,
            },
            FieldDescription {
                name: "name".into(),
                table_oid: 0,
                column: 0,
                type_oid: 25,
                type_size: -1,
                type_modifier: -1,
                format: 0,
            },
        ];
        let mut out = BytesMut::new();
        encode_row_description(&mut out, &fields);
        let f = split_frame(&mut out, 1 << 20).unwrap().unwrap();
        assert_eq!(f.tag(), t::ROW_DESCRIPTION);
        assert_eq!(decode_row_description(f.body()).unwrap(), fields);
    }

    #[test]
    fn data_row_round_trip_with_nulls_and_rejects_trailing_bytes() {
        let mut out = BytesMut::new();
        encode_data_row_raw(&mut out, &[Some(b"1"), None, Some(b"")]);
        let f = split_frame(&mut out, 1 << 20).unwrap().unwrap();
        assert_eq!(
            decode_data_row(f.body()).unwrap(),
            vec![Some(&b"1"[..]), None, Some(&b""[..])]
        );
        let mut body = f.body().to_vec();
        body.push(0);
        assert!(decode_data_row(&body).is_err());
        assert!(decode_data_row(&body[..body.len() - 3]).is_err());
        // A row of no columns is two bytes; anything after them is an error too.
        assert_eq!(
            decode_data_row(&[0, 0]).unwrap(),
            Vec::<Option<&[u8]>>::new()
        );
        assert!(decode_data_row(&[0, 0, 0]).is_err());
    }

    #[test]
    fn data_row_values_stop_after_an_error() {
        let mut out = BytesMut::new();
        encode_data_row_raw(&mut out, &[Some(b"12"), Some(b"3")]);
        let f = split_frame(&mut out, 1 << 20).unwrap().unwrap();
        let body = f.body();
        let short = &body[..body.len() - 1];
        let values = data_row_values(short).unwrap();
        assert_eq!(values.len(), 2);
        let got: Vec<_> = values.collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap(), &Some(&b"12"[..]));
        assert!(got[1].is_err());
    }
}
