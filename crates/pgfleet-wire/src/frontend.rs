//! Client → server messages: typed views for the ones the proxy inspects or rewrites, and encoders
//! for the ones it sends itself (PostgreSQL docs 55.7).

use bytes::{BufMut, BytesMut};
use smallvec::SmallVec;

use crate::cursor::Cursor;
use crate::frame::{put_cstr, write_message, Frame};
use crate::tag::frontend as t;
use crate::WireError;

/// Parse: prepare `query` as statement `name` ("" = unnamed) with declared parameter type OIDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parse<'a> {
    /// Statement name; empty for the unnamed statement.
    pub name: &'a str,
    /// SQL text.
    pub query: &'a str,
    /// Declared parameter type OIDs (0 = unspecified).
    pub param_types: Vec<u32>,
}

/// Bind: the names it refers to, plus everything after them left as raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind<'a> {
    /// Destination portal name.
    pub portal: &'a str,
    /// Source statement name.
    pub statement: &'a str,
    /// Parameter formats, values and result formats, unparsed.
    pub rest: &'a [u8],
}

/// Which kind of object a Describe or Close names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// 'S': a prepared statement.
    Statement,
    /// 'P': a portal.
    Portal,
}

impl Target {
    fn decode(b: u8, what: &'static str) -> Result<Target, WireError> {
        match b {
            b'S' => Ok(Target::Statement),
            b'P' => Ok(Target::Portal),
            _ => Err(WireError::Truncated(what)),
        }
    }

    fn byte(self) -> u8 {
        match self {
            Target::Statement => b'S',
            Target::Portal => b'P',
        }
    }
}

/// Describe or Close of a statement or portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Named<'a> {
    /// Statement or portal.
    pub target: Target,
    /// Its name.
    pub name: &'a str,
}

/// The text of a simple Query, which must be UTF-8.
pub fn decode_query(frame: &Frame) -> Result<&str, WireError> {
    decode_query_bytes(frame).and_then(query_text)
}

/// The text of a simple Query as its bytes, in the client's encoding (`client_encoding`).
pub fn decode_query_bytes(frame: &Frame) -> Result<&[u8], WireError> {
    Cursor::new(frame.body(), "Query").cstr_bytes()
}

/// The text of a simple Query as UTF-8, or the error for a text that is not.
pub fn query_text(sql: &[u8]) -> Result<&str, WireError> {
    std::str::from_utf8(sql).map_err(|_| WireError::InvalidUtf8("Query"))
}

/// Decodes a Parse message.
pub fn decode_parse(frame: &Frame) -> Result<Parse<'_>, WireError> {
    let mut c = Cursor::new(frame.body(), "Parse");
    let name = c.cstr()?;
    let query = c.cstr()?;
    let n = c.i16()?;
    let mut param_types = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        param_types.push(c.i32()? as u32);
    }
    Ok(Parse {
        name,
        query,
        param_types,
    })
}

/// Decodes the names of a Bind message.
pub fn decode_bind(frame: &Frame) -> Result<Bind<'_>, WireError> {
    let mut c = Cursor::new(frame.body(), "Bind");
    let portal = c.cstr()?;
    let statement = c.cstr()?;
    Ok(Bind {
        portal,
        statement,
        rest: c.rest(),
    })
}

/// One parameter value of a Bind message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindParam<'a> {
    /// Format code 1 (binary); otherwise text.
    pub binary: bool,
    /// The value's bytes; `None` for SQL NULL (length -1).
    pub value: Option<&'a [u8]>,
}

impl<'a> Bind<'a> {
    /// The parameter values with their formats (PostgreSQL docs 55.7, Bind: no format codes means
    /// all text, one format code applies to every parameter, otherwise one per parameter). Up to
    /// [`INLINE_BIND_PARAMS`] of them are kept inline, without an allocation.
    pub fn parameters(&self) -> Result<BindValues<'a>, WireError> {
        let mut c = Cursor::new(self.rest, "Bind");
        let nformats = c.i16()?.max(0) as usize;
        // The format codes, read in place: two bytes each.
        let formats = c.bytes(2 * nformats)?;
        let n = c.i16()?.max(0) as usize;
        if nformats > 1 && nformats != n {
            return Err(WireError::Truncated("Bind"));
        }
        let is_binary = |i: usize| formats[2 * i..2 * i + 2] == [0, 1];
        let mut params = BindValues::with_capacity(n);
        for i in 0..n {
            let binary = match nformats {
                0 => false,
                1 => is_binary(0),
                _ => is_binary(i),
            };
            let len = c.i32()?;
            let value = if len < 0 {
                None
            } else {
                Some(c.bytes(len as usize)?)
            };
            params.push(BindParam { binary, value });
        }
        Ok(params)
    }
}

