//! Tests for the SCRAM server: RFC 7677 known answer, interop with postgres-protocol's client,
//! and every rejection path.

use super::*;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

const RFC_CLIENT_FIRST: &[u8] = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_verifier(password: &[u8]) -> ScramVerifier {
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    ScramVerifier::from_password(password, &salt, 4096)
}

/// A server that has already answered the RFC client-first-message.
fn rfc_server_after_first(password: &[u8]) -> ScramServer {
    let mut server = ScramServer::with_server_nonce(rfc_verifier(password), RFC_SERVER_NONCE);
    let first = server
        .client_first(SCRAM_SHA_256, RFC_CLIENT_FIRST)
        .unwrap();
    assert_eq!(first, RFC_SERVER_FIRST);
    server
}

#[test]
fn rfc7677_known_answer() {
    let mut server = rfc_server_after_first(b"pencil");
    assert!(!server.is_authenticated());
    let fin = server.client_final(RFC_CLIENT_FINAL).unwrap();
    assert_eq!(
        String::from_utf8(fin).unwrap(),
        String::from_utf8(RFC_SERVER_FINAL.to_vec()).unwrap()
    );
    assert!(server.is_authenticated());
}

#[test]
fn rfc7677_wrong_password_is_28p01() {
    let mut server = rfc_server_after_first(b"pencils");
    let err = server.client_final(RFC_CLIENT_FINAL).unwrap_err();
    assert_eq!(err, AuthError::PasswordMismatch);
    assert_eq!(err.sqlstate(), "28P01");
    assert_eq!(
        err.client_message("user"),
        "password authentication failed for user \"user\""
    );
    assert!(!server.is_authenticated());
}

/// Full exchange with postgres-protocol's client (what tokio-postgres uses).
fn interop(
    client_password: &[u8],
    verifier: ScramVerifier,
    cb: ChannelBinding,
) -> Result<(), AuthError> {
    let mut client = ScramSha256::new(client_password, cb);
    let mut server = ScramServer::new(verifier);
    let server_first = server.client_first(SCRAM_SHA_256, client.message())?;
    client.update(&server_first).unwrap();
    let server_final = server.client_final(client.message())?;
    client
        .finish(&server_final)
        .expect("client accepts the server signature");
    assert!(server.is_authenticated());
    Ok(())
}

#[test]
fn interop_with_postgres_protocol_client() {
    let verifier =
        ScramVerifier::parse(&postgres_protocol::password::scram_sha_256(b"secret")).unwrap();
    interop(b"secret", verifier.clone(), ChannelBinding::unsupported()).unwrap();
    // `unrequested` makes the client send the `y,,` header and echo `eSws`.
    interop(b"secret", verifier, ChannelBinding::unrequested()).unwrap();
    interop(
        b"secret",
        ScramVerifier::generate(b"secret"),
        ChannelBinding::unsupported(),
    )
    .unwrap();
}

#[test]
fn interop_wrong_password_is_28p01() {
    let verifier = ScramVerifier::generate(b"secret");
    let err = interop(b"Secret", verifier, ChannelBinding::unsupported()).unwrap_err();
    assert_eq!(err, AuthError::PasswordMismatch);
    assert_eq!(err.sqlstate(), "28P01");
}

#[test]
fn mock_verifier_never_authenticates() {
    for password in [&b"secret"[..], b"", b"pencil"] {
        let err = interop(
            password,
            ScramVerifier::mock("ghost", b"k"),
            ChannelBinding::unsupported(),
        )
        .unwrap_err();
        assert_eq!(err, AuthError::PasswordMismatch);
    }
}

#[test]
fn server_nonce_is_random_and_extends_client_nonce() {
    let verifier = rfc_verifier(b"pencil");
    let a = ScramServer::new(verifier.clone())
        .client_first(SCRAM_SHA_256, RFC_CLIENT_FIRST)
        .unwrap();
    let b = ScramServer::new(verifier)
        .client_first(SCRAM_SHA_256, RFC_CLIENT_FIRST)
        .unwrap();
    assert_ne!(a, b);
    let nonce = a.split(|&c| c == b',').next().unwrap();
    assert!(nonce.starts_with(b"r=rOprNGfwEbeRWgbNEkqO"));
    assert_eq!(nonce.len(), 2 + 20 + 24); // client nonce + base64 of 18 bytes
}

#[test]
fn malformed_client_first_is_08p01() {
    let cases: &[(&[u8], AuthError)] = &[
        (
            b"",
            AuthError::MalformedMessage("unexpected channel-binding flag in client-first-message"),
        ),
        (
            b"x,,n=,r=abc",
            AuthError::MalformedMessage("unexpected channel-binding flag in client-first-message"),
        ),
        (
            b"p=tls-server-end-point,,n=,r=abc",
            AuthError::ChannelBindingNotSupported,
        ),
        (
            b"n",
            AuthError::MalformedMessage("comma expected after the channel-binding flag"),
        ),
        (
            b"n,a=admin,n=,r=abc",
            AuthError::UnsupportedFeature("authorization identity"),
        ),
        (
            b"n,x,n=,r=abc",
            AuthError::MalformedMessage("unexpected attribute in client-first-message"),
        ),
        (
            b"n,,m=ext,n=,r=abc",
            AuthError::UnsupportedFeature("mandatory extension (m=)"),
        ),
        (
            b"n,,r=abc",
            AuthError::MalformedMessage("user name attribute expected in client-first-message"),
        ),
        (
            b"n,,n=user",
            AuthError::MalformedMessage("nonce attribute expected in client-first-message"),
        ),
        (
            b"n,,n=user,x=abc",
            AuthError::MalformedMessage("nonce attribute expected in client-first-message"),
        ),
        (
            b"n,,n=user,r=",
            AuthError::MalformedMessage("nonce in client-first-message is not printable"),
        ),
        (
            b"n,,n=user,r=a b",
            AuthError::MalformedMessage("nonce in client-first-message is not printable"),
        ),
        (
            b"n,,n=user,r=abc,",
            AuthError::MalformedMessage("attribute expected in SCRAM message"),
        ),
        (
            b"n,,n=user,r=abc\0",
            AuthError::MalformedMessage("SCRAM message contains a NUL byte"),
        ),
    ];
    for (message, expected) in cases {
        let mut server = ScramServer::new(rfc_verifier(b"pencil"));
        let err = server.client_first(SCRAM_SHA_256, message).unwrap_err();
        assert_eq!(&err, expected, "{}", String::from_utf8_lossy(message));
        assert_eq!(err.sqlstate(), "08P01");
    }
}

