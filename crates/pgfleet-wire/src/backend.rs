//! Server → client messages: typed views for the ones the proxy inspects, encoders for the ones it
//! sends itself (PostgreSQL docs 55.7; error fields: 55.8).

use bytes::{BufMut, BytesMut};

use crate::cursor::Cursor;
use crate::frame::{put_cstr, write_message, Frame};
use crate::tag::backend as t;
use crate::WireError;

/// Transaction status carried by ReadyForQuery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// 'I': not in a transaction block.
    Idle,
    /// 'T': in a transaction block.
    InTransaction,
    /// 'E': in a failed transaction block.
    Failed,
}

impl TxStatus {
    /// The status byte.
    pub fn byte(self) -> u8 {
        match self {
            TxStatus::Idle => b'I',
            TxStatus::InTransaction => b'T',
            TxStatus::Failed => b'E',
        }
    }
}

/// Decodes the status byte of a ReadyForQuery body.
pub fn decode_ready_for_query(body: &[u8]) -> Result<TxStatus, WireError> {
    match body.first() {
        Some(b'I') => Ok(TxStatus::Idle),
        Some(b'T') => Ok(TxStatus::InTransaction),
        Some(b'E') => Ok(TxStatus::Failed),
        _ => Err(WireError::Truncated("ReadyForQuery")),
    }
}

/// The command tag of a CommandComplete body (e.g. "SELECT 1", "COMMIT").
pub fn decode_command_complete(body: &[u8]) -> Result<&str, WireError> {
    Cursor::new(body, "CommandComplete").cstr()
}

/// Name and value of a ParameterStatus body.
pub fn decode_parameter_status(body: &[u8]) -> Result<(&str, &str), WireError> {
    let mut c = Cursor::new(body, "ParameterStatus");
    Ok((c.cstr()?, c.cstr()?))
}

/// Process id and secret of a BackendKeyData body.
pub fn decode_backend_key_data(body: &[u8]) -> Result<(i32, i32), WireError> {
    let mut c = Cursor::new(body, "BackendKeyData");
    Ok((c.i32()?, c.i32()?))
}

/// What an Authentication message asks for (55.7, "AuthenticationOk" and following).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthRequest {
    /// Authentication succeeded.
    Ok,
    /// Send the password in clear text.
    Cleartext,
    /// Send an md5 response with this salt.
    Md5([u8; 4]),
    /// Start SASL with one of these mechanisms.
    Sasl(Vec<String>),
    /// SASL challenge data.
    SaslContinue(Vec<u8>),
    /// SASL outcome data (server signature).
    SaslFinal(Vec<u8>),
    /// Any other method (Kerberos, GSS, SSPI…), by its code.
    Unsupported(i32),
}

/// Decodes an Authentication message body.
pub fn decode_auth(body: &[u8]) -> Result<AuthRequest, WireError> {
    let mut c = Cursor::new(body, "Authentication");
    Ok(match c.i32()? {
        0 => AuthRequest::Ok,
        3 => AuthRequest::Cleartext,
        5 => {
            let s = c.bytes(4)?;
            AuthRequest::Md5([s[0], s[1], s[2], s[3]])
        }
        10 => {
            let mut mechs = Vec::new();
            loop {
                let m = c.cstr()?;
                if m.is_empty() {
                    break;
                }
                mechs.push(m.to_owned());
            }
            AuthRequest::Sasl(mechs)
        }
        11 => AuthRequest::SaslContinue(c.rest().to_vec()),
        12 => AuthRequest::SaslFinal(c.rest().to_vec()),
        other => AuthRequest::Unsupported(other),
    })
}

/// The fields of an ErrorResponse or NoticeResponse, in wire order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ErrorFields {
    /// (field code, value) pairs, e.g. (b'C', "42P01").
    pub fields: Vec<(u8, String)>,
}

impl ErrorFields {
    /// A new error with severity (localized and not), SQLSTATE and primary message.
    pub fn new(severity: &str, code: &str, message: impl Into<String>) -> ErrorFields {
        ErrorFields {
            fields: vec![
                (b'S', severity.to_owned()),
                (b'V', severity.to_owned()),
                (b'C', code.to_owned()),
                (b'M', message.into()),
            ],
        }
    }

    /// Adds a field (e.g. b'D' detail, b'H' hint).
    pub fn with(mut self, code: u8, value: impl Into<String>) -> ErrorFields {
        self.fields.push((code, value.into()));
        self
    }

    /// The value of one field.
    pub fn get(&self, code: u8) -> Option<&str> {
        self.fields
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_str())
    }

    /// The SQLSTATE (field 'C').
    pub fn code(&self) -> Option<&str> {
        self.get(b'C')
    }

    /// The severity (field 'V', falling back to the localized 'S').
    pub fn severity(&self) -> Option<&str> {
        self.get(b'V').or_else(|| self.get(b'S'))
    }

    /// Replaces the severity fields (used to turn a server's FATAL into an ERROR for a client whose
    /// session survives the loss of that server connection).
    pub fn set_severity(&mut self, severity: &str) {
        for (c, v) in &mut self.fields {
            if *c == b'S' || *c == b'V' {
                *v = severity.to_owned();
            }
        }
    }

    /// Decodes an ErrorResponse or NoticeResponse body.
    pub fn decode(body: &[u8]) -> Result<ErrorFields, WireError> {
        let mut c = Cursor::new(body, "ErrorResponse");
        let mut fields = Vec::new();
        loop {
            let code = c.u8()?;
            if code == 0 {
                break;
            }
            fields.push((code, c.cstr()?.to_owned()));
        }
        Ok(ErrorFields { fields })
    }

    /// Appends this as an ErrorResponse ('E') or NoticeResponse ('N').
    pub fn encode(&self, out: &mut BytesMut, tag: u8) {
        write_message(out, tag, |b| {
            for (code, value) in &self.fields {
                b.put_u8(*code);
                put_cstr(b, value);
            }
            b.put_u8(0);
        });
    }
}