/// Parameters of a Bind kept inline by [`Bind::parameters`].
pub const INLINE_BIND_PARAMS: usize = 4;

/// The parameter values of a Bind message.
pub type BindValues<'a> = SmallVec<[BindParam<'a>; INLINE_BIND_PARAMS]>;

impl Bind<'_> {
    /// The result-column format codes (none: all text; one: for every column; else per column).
    pub fn result_formats(&self) -> Result<Vec<i16>, WireError> {
        let mut c = Cursor::new(self.rest, "Bind");
        let nformats = c.i16()?.max(0) as usize;
        for _ in 0..nformats {
            c.i16()?;
        }
        let n = c.i16()?.max(0) as usize;
        for _ in 0..n {
            let len = c.i32()?;
            if len > 0 {
                c.bytes(len as usize)?;
            }
        }
        let nresults = c.i16()?.max(0) as usize;
        (0..nresults).map(|_| c.i16()).collect()
    }
}

/// An Execute message: the portal and the row limit (0: all rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Execute<'a> {
    /// The portal name.
    pub portal: &'a str,
    /// Rows to return at most before PortalSuspended; 0 for no limit.
    pub max_rows: i32,
}

/// Decodes an Execute message.
pub fn decode_execute(frame: &Frame) -> Result<Execute<'_>, WireError> {
    let mut c = Cursor::new(frame.body(), "Execute");
    let portal = c.cstr()?;
    let max_rows = c.i32()?;
    Ok(Execute { portal, max_rows })
}

/// Appends an Execute message.
pub fn encode_execute(out: &mut BytesMut, portal: &str, max_rows: i32) {
    write_message(out, t::EXECUTE, |b| {
        put_cstr(b, portal);
        b.put_i32(max_rows);
    });
}

/// Appends a Bind message with these parameters (each with its own format code) and result
/// format codes.
pub fn encode_bind(
    out: &mut BytesMut,
    portal: &str,
    statement: &str,
    params: &[BindParam<'_>],
    result_formats: &[i16],
) {
    write_message(out, t::BIND, |b| {
        put_cstr(b, portal);
        put_cstr(b, statement);
        b.put_i16(params.len() as i16);
        for p in params {
            b.put_i16(i16::from(p.binary));
        }
        b.put_i16(params.len() as i16);
        for p in params {
            match p.value {
                None => b.put_i32(-1),
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.extend_from_slice(v);
                }
            }
        }
        b.put_i16(result_formats.len() as i16);
        for f in result_formats {
            b.put_i16(*f);
        }
    });
}

/// Decodes a Describe or Close message.
pub fn decode_named(frame: &Frame) -> Result<Named<'_>, WireError> {
    let what = if frame.tag() == t::CLOSE {
        "Close"
    } else {
        "Describe"
    };
    let mut c = Cursor::new(frame.body(), what);
    let target = Target::decode(c.u8()?, what)?;
    let name = c.cstr()?;
    Ok(Named { target, name })
}

/// A password-phase message: its meaning depends on what the server asked for.
pub fn decode_password(frame: &Frame) -> Result<&str, WireError> {
    Cursor::new(frame.body(), "PasswordMessage").cstr()
}

/// SASLInitialResponse: mechanism name and initial client data.
pub fn decode_sasl_initial(frame: &Frame) -> Result<(&str, &[u8]), WireError> {
    let mut c = Cursor::new(frame.body(), "SASLInitialResponse");
    let mechanism = c.cstr()?;
    let len = c.i32()?;
    let data = if len < 0 {
        &[][..]
    } else {
        c.bytes(len as usize)?
    };
    Ok((mechanism, data))
}