#[test]
fn extensions_and_y_flag_are_accepted() {
    let mut server = ScramServer::new(rfc_verifier(b"pencil"));
    assert!(server
        .client_first(SCRAM_SHA_256, b"y,,n=,r=abc,x=ext")
        .is_ok());
}

#[test]
fn wrong_mechanism_is_08p01() {
    for mechanism in ["SCRAM-SHA-256-PLUS", "PLAIN", ""] {
        let mut server = ScramServer::new(rfc_verifier(b"pencil"));
        let err = server
            .client_first(mechanism, RFC_CLIENT_FIRST)
            .unwrap_err();
        assert_eq!(err, AuthError::UnsupportedMechanism);
        assert_eq!(err.sqlstate(), "08P01");
    }
}

#[test]
fn malformed_client_final_is_08p01() {
    let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    let cases: Vec<(String, AuthError)> = vec![
        (
            format!("c=biws,r={nonce}"),
            AuthError::MalformedMessage(
                "proof attribute expected at the end of client-final-message",
            ),
        ),
        (
            format!("c=biws,r={nonce},p=%%%"),
            AuthError::MalformedMessage("malformed proof in client-final-message"),
        ),
        (
            format!("c=biws,r={nonce},p=AAAA"),
            AuthError::MalformedMessage("malformed proof in client-final-message"),
        ),
        (
            format!("c=biws,r={nonce},p={proof},x=1"),
            AuthError::MalformedMessage("malformed proof in client-final-message"),
        ),
        (
            format!("r={nonce},p={proof}"),
            AuthError::MalformedMessage(
                "channel-binding attribute expected in client-final-message",
            ),
        ),
        (
            format!("c=biws,p={proof}"),
            AuthError::MalformedMessage("nonce attribute expected in client-final-message"),
        ),
        (
            format!("c=biws,r={nonce},,p={proof}"),
            AuthError::MalformedMessage("attribute expected in SCRAM message"),
        ),
        (
            format!("c=eSws,r={nonce},p={proof}"),
            AuthError::ChannelBindingMismatch,
        ),
        (
            format!("c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r={nonce},p={proof}"),
            AuthError::ChannelBindingMismatch,
        ),
        (
            format!("c=biws,r={nonce}x,p={proof}"),
            AuthError::NonceMismatch,
        ),
        (
            format!("c=biws,r=rOprNGfwEbeRWgbNEkqO,p={proof}"),
            AuthError::NonceMismatch,
        ),
    ];
    for (message, expected) in cases {
        let mut server = rfc_server_after_first(b"pencil");
        let err = server.client_final(message.as_bytes()).unwrap_err();
        assert_eq!(err, expected, "{message}");
        assert_eq!(err.sqlstate(), "08P01");
    }
}

#[test]
fn messages_out_of_order_are_08p01() {
    let mut server = ScramServer::new(rfc_verifier(b"pencil"));
    let err = server.client_final(RFC_CLIENT_FINAL).unwrap_err();
    assert!(matches!(err, AuthError::UnexpectedMessage(_)));
    assert_eq!(err.sqlstate(), "08P01");

    let mut server = rfc_server_after_first(b"pencil");
    let err = server
        .client_first(SCRAM_SHA_256, RFC_CLIENT_FIRST)
        .unwrap_err();
    assert!(matches!(err, AuthError::UnexpectedMessage(_)));

    // After a success, or a failure, nothing more is accepted.
    let mut server = rfc_server_after_first(b"pencil");
    server.client_final(RFC_CLIENT_FINAL).unwrap();
    assert!(matches!(
        server.client_final(RFC_CLIENT_FINAL),
        Err(AuthError::UnexpectedMessage(_))
    ));
    let mut server = rfc_server_after_first(b"pencils");
    assert!(server.client_final(RFC_CLIENT_FINAL).is_err());
    assert!(matches!(
        server.client_final(RFC_CLIENT_FINAL),
        Err(AuthError::UnexpectedMessage(_))
    ));
}

#[test]
fn errors_never_contain_secrets() {
    let verifier = rfc_verifier(b"pencil");
    let secrets = [
        "pencil".to_string(),
        B64.encode(verifier.stored_key),
        B64.encode(verifier.server_key),
    ];
    let mut server = rfc_server_after_first(b"pencils");
    let err = server.client_final(RFC_CLIENT_FINAL).unwrap_err();
    for text in [
        err.to_string(),
        format!("{err:?}"),
        err.client_message("u"),
        format!("{server:?}"),
    ] {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{text}");
        }
    }
}
