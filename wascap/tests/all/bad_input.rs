//! Each way a module or token can be wrong gets its own error, and none panics.

use crate::{Signer, named, raw_token, sample_module, with_token};
use serde_json::json;
use wascap::{Actor, ClaimsError, KeyRole, TokenPart, VerifyOptions};

fn verify(module: &[u8]) -> Result<(), ClaimsError> {
    wascap::verify_module(module, &VerifyOptions::new()).map(|_| ())
}

#[test]
fn a_signed_module_verifies() {
    let signer = Signer::new();
    let signed = signer.sign(&sample_module(), named("ok"));
    let verified = wascap::verify_module(&signed, &VerifyOptions::new()).unwrap();
    assert_eq!(verified.subject, signer.module.public_key());
    // Re-signing replaces the claims instead of stacking a second token.
    let again = Signer::new().sign(&signed, named("again"));
    let verified = wascap::verify_module(&again, &VerifyOptions::new()).unwrap();
    assert_eq!(
        verified.metadata.as_ref().unwrap().name.as_deref(),
        Some("again")
    );
}

#[test]
fn non_wasm_file_is_not_wasm() {
    let err = verify(b"#!/bin/sh\necho hi\n").unwrap_err();
    assert!(matches!(err, ClaimsError::NotWasm), "{err}");
    assert!(err.to_string().contains("not a WebAssembly module"));
    assert!(matches!(verify(b""), Err(ClaimsError::NotWasm)));
}

#[test]
fn truncated_module_is_malformed() {
    let signed = Signer::new().sign(&sample_module(), named("t"));
    let err = verify(&signed[..signed.len() / 2]).unwrap_err();
    assert!(matches!(err, ClaimsError::MalformedWasm(_)), "{err}");
    assert!(
        err.to_string().starts_with("malformed WebAssembly module"),
        "{err}"
    );
}

#[test]
fn module_changed_after_signing_is_a_hash_mismatch() {
    let mut signed = Signer::new().sign(&sample_module(), named("t"));
    let at = signed
        .windows(11)
        .position(|w| w == b"hello, weft")
        .unwrap();
    signed[at] = b'j';
    let err = verify(&signed).unwrap_err();
    assert!(matches!(err, ClaimsError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("changed after signing"), "{err}");
}

#[test]
fn unsigned_module_says_how_to_sign() {
    let err = verify(&sample_module()).unwrap_err();
    assert!(matches!(err, ClaimsError::Unsigned));
    assert!(err.to_string().contains("weft claims sign"));
}

#[test]
fn token_resigned_by_another_key_fails_the_signature() {
    let signer = Signer::new();
    let signed = signer.sign(&sample_module(), named("t"));
    let token = wascap::extract_token(&signed).unwrap().unwrap();
    let (header_and_claims, _) = token.rsplit_once('.').unwrap();
    let intruder = KeyRole::Account.generate().unwrap();
    let forged_sig = intruder.sign(header_and_claims.as_bytes()).unwrap();
    let forged = format!(
        "{header_and_claims}.{}",
        data_encoding::BASE64URL_NOPAD.encode(&forged_sig)
    );
    let err = verify(&with_token(&signed, forged.as_bytes())).unwrap_err();
    assert!(matches!(err, ClaimsError::BadSignature { .. }), "{err}");
    assert!(err.to_string().contains(&signer.account.public_key()));
}

#[test]
fn claims_edited_without_resigning_fail_the_signature() {
    let signer = Signer::new();
    let signed = signer.sign(&sample_module(), named("t"));
    let token = wascap::extract_token(&signed).unwrap().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(parts[1].as_bytes())
            .unwrap(),
    )
    .unwrap();
    claims["wascap"]["caps"] = json!(["wasmcloud:keyvalue"]);
    let body = data_encoding::BASE64URL_NOPAD.encode(claims.to_string().as_bytes());
    let edited = format!("{}.{body}.{}", parts[0], parts[2]);
    let err = verify(&with_token(&signed, edited.as_bytes())).unwrap_err();
    assert!(matches!(err, ClaimsError::BadSignature { .. }), "{err}");
}