/// Appends a Parse message.
pub fn encode_parse(out: &mut BytesMut, name: &str, query: &str, param_types: &[u32]) {
    write_message(out, t::PARSE, |b| {
        put_cstr(b, name);
        put_cstr(b, query);
        b.put_i16(param_types.len() as i16);
        for &oid in param_types {
            b.put_u32(oid);
        }
    });
}

/// Appends a Bind message that refers to `statement` instead of the original's statement name.
pub fn encode_bind_renamed(out: &mut BytesMut, bind: &Bind<'_>, statement: &str) {
    write_message(out, t::BIND, |b| {
        put_cstr(b, bind.portal);
        put_cstr(b, statement);
        b.extend_from_slice(bind.rest);
    });
}

/// Appends a Describe (tag 'D') or Close (tag 'C') message.
pub fn encode_named(out: &mut BytesMut, tag: u8, target: Target, name: &str) {
    write_message(out, tag, |b| {
        b.put_u8(target.byte());
        put_cstr(b, name);
    });
}

/// Appends a simple Query.
pub fn encode_query(out: &mut BytesMut, sql: &str) {
    write_message(out, t::QUERY, |b| put_cstr(b, sql));
}

/// Appends a FunctionCall (the protocol's fast path, PostgreSQL docs 55.2.5): the function with
/// this OID, called with these arguments in text format (`None` = NULL), its result asked for in
/// text. The server answers FunctionCallResponse (or ErrorResponse), then ReadyForQuery; outside a
/// transaction block it runs the call in a transaction of its own, and it parses and plans nothing.
pub fn encode_function_call(out: &mut BytesMut, function: u32, args: &[Option<&str>]) {
    write_message(out, t::FUNCTION_CALL, |b| {
        b.put_u32(function);
        b.put_i16(1); // one format code for every argument: text
        b.put_i16(0);
        b.put_i16(args.len() as i16);
        for arg in args {
            match arg {
                None => b.put_i32(-1),
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.extend_from_slice(v.as_bytes());
                }
            }
        }
        b.put_i16(0); // result in text
    });
}

/// Appends a Sync.
pub fn encode_sync(out: &mut BytesMut) {
    write_message(out, t::SYNC, |_| {});
}

/// Appends a Terminate.
pub fn encode_terminate(out: &mut BytesMut) {
    write_message(out, t::TERMINATE, |_| {});
}

/// Appends a PasswordMessage (cleartext or md5 response).
pub fn encode_password(out: &mut BytesMut, password: &str) {
    write_message(out, t::PASSWORD, |b| put_cstr(b, password));
}

/// Appends a SASLInitialResponse.
pub fn encode_sasl_initial(out: &mut BytesMut, mechanism: &str, data: &[u8]) {
    write_message(out, t::PASSWORD, |b| {
        put_cstr(b, mechanism);
        b.put_i32(data.len() as i32);
        b.extend_from_slice(data);
    });
}

