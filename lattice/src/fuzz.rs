//! Fuzzing (weft_testing::fuzz) of everything the lattice parses from bytes a stranger can
//! send: signed control envelopes, member tokens, the seal and chunk-offer headers, and the
//! bodies of invocations, answers and call batches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::chunks::Offer;
use crate::envelope::{Envelope, Verifier};
use crate::member::{Token, parse_seal};
use crate::wire::{ActorInvocation, Answer, ProviderInvocation};
use std::collections::BTreeSet;
use weft_contracts::link::LinkKey;
use weft_testing::fuzz;

#[test]
fn fuzz_control_envelope() {
    let operator = nkeys::KeyPair::new_operator();
    let seeds: Vec<Vec<u8>> = [b"".to_vec(), b"a request body".to_vec(), vec![0x90; 300]]
        .into_iter()
        .map(|body| {
            Envelope::seal(&operator, "NHOST", body)
                .unwrap()
                .to_bytes()
                .unwrap()
        })
        .collect();
    let verifier = Verifier::new([operator.public_key()]);
    fuzz::run("lattice-envelope", &seeds, |bytes| {
        verifier.open("NHOST", bytes).map(drop)
    });
}

#[test]
fn fuzz_member_token() {
    let issuer = nkeys::KeyPair::new_cluster();
    let trusted = BTreeSet::from([issuer.public_key()]);
    let seeds: Vec<Vec<u8>> = ["host", "a provider with a long name"]
        .iter()
        .map(|name| rmp_serde::to_vec(&Token::mint(&issuer, "XMEMBER", name).unwrap()).unwrap())
        .collect();
    fuzz::run("lattice-token", &seeds, |bytes| {
        Token::verify(bytes, &trusted).map(drop)
    });
}

#[test]
fn fuzz_seal_and_offer_headers() {
    let seeds: Vec<Vec<u8>> = [
        "17.1733350000000.q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA",
        "_INBOX.abc123.def 41943040 1040384 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "0.0.",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz::run("lattice-headers", &seeds, |bytes| {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        let seal = parse_seal(text).map(drop).map_err(|e| e.to_string());
        let offer = Offer::parse(text).map(drop).map_err(|e| e.to_string());
        match (seal, offer) {
            (Ok(()), _) | (_, Ok(())) => Ok(()),
            (Err(a), Err(b)) => Err(format!("{a} / {b}")),
        }
    });
}

#[test]
fn fuzz_lattice_bodies() {
    let link = LinkKey {
        actor_id: "MACTOR".into(),
        contract_id: "wasmcloud:keyvalue".into(),
        link_name: "default".into(),
    };
    let seeds = vec![
        rmp_serde::to_vec_named(&ActorInvocation {
            operation: "HttpServer.HandleRequest".into(),
            payload: b"payload".to_vec(),
            origin: "http".into(),
            deadline_ms: 5000,
            traceparent: None,
        })
        .unwrap(),
        rmp_serde::to_vec_named(&ProviderInvocation {
            link,
            operation: "KeyValue.Get".into(),
            payload: vec![0xa1, b'k'],
            deadline_ms: 100,
            traceparent: None,
        })
        .unwrap(),
        rmp_serde::to_vec_named(&Answer::Ok(b"fine".to_vec())).unwrap(),
        rmp_serde::to_vec_named(&Answer::failed(
            weft_contracts::invocation::FailureKind::Busy,
            "busy",
        ))
        .unwrap(),
        rmp_serde::to_vec(&vec![(1u64, serde_bytes::ByteBuf::from(b"a".to_vec()))]).unwrap(),
    ];
    fuzz::run("lattice-bodies", &seeds, |bytes| {
        let subject = "weft.fuzz";
        let read = [
            crate::wire::decode::<ActorInvocation>(subject, bytes).is_ok(),
            crate::wire::decode::<ProviderInvocation>(subject, bytes).is_ok(),
            crate::wire::decode::<Answer>(subject, bytes).is_ok(),
            rmp_serde::from_slice::<Vec<(u64, serde_bytes::ByteBuf)>>(bytes).is_ok(),
            rmp_serde::from_slice::<Vec<(u64, Answer)>>(bytes).is_ok(),
        ];
        // The outcome is which kinds read the input.
        Err::<(), _>(format!("{read:?}"))
    });
}