#[test]
fn issuer_not_on_the_allow_list_is_refused() {
    let signer = Signer::new();
    let signed = signer.sign(&sample_module(), named("t"));
    let trusted = KeyRole::Account.generate().unwrap().public_key();
    let err = wascap::verify_module(
        &signed,
        &VerifyOptions::new().allow_issuers([trusted.clone()]),
    )
    .unwrap_err();
    assert!(matches!(err, ClaimsError::IssuerNotAllowed { .. }), "{err}");
    let opts = VerifyOptions::new().allow_issuers([trusted, signer.account.public_key()]);
    assert!(wascap::verify_module(&signed, &opts).is_ok());
}

#[test]
fn expired_token_is_refused() {
    let signer = Signer::new();
    let mut claims = signer.claims(named("t"));
    let now = wascap::unix_now();
    claims.expires = Some(now - 3600);
    let signed = wascap::embed_claims(&sample_module(), &claims, &signer.account).unwrap();
    let err = verify(&signed).unwrap_err();
    assert!(matches!(err, ClaimsError::Expired { .. }), "{err}");
    assert!(err.to_string().starts_with("token expired at "), "{err}");
    // It was fine while it lasted.
    let then = VerifyOptions::new().at(now - 7200);
    assert!(wascap::verify_module(&signed, &then).is_ok());
}

#[test]
fn not_yet_valid_token_is_refused() {
    let signer = Signer::new();
    let mut claims = signer.claims(named("t"));
    let now = wascap::unix_now();
    claims.not_before = Some(now + 3600);
    let signed = wascap::embed_claims(&sample_module(), &claims, &signer.account).unwrap();
    let err = verify(&signed).unwrap_err();
    assert!(matches!(err, ClaimsError::NotYetValid { .. }), "{err}");
    // Within the clock-skew allowance it is accepted.
    let later = VerifyOptions::new().at(now + 3600 - wascap::DEFAULT_CLOCK_SKEW_SECS);
    assert!(wascap::verify_module(&signed, &later).is_ok());
}

#[test]
fn malformed_tokens_name_the_part() {
    let signed = Signer::new().sign(&sample_module(), named("t"));
    let good = wascap::extract_token(&signed).unwrap().unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    type Expect = fn(&ClaimsError) -> bool;
    let cases: Vec<(String, Expect)> = vec![
        ("only.two".into(), |e| {
            matches!(e, ClaimsError::TokenShape { parts: 2 })
        }),
        (format!("{}.{}", good, "x"), |e| {
            matches!(e, ClaimsError::TokenShape { parts: 4 })
        }),
        (format!("!!!.{}.{}", parts[1], parts[2]), |e| {
            matches!(
                e,
                ClaimsError::Base64 {
                    part: TokenPart::Header,
                    ..
                }
            )
        }),
        (format!("{}.{}~.{}", parts[0], parts[1], parts[2]), |e| {
            matches!(
                e,
                ClaimsError::Base64 {
                    part: TokenPart::Claims,
                    ..
                }
            )
        }),
        (format!("{}.{}.%%", parts[0], parts[1]), |e| {
            matches!(
                e,
                ClaimsError::Base64 {
                    part: TokenPart::Signature,
                    ..
                }
            )
        }),
        (format!("{}.e30.{}", parts[0], parts[2]), |e| {
            // `{}`: valid JSON, but no jti/iat/iss/sub
            matches!(
                e,
                ClaimsError::Json {
                    part: TokenPart::Claims,
                    ..
                }
            )
        }),
        (format!("bm90IGpzb24.{}.{}", parts[1], parts[2]), |e| {
            matches!(
                e,
                ClaimsError::Json {
                    part: TokenPart::Header,
                    ..
                }
            )
        }),
    ];
    for (token, expected) in cases {
        let err = verify(&with_token(&signed, token.as_bytes())).unwrap_err();
        assert!(expected(&err), "token {token:?} gave {err:?}");
        assert!(err.to_string().starts_with("malformed token"), "{err}");
    }
    let err = verify(&with_token(&signed, b"\xff\xfe")).unwrap_err();
    assert!(matches!(err, ClaimsError::TokenNotText), "{err}");
}