/// Appends a SASLResponse.
pub fn encode_sasl_response(out: &mut BytesMut, data: &[u8]) {
    write_message(out, t::PASSWORD, |b| b.extend_from_slice(data));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::split_frame;

    #[test]
    fn bind_round_trips_with_result_formats() {
        let mut out = BytesMut::new();
        let params = [
            BindParam {
                binary: true,
                value: Some(&[0, 0, 0, 7][..]),
            },
            BindParam {
                binary: false,
                value: None,
            },
            BindParam {
                binary: false,
                value: Some(&b"x"[..]),
            },
        ];
        encode_bind(&mut out, "p", "s", &params, &[1, 0]);
        let f = frame(&mut out);
        let b = decode_bind(&f).unwrap();
        assert_eq!((b.portal, b.statement), ("p", "s"));
        assert_eq!(b.parameters().unwrap().as_slice(), &params[..]);
        assert_eq!(b.result_formats().unwrap(), vec![1, 0]);
        let mut out = BytesMut::new();
        encode_execute(&mut out, "p", 5);
        let f = frame(&mut out);
        assert_eq!(
            decode_execute(&f).unwrap(),
            Execute {
                portal: "p",
                max_rows: 5
            }
        );
    }

    #[test]
    fn function_call_layout() {
        let mut out = BytesMut::new();
        encode_function_call(&mut out, 2078, &[Some("ab"), None]);
        let f = frame(&mut out);
        assert_eq!(f.tag(), t::FUNCTION_CALL);
        let mut want = Vec::new();
        want.extend_from_slice(&2078u32.to_be_bytes());
        want.extend_from_slice(&[0, 1, 0, 0, 0, 2]); // 1 format code (text), 2 arguments
        want.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        want.extend_from_slice(&(-1i32).to_be_bytes());
        want.extend_from_slice(&[0, 0]); // text result
        assert_eq!(f.body(), &want[..]);
    }

    fn frame(out: &mut BytesMut) -> Frame {
        split_frame(out, 1 << 20).unwrap().unwrap()
    }

    fn bind(formats: &[i16], values: &[Option<&[u8]>]) -> Frame {
        let mut out = BytesMut::new();
        write_message(&mut out, t::BIND, |b| {
            put_cstr(b, "");
            put_cstr(b, "s1");
            b.put_i16(formats.len() as i16);
            for f in formats {
                b.put_i16(*f);
            }
            b.put_i16(values.len() as i16);
            for v in values {
                match v {
                    Some(v) => {
                        b.put_i32(v.len() as i32);
                        b.extend_from_slice(v);
                    }
                    None => b.put_i32(-1),
                }
            }
            b.put_i16(0);
        });
        frame(&mut out)
    }

    #[test]
    fn bind_parameters_follow_the_format_codes() {
        let eight = 42i64.to_be_bytes();
        let values: [Option<&[u8]>; 3] = [Some(b"42"), None, Some(&eight)];
        let f = bind(&[0, 0, 1], &values);
        let b = decode_bind(&f).unwrap();
        let p = b.parameters().unwrap();
        assert_eq!(p.len(), 3);
        assert!(!p[0].binary && p[0].value == Some(&b"42"[..]));
        assert_eq!(p[1].value, None);
        assert!(p[2].binary && p[2].value == Some(&eight[..]));
        // No codes: all text; one code: every parameter.
        let f = bind(&[], &values[..1]);
        assert!(!decode_bind(&f).unwrap().parameters().unwrap()[0].binary);
        let f = bind(&[1], &values);
        assert!(decode_bind(&f)
            .unwrap()
            .parameters()
            .unwrap()
            .iter()
            .all(|p| p.binary));
        // Two codes for three values is malformed.
        let f = bind(&[0, 1], &values);
        assert!(decode_bind(&f).unwrap().parameters().is_err());
    }

    #[test]
    fn parse_round_trip() {
        let mut out = BytesMut::new();
        encode_parse(&mut out, "s1", "SELECT $1", &[23]);
        let f = frame(&mut out);
        let p = decode_parse(&f).unwrap();
        assert_eq!(
            p,
            Parse {
                name: "s1",
                query: "SELECT $1",
                param_types: vec![23]
            }
        );
    }

    #[test]
    fn bind_rename_keeps_the_rest() {
        let mut out = BytesMut::new();
        write_message(&mut out, t::BIND, |b| {
            put_cstr(b, "p");
            put_cstr(b, "client_name");
            b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, b'4', b'2', 0, 0]);
        });
        let f = frame(&mut out);
        let bind = decode_bind(&f).unwrap();
        let mut re = BytesMut::new();
        encode_bind_renamed(&mut re, &bind, "pgfleet_7");
        let f2 = frame(&mut re);
        let b2 = decode_bind(&f2).unwrap();
        assert_eq!(
            (b2.portal, b2.statement, b2.rest),
            ("p", "pgfleet_7", bind.rest)
        );
    }

    #[test]
    fn named_round_trip_and_bad_target() {
        let mut out = BytesMut::new();
        encode_named(&mut out, t::CLOSE, Target::Statement, "x");
        let f = frame(&mut out);
        assert_eq!(
            decode_named(&f).unwrap(),
            Named {
                target: Target::Statement,
                name: "x"
            }
        );
        let mut out = BytesMut::new();
        write_message(&mut out, t::DESCRIBE, |b| put_cstr(b, "Qx"));
        assert!(decode_named(&frame(&mut out)).is_err());
    }

    #[test]
    fn truncated_parse_is_an_error() {
        let mut out = BytesMut::new();
        write_message(&mut out, t::PARSE, |b| put_cstr(b, "s1"));
        assert!(decode_parse(&frame(&mut out)).is_err());
    }
}
