//! Fuzzing (weft_testing::fuzz) of the contract payload decoders: every payload an actor, a
//! provider or a peer sends is decoded by one of these, so none may panic or balloon on any
//! bytes. One target tries each input as every type.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use weft_contracts::httpserver::{HttpRequest, HttpResponse};
use weft_contracts::invocation::{Failure, FailureKind};
use weft_contracts::keyvalue as kv;
use weft_contracts::link::LinkDefinition;
use weft_contracts::logging::LogEntry;
use weft_contracts::messaging::{PubMessage, ReplyMessage, RequestMessage, SubMessage};
use weft_contracts::{decode, encode};

fn seed<T: Serialize>(value: &T) -> Vec<u8> {
    encode(value).unwrap()
}

/// Decodes `bytes` as `T`; the outcome names the type and whether it read.
fn as_<T: DeserializeOwned>(bytes: &[u8], accepted: &mut Vec<&'static str>, name: &'static str) {
    if decode::<T>(bytes).is_ok() {
        accepted.push(name);
    }
}

#[test]
fn fuzz_contract_payloads() {
    let request = HttpRequest {
        method: "POST".into(),
        path: "/a/b".into(),
        query_string: "x=1&y=2".into(),
        header: [("content-type".to_string(), vec!["text/plain".to_string()])].into(),
        body: b"hello".to_vec(),
    };
    let seeds = vec![
        seed(&request),
        seed(&HttpResponse {
            status_code: 200,
            header: request.header.clone(),
            body: vec![0, 1, 2, 255],
        }),
        seed(&kv::SetRequest {
            key: "k".into(),
            value: "v".into(),
            expires: 60,
        }),
        seed(&kv::IncrementRequest {
            key: "n".into(),
            value: -7,
        }),
        seed(&kv::ListRangeRequest {
            list_name: "l".into(),
            start: 0,
            stop: -1,
        }),
        seed(&vec!["a".to_string(), "b".to_string()]),
        seed(&PubMessage {
            subject: "s".into(),
            reply_to: Some("r".into()),
            body: b"x".to_vec(),
        }),
        seed(&RequestMessage {
            subject: "s".into(),
            body: vec![],
            timeout_ms: 1000,
        }),
        seed(&LogEntry {
            level: "info".into(),
            text: "hi".into(),
        }),
        seed(&LinkDefinition {
            actor_id: "MA".into(),
            contract_id: "wasmcloud:keyvalue".into(),
            link_name: "default".into(),
            provider_id: "kv".into(),
            values: BTreeMap::from([("url".to_string(), "redis://x".to_string())]),
        }),
        seed(&Failure::new(FailureKind::Busy, "busy")),
    ];
    weft_testing::fuzz::run("contracts", &seeds, |bytes| {
        let mut accepted = Vec::new();
        as_::<HttpRequest>(bytes, &mut accepted, "HttpRequest");
        as_::<HttpResponse>(bytes, &mut accepted, "HttpResponse");
        as_::<kv::GetResponse>(bytes, &mut accepted, "GetResponse");
        as_::<kv::SetRequest>(bytes, &mut accepted, "SetRequest");
        as_::<kv::IncrementRequest>(bytes, &mut accepted, "IncrementRequest");
        as_::<kv::ListAddRequest>(bytes, &mut accepted, "ListAddRequest");
        as_::<kv::ListDelRequest>(bytes, &mut accepted, "ListDelRequest");
        as_::<kv::ListRangeRequest>(bytes, &mut accepted, "ListRangeRequest");
        as_::<kv::SetAddRequest>(bytes, &mut accepted, "SetAddRequest");
        as_::<kv::SetDelRequest>(bytes, &mut accepted, "SetDelRequest");
        as_::<String>(bytes, &mut accepted, "String");
        as_::<Vec<String>>(bytes, &mut accepted, "Vec<String>");
        as_::<i32>(bytes, &mut accepted, "i32");
        as_::<PubMessage>(bytes, &mut accepted, "PubMessage");
        as_::<RequestMessage>(bytes, &mut accepted, "RequestMessage");
        as_::<ReplyMessage>(bytes, &mut accepted, "ReplyMessage");
        as_::<SubMessage>(bytes, &mut accepted, "SubMessage");
        as_::<LogEntry>(bytes, &mut accepted, "LogEntry");
        as_::<LinkDefinition>(bytes, &mut accepted, "LinkDefinition");
        as_::<Failure>(bytes, &mut accepted, "Failure");
        // The outcome is which types read the input, so inputs that reach new ones are kept.
        if accepted.is_empty() {
            Err("no type reads it".to_string())
        } else {
            Err(accepted.join(","))
        }
    });
}