#[test]
fn wrong_header_algorithm_or_type_is_refused() {
    let signer = Signer::new();
    let claims = json!({"jti":"x","iat":1,"iss":signer.account.public_key(),
        "sub":signer.module.public_key(),"wascap":{"hash":""},"wascap_revision":3});
    for (header, want_alg) in [
        (r#"{"typ":"jwt","alg":"HS256"}"#, true),
        (r#"{"typ":"jwt","alg":"EdDSA"}"#, true),
        (r#"{"typ":"JWS","alg":"Ed25519"}"#, false),
    ] {
        let token = raw_token(header, &claims, &signer.account);
        let err = verify(&with_token(&sample_module(), token.as_bytes())).unwrap_err();
        if want_alg {
            assert!(matches!(err, ClaimsError::WrongAlgorithm { .. }), "{err}");
            assert!(err.to_string().contains("\"Ed25519\""), "{err}");
        } else {
            assert!(matches!(err, ClaimsError::WrongTokenType { .. }), "{err}");
        }
    }
}

#[test]
fn key_roles_are_enforced_when_verifying() {
    let account = KeyRole::Account.generate().unwrap();
    let module = KeyRole::Module.generate().unwrap();
    let header = r#"{"typ":"jwt","alg":"Ed25519"}"#;
    let hash = wascap::module_hash(&sample_module()).unwrap();
    let claims = |iss: String, sub: String| json!({"jti":"x","iat":1,"iss":iss,"sub":sub,"wascap":{"hash":hash},"wascap_revision":3});

    // A module key signing for itself: the issuer is not an account.
    let token = raw_token(
        header,
        &claims(module.public_key(), module.public_key()),
        &module,
    );
    let err = verify(&with_token(&sample_module(), token.as_bytes())).unwrap_err();
    assert!(
        matches!(err, ClaimsError::WrongKeyRole { what: "issuer", .. }),
        "{err}"
    );

    // An account as the subject of an actor token.
    let token = raw_token(
        header,
        &claims(account.public_key(), account.public_key()),
        &account,
    );
    let err = verify(&with_token(&sample_module(), token.as_bytes())).unwrap_err();
    assert!(
        matches!(
            err,
            ClaimsError::WrongKeyRole {
                what: "subject",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("subject must be a module key (M…)"),
        "{err}"
    );

    // The same token, with the right roles, verifies: the refusals above were about roles.
    let token = raw_token(
        header,
        &claims(account.public_key(), module.public_key()),
        &account,
    );
    verify(&with_token(&sample_module(), token.as_bytes())).unwrap();
}

#[test]
fn module_seed_as_issuer_is_refused_when_signing() {
    let module_key = KeyRole::Module.generate().unwrap();
    let claims = wascap::Claims::new(
        module_key.public_key(),
        module_key.public_key(),
        Actor::default(),
    );
    let err = wascap::embed_claims(&sample_module(), &claims, &module_key).unwrap_err();
    assert!(
        matches!(
            err,
            ClaimsError::WrongKeyRole {
                what: "issuer seed",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("must be an account key (A…)"),
        "{err}"
    );
}

#[test]
fn invalid_module_is_refused_when_signing() {
    // Reads as wasm (header + a well-formed type section) but the function section names a
    // type that does not exist.
    let bad = wat::parse_str("(module (func))").unwrap();
    let mut broken = bad.clone();
    let func_section = broken
        .windows(3)
        .position(|w| w == [0x03, 0x02, 0x01])
        .unwrap();
    broken[func_section + 3] = 9; // type index 9 of 1
    let signer = Signer::new();
    let err =
        wascap::embed_claims(&broken, &signer.claims(named("x")), &signer.account).unwrap_err();
    assert!(matches!(err, ClaimsError::InvalidWasm(_)), "{err}");
}

#[test]
fn components_are_refused_with_a_reason() {
    let component = wat::parse_str("(component)").unwrap();
    let signer = Signer::new();
    let err =
        wascap::embed_claims(&component, &signer.claims(named("c")), &signer.account).unwrap_err();
    assert!(
        err.to_string().contains("component, not a core module"),
        "{err}"
    );
}