/// Appends an ErrorResponse with severity, SQLSTATE and message.
pub fn encode_error(out: &mut BytesMut, severity: &str, code: &str, message: &str) {
    ErrorFields::new(severity, code, message).encode(out, t::ERROR_RESPONSE);
}

/// Appends a ReadyForQuery.
pub fn encode_ready_for_query(out: &mut BytesMut, status: TxStatus) {
    write_message(out, t::READY_FOR_QUERY, |b| b.put_u8(status.byte()));
}

/// Appends a ParameterStatus.
pub fn encode_parameter_status(out: &mut BytesMut, name: &str, value: &str) {
    write_message(out, t::PARAMETER_STATUS, |b| {
        put_cstr(b, name);
        put_cstr(b, value);
    });
}

/// Appends a BackendKeyData.
pub fn encode_backend_key_data(out: &mut BytesMut, pid: i32, secret: i32) {
    write_message(out, t::BACKEND_KEY_DATA, |b| {
        b.put_i32(pid);
        b.put_i32(secret);
    });
}

/// Appends an Authentication message with a method code and extra data.
pub fn encode_auth(out: &mut BytesMut, code: i32, data: &[u8]) {
    write_message(out, t::AUTHENTICATION, |b| {
        b.put_i32(code);
        b.extend_from_slice(data);
    });
}

/// Appends AuthenticationSASL offering SCRAM-SHA-256.
pub fn encode_auth_sasl_scram(out: &mut BytesMut) {
    encode_auth(out, 10, b"SCRAM-SHA-256\0\0");
}

/// Appends a RowDescription whose columns are all `text` in text format.
pub fn encode_text_row_description(out: &mut BytesMut, columns: &[&str]) {
    write_message(out, t::ROW_DESCRIPTION, |b| {
        b.put_i16(columns.len() as i16);
        for name in columns {
            put_cstr(b, name);
            b.put_i32(0); // table oid
            b.put_i16(0); // column number
            b.put_u32(25); // type oid: text
            b.put_i16(-1); // type size
            b.put_i32(-1); // type modifier
            b.put_i16(0); // format: text
        }
    });
}

/// Appends a DataRow of text values (None = NULL).
pub fn encode_data_row(out: &mut BytesMut, values: &[Option<&str>]) {
    write_message(out, t::DATA_ROW, |b| {
        b.put_i16(values.len() as i16);
        for v in values {
            match v {
                Some(s) => {
                    b.put_i32(s.len() as i32);
                    b.extend_from_slice(s.as_bytes());
                }
                None => b.put_i32(-1),
            }
        }
    });
}

/// Appends a CommandComplete.
pub fn encode_command_complete(out: &mut BytesMut, tag: &str) {
    write_message(out, t::COMMAND_COMPLETE, |b| put_cstr(b, tag));
}

/// Appends a message with an empty body (ParseComplete, BindComplete, CloseComplete, NoData,
/// EmptyQueryResponse).
pub fn encode_empty(out: &mut BytesMut, tag: u8) {
    write_message(out, tag, |_| {});
}

/// Decodes a whole frame as an ErrorResponse (convenience for callers holding a [`Frame`]).
pub fn decode_error_frame(frame: &Frame) -> Result<ErrorFields, WireError> {
    ErrorFields::decode(frame.body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::split_frame;

    #[test]
    fn error_round_trip_and_severity_change() {
        let mut out = BytesMut::new();
        let mut e = ErrorFields::new("FATAL", "57P01", "terminating connection");
        e.set_severity("ERROR");
        e.encode(&mut out, t::ERROR_RESPONSE);
        let f = split_frame(&mut out, 1 << 20).unwrap().unwrap();
        let d = decode_error_frame(&f).unwrap();
        assert_eq!(d.severity(), Some("ERROR"));
        assert_eq!(d.code(), Some("57P01"));
    }

    #[test]
    fn auth_requests() {
        assert_eq!(
            decode_auth(&[0, 0, 0, 5, 1, 2, 3, 4]).unwrap(),
            AuthRequest::Md5([1, 2, 3, 4])
        );
        assert_eq!(
            decode_auth(b"\0\0\0\x0aSCRAM-SHA-256\0\0").unwrap(),
            AuthRequest::Sasl(vec!["SCRAM-SHA-256".into()])
        );
        assert!(decode_auth(&[0, 0]).is_err());
    }

    #[test]
    fn ready_for_query_status() {
        assert_eq!(
            decode_ready_for_query(b"T").unwrap(),
            TxStatus::InTransaction
        );
        assert!(decode_ready_for_query(b"").is_err());
    }
}
