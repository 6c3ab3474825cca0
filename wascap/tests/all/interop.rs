//! Tokens cross between Weft and the published wascap crate in both directions: 0.16 (current,
//! no `caps`) and 0.13 (the last that writes `caps`). A module verifying on the other side also
//! proves both sides strip and hash identically, since each recomputes the hash itself.

use crate::{Signer, sample_module};
use wascap::{Actor, Provider, VerifyOptions, contracts};

fn weft_signed() -> (Signer, Vec<u8>) {
    let signer = Signer::new();
    let mut claims = signer.claims(Actor {
        name: Some("interop".into()),
        tags: Some(vec!["demo".into()]),
        caps: Some(vec![
            contracts::KEYVALUE.into(),
            contracts::HTTP_SERVER.into(),
        ]),
        rev: Some(7),
        ver: Some("1.2.3".into()),
        call_alias: Some("interop/alias".into()),
        ..Actor::default()
    });
    claims.expires = Some(wascap::unix_now() + 3600);
    claims.not_before = Some(wascap::unix_now() - 60);
    let signed = wascap::embed_claims(&sample_module(), &claims, &signer.account).unwrap();
    (signer, signed)
}

#[test]
fn weft_signed_module_verifies_with_wascap_0_16() {
    let (signer, signed) = weft_signed();
    let token = wascap_016::wasm::extract_claims(&signed)
        .expect("wascap 0.16 recomputes the hash and must agree with Weft's")
        .expect("wascap 0.16 finds the wasmcloud_jwt section");
    let validation =
        wascap_016::jwt::validate_token::<wascap_016::jwt::Component>(&token.jwt).unwrap();
    assert!(
        validation.signature_valid,
        "signature rejected by wascap 0.16"
    );
    assert!(!validation.expired && !validation.cannot_use_yet);

    let claims = token.claims;
    assert_eq!(claims.issuer, signer.account.public_key());
    assert_eq!(claims.subject, signer.module.public_key());
    let meta = claims.metadata.unwrap();
    assert_eq!(meta.name.as_deref(), Some("interop"));
    assert_eq!(meta.rev, Some(7));
    assert_eq!(meta.ver.as_deref(), Some("1.2.3"));
    assert_eq!(meta.tags, Some(vec!["demo".to_string()]));
    assert_eq!(meta.call_alias.as_deref(), Some("interop/alias"));
    assert_eq!(meta.module_hash, wascap::module_hash(&signed).unwrap());
}

#[test]
fn weft_signed_module_verifies_with_wascap_0_13_including_caps() {
    let (signer, signed) = weft_signed();
    let token = wascap_013::wasm::extract_claims(&signed).unwrap().unwrap();
    let validation = wascap_013::jwt::validate_token::<wascap_013::jwt::Actor>(&token.jwt).unwrap();
    assert!(
        validation.signature_valid,
        "signature rejected by wascap 0.13"
    );
    assert!(!validation.expired && !validation.cannot_use_yet);
    let meta = token.claims.metadata.unwrap();
    assert_eq!(token.claims.subject, signer.module.public_key());
    assert_eq!(
        meta.caps,
        Some(vec![
            "wasmcloud:keyvalue".to_string(),
            "wasmcloud:httpserver".to_string()
        ])
    );
}

#[test]
fn wascap_detects_weft_module_tampering() {
    let (_, mut signed) = weft_signed();
    let data_at = signed
        .windows(11)
        .position(|w| w == b"hello, weft")
        .unwrap();
    signed[data_at] ^= 0x20;
    assert!(wascap_016::wasm::extract_claims(&signed).is_err());
    assert!(wascap_013::wasm::extract_claims(&signed).is_err());
}

#[test]
fn wascap_0_16_signed_module_verifies_with_weft() {
    let account = nkeys::KeyPair::new_account();
    let module = nkeys::KeyPair::new_module();
    let signed = wascap_016::wasm::sign_buffer_with_claims(
        "from-016".into(),
        sample_module(),
        &module,
        &account,
        Some(1),
        None,
        vec!["t".into()],
        false,
        Some(4),
        Some("0.4.0".into()),
        None,
    )
    .unwrap();

    let verified = wascap::verify_module(&signed, &VerifyOptions::new()).unwrap();
    assert_eq!(verified.issuer, account.public_key());
    assert_eq!(verified.subject, module.public_key());
    assert_eq!(verified.wascap_revision, Some(3));
    let meta = verified.metadata.as_ref().unwrap();
    assert_eq!(meta.name.as_deref(), Some("from-016"));
    assert_eq!(meta.rev, Some(4));
    assert!(meta.capabilities().is_empty(), "0.16 writes no caps");

    // And Weft's own checks still bite on a module wascap signed.
    let strict = VerifyOptions::new().at(wascap::unix_now() + 3 * 86_400);
    assert!(matches!(
        wascap::verify_module(&signed, &strict),
        Err(wascap::ClaimsError::Expired { .. })
    ));
}

#[test]
fn wascap_0_13_signed_module_with_caps_verifies_with_weft() {
    let account = nkeys_03::KeyPair::new_account();
    let module = nkeys_03::KeyPair::new_module();
    let signed = wascap_013::wasm::sign_buffer_with_claims(
        "from-013".into(),
        sample_module(),
        &module,
        &account,
        None,
        None,
        vec![contracts::MESSAGING.into(), contracts::LOGGING.into()],
        vec![],
        false,
        Some(1),
        None,
        None,
    )
    .unwrap();

    let verified = wascap::verify_module(&signed, &VerifyOptions::new()).unwrap();
    let meta = verified.metadata.as_ref().unwrap();
    assert!(meta.has_capability(contracts::MESSAGING));
    assert!(meta.has_capability(contracts::LOGGING));
    assert!(!meta.has_capability(contracts::KEYVALUE));
    assert_eq!(verified.subject, module.public_key());
}

#[test]
fn provider_tokens_cross_both_ways_with_wascap_0_13() {
    // Weft → wascap
    let account = wascap::KeyRole::Account.generate().unwrap();
    let service = wascap::KeyRole::Service.generate().unwrap();
    let claims = wascap::Claims::new(
        account.public_key(),
        service.public_key(),
        Provider {
            name: Some("kv".into()),
            capid: contracts::KEYVALUE.into(),
            vendor: "weft".into(),
            ..Provider::default()
        },
    );
    let token = wascap::jwt::encode(&claims, &account).unwrap();
    let validation =
        wascap_013::jwt::validate_token::<wascap_013::jwt::CapabilityProvider>(&token).unwrap();
    assert!(validation.signature_valid);
    let theirs =
        wascap_013::jwt::Claims::<wascap_013::jwt::CapabilityProvider>::decode(&token).unwrap();
    assert_eq!(theirs.metadata.unwrap().capid, contracts::KEYVALUE);

    // wascap → Weft
    let account = nkeys_03::KeyPair::new_account();
    let service = nkeys_03::KeyPair::new_service();
    let theirs = wascap_013::jwt::Claims::<wascap_013::jwt::CapabilityProvider>::new(
        "redis".into(),
        account.public_key(),
        service.public_key(),
        contracts::KEYVALUE.into(),
        "acme".into(),
        Some(2),
        None,
        Default::default(),
    );
    let token = theirs.encode(&account).unwrap();
    let verified = wascap::jwt::verify_token::<Provider>(&token, &VerifyOptions::new()).unwrap();
    assert_eq!(verified.metadata.as_ref().unwrap().vendor, "acme");
    assert_eq!(verified.subject, service.public_key());
}
