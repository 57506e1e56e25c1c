//! Reading a client request as one statement that may run across shards: a simple Query, or
//! the extended-protocol sequence `[Parse] Bind [Describe portal] Execute Sync` (Flush ignored).
//! Pure: the session supplies the frames and its statement tables.

use pgfleet_wire::frontend::{
    decode_bind, decode_execute, decode_named, decode_parse, decode_query, BindValues, Target,
};
use pgfleet_wire::tag::frontend as t;
use pgfleet_wire::Frame;

use crate::ProxyError;

/// A request of one statement, whole.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    /// The statement text.
    pub sql: String,
    /// How it came.
    pub kind: Kind,
}

/// Simple or extended protocol.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// One Query message (with one statement, checked by the caller).
    Simple,
    /// Parse/Bind/Execute.
    Extended(Extended),
}

/// The extended-protocol parts of a request.
#[derive(Clone, Debug)]
pub(crate) struct Extended {
    /// The request's own Parse: the statement name and its declared parameter types.
    pub parse: Option<String>,
    /// Declared parameter types (from the Parse, or the statement prepared earlier).
    pub param_types: Vec<u32>,
    /// The Bind message.
    pub bind: Frame,
    /// A Describe of the portal came before the Execute.
    pub describe: bool,
}

impl Extended {
    /// The bound parameter values.
    pub(crate) fn params(&self) -> Result<BindValues<'_>, ProxyError> {
        Ok(decode_bind(&self.bind)?.parameters()?)
    }

    /// The result-column format codes of the Bind.
    pub(crate) fn result_formats(&self) -> Result<Vec<i16>, ProxyError> {
        Ok(decode_bind(&self.bind)?.result_formats()?)
    }
}

/// The text and declared parameter types of a statement the session prepared earlier.
pub(crate) type Lookup<'a> = dyn Fn(&str) -> Option<(String, Vec<u32>)> + 'a;

/// Reads `frames` (the request up to its end) as one statement; `None` when the request has
/// another shape (several Binds or Executes, Close, a named portal, a row limit, …): the
/// session then handles it the ordinary way. `lookup` gives the text and parameter types of a
/// statement prepared earlier (`""`: the unnamed one).
pub(crate) fn read(frames: &[Frame], lookup: &Lookup<'_>) -> Result<Option<Request>, ProxyError> {
    let Some(first) = frames.first() else {
        return Ok(None);
    };
    if first.tag() == t::QUERY {
        if frames.len() != 1 {
            return Ok(None);
        }
        return Ok(Some(Request {
            sql: decode_query(first)?.to_owned(),
            kind: Kind::Simple,
        }));
    }
    let mut parsed: Option<(String, String, Vec<u32>)> = None;
    let mut bound: Option<(Frame, String, Vec<u32>)> = None;
    let mut describe = false;
    let mut executed = false;
    let mut synced = false;
    for f in frames {
        if synced {
            return Ok(None);
        }
        match f.tag() {
            t::FLUSH => {}
            t::PARSE if parsed.is_none() && bound.is_none() => {
                let p = decode_parse(f)?;
                parsed = Some((p.name.to_owned(), p.query.to_owned(), p.param_types));
            }
            t::BIND if bound.is_none() => {
                let b = decode_bind(f)?;
                if !b.portal.is_empty() {
                    return Ok(None);
                }
                let (sql, types) = match &parsed {
                    Some((name, sql, types)) if name == b.statement => (sql.clone(), types.clone()),
                    _ => match lookup(b.statement) {
                        Some(found) => found,
                        None => return Ok(None),
                    },
                };
                bound = Some((f.clone(), sql, types));
            }
            t::DESCRIBE if bound.is_some() && !executed && !describe => {
                let d = decode_named(f)?;
                if d.target != Target::Portal || !d.name.is_empty() {
                    return Ok(None);
                }
                describe = true;
            }
            t::EXECUTE if bound.is_some() && !executed => {
                let e = decode_execute(f)?;
                if !e.portal.is_empty() || e.max_rows != 0 {
                    return Ok(None);
                }
                executed = true;
            }
            t::SYNC if executed => synced = true,
            _ => return Ok(None),
        }
    }
    let Some((bind, sql, param_types)) = bound.filter(|_| synced) else {
        return Ok(None);
    };
    Ok(Some(Request {
        sql,
        kind: Kind::Extended(Extended {
            parse: parsed.map(|(name, _, _)| name),
            param_types,
            bind,
            describe,
        }),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::BytesMut;
    use pgfleet_wire::frame::split_frame;
    use pgfleet_wire::frontend::{
        encode_bind, encode_execute, encode_named, encode_parse, encode_query, encode_sync,
        BindParam,
    };

    fn frames(f: impl FnOnce(&mut BytesMut)) -> Vec<Frame> {
        let mut b = BytesMut::new();
        f(&mut b);
        let mut out = Vec::new();
        while let Some(frame) = split_frame(&mut b, 1 << 20).unwrap() {
            out.push(frame);
        }
        out
    }

    fn none(_: &str) -> Option<(String, Vec<u32>)> {
        None
    }

    #[test]
    fn simple_and_extended_requests_are_read() {
        let q = frames(|b| encode_query(b, "SELECT 1"));
        let r = read(&q, &none).unwrap().unwrap();
        assert_eq!(r.sql, "SELECT 1");
        let x = frames(|b| {
            encode_parse(b, "", "SELECT $1", &[20]);
            let v = 7i64.to_be_bytes();
            let p = [BindParam {
                binary: true,
                value: Some(&v[..]),
            }];
            encode_bind(b, "", "", &p, &[1]);
            encode_named(b, t::DESCRIBE, Target::Portal, "");
            encode_execute(b, "", 0);
            encode_sync(b);
        });
        let r = read(&x, &none).unwrap().unwrap();
        let Kind::Extended(e) = r.kind else { panic!() };
        assert_eq!(e.parse.as_deref(), Some(""));
        assert_eq!(e.param_types, vec![20]);
        assert!(e.describe);
        assert_eq!(e.result_formats().unwrap(), vec![1]);
    }

    #[test]
    fn prepared_statements_are_looked_up_and_odd_shapes_left_alone() {
        let x = frames(|b| {
            encode_bind(b, "", "s1", &[], &[]);
            encode_execute(b, "", 0);
            encode_sync(b);
        });
        let lookup = |n: &str| (n == "s1").then(|| ("SELECT 2".to_owned(), vec![]));
        assert_eq!(read(&x, &lookup).unwrap().unwrap().sql, "SELECT 2");
        assert!(read(&x, &none).unwrap().is_none());
        let limited = frames(|b| {
            encode_bind(b, "", "s1", &[], &[]);
            encode_execute(b, "", 10);
            encode_sync(b);
        });
        assert!(read(&limited, &lookup).unwrap().is_none());
        let two = frames(|b| {
            encode_bind(b, "", "s1", &[], &[]);
            encode_execute(b, "", 0);
            encode_bind(b, "", "s1", &[], &[]);
            encode_execute(b, "", 0);
            encode_sync(b);
        });
        assert!(read(&two, &lookup).unwrap().is_none());
    }
}
