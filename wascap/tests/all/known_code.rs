//! `verify_module_code` with code it knows: the same code under a known hash verifies by
//! comparing bytes, and code changed in any byte (or one byte longer) claiming that hash is
//! refused as before, however the known code is looked up.

use crate::{Signer, named, sample_module, strip};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use wascap::{ClaimsError, VerifyOptions};

/// A look-up of known code, as `verify_module_code` takes it.
trait Known: Fn(&str) -> Option<Arc<[u8]>> {}
impl<F: Fn(&str) -> Option<Arc<[u8]>>> Known for F {}

/// The known code for exactly `hash`, counting the look-ups.
fn knowing(hash: String, code: Vec<u8>) -> (impl Known, Rc<Cell<u32>>) {
    let asked = Rc::new(Cell::new(0));
    let (code, counted): (Arc<[u8]>, _) = (code.into(), asked.clone());
    let known = move |claimed: &str| {
        counted.set(counted.get() + 1);
        (claimed == hash).then(|| code.clone())
    };
    (known, asked)
}

#[test]
fn known_code_verifies_as_hashing_does() {
    let signed = Signer::new().sign(&sample_module(), named("one"));
    let hash = wascap::module_hash(&signed).unwrap();
    let hashed = wascap::verify_module_code(&signed, &VerifyOptions::new(), &|_| None).unwrap();
    assert_eq!(hashed.code_hash, hash);

    // Another actor of the same code, signed by someone else: its own claims, the code's hash.
    let other = Signer::new().sign(&sample_module(), named("two"));
    let (known, asked) = knowing(hash.clone(), wascap::strip_claims(&signed).unwrap());
    let compared = wascap::verify_module_code(&other, &VerifyOptions::new(), &known).unwrap();
    assert_eq!(asked.get(), 1);
    assert_eq!(compared.code_hash, hash);
    assert!(compared.claims.hash_checked());
    assert_eq!(
        compared.claims.metadata.as_ref().unwrap().name.as_deref(),
        Some("two")
    );
    // Known code does not stand in for the signature: the issuer allow-list still applies.
    let elsewhere = VerifyOptions::new().allow_issuers(["AOTHER"]);
    assert!(matches!(
        wascap::verify_module_code(&other, &elsewhere, &known),
        Err(ClaimsError::IssuerNotAllowed { .. })
    ));
}

#[test]
fn changed_code_claiming_a_known_hash_is_refused() {
    let signed = Signer::new().sign(&sample_module(), named("one"));
    let hash = wascap::module_hash(&signed).unwrap();
    let (known, asked) = knowing(hash.clone(), strip(&signed));

    // A byte of the data changed after signing: same length, same claims, other code.
    let mut changed = signed.clone();
    let at = changed
        .windows(11)
        .position(|w| w == b"hello, weft")
        .unwrap();
    changed[at] = b'j';
    let err = wascap::verify_module_code(&changed, &VerifyOptions::new(), &known).unwrap_err();
    assert_eq!(asked.get(), 1, "the known code was consulted");
    match err {
        ClaimsError::HashMismatch { claimed, actual } => {
            assert_eq!(claimed, hash);
            assert_eq!(actual, wascap::module_hash(&changed).unwrap());
        }
        other => panic!("{other}"),
    }

    // Known code that is a prefix of the module's (a section appended after signing).
    let mut longer = strip(&signed);
    wasm_encoder::Section::append_to(
        &wasm_encoder::CustomSection {
            name: "extra".into(),
            data: b"more".as_slice().into(),
        },
        &mut longer,
    );
    let token = wascap::extract_token(&signed).unwrap().unwrap();
    let longer = crate::with_token(&longer, token.as_bytes());
    assert!(matches!(
        wascap::verify_module_code(&longer, &VerifyOptions::new(), &known),
        Err(ClaimsError::HashMismatch { .. })
    ));
    // And the other way: known code longer than the module's.
    let (known_longer, _) = knowing(hash, [strip(&signed), b"x".to_vec()].concat());
    assert!(
        wascap::verify_module_code(&signed, &VerifyOptions::new(), &known_longer).is_ok(),
        "a lying cache is no way in, and no way to refuse code that hashes right"
    );
}
