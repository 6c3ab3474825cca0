//! The `wasmcloud:keyvalue` conformance suite: every operation of the contract through
//! [`Provider::handle_call`], with the answers Redis gives (the in-memory provider copies
//! them). A provider passes by running [`conformance`] against a fresh, empty store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite: a failed expectation must fail the test that runs it"
)]

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use weft_contracts::keyvalue::*;
use weft_contracts::{decode, encode};
use weft_provider_sdk::{LinkDefinition, Provider, ProviderCall, ProviderError};

/// Calls `operation` through `link` the way the host does.
pub async fn call_raw(
    provider: &dyn Provider,
    link: &Arc<LinkDefinition>,
    operation: &str,
    payload: Vec<u8>,
) -> Result<Vec<u8>, ProviderError> {
    provider
        .handle_call(ProviderCall {
            actor_id: link.actor_id.clone(),
            link: link.clone(),
            operation: operation.to_string(),
            payload,
            time_left: std::time::Duration::from_secs(5),
        })
        .await
}

async fn call<T: Serialize, R: DeserializeOwned>(
    provider: &dyn Provider,
    link: &Arc<LinkDefinition>,
    operation: &str,
    request: &T,
) -> R {
    let answer = call_raw(provider, link, operation, encode(request).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{operation}: {e}"));
    decode(&answer).unwrap_or_else(|e| panic!("{operation} answered undecodably: {e}"))
}

async fn refused<T: Serialize>(
    provider: &dyn Provider,
    link: &Arc<LinkDefinition>,
    operation: &str,
    request: &T,
) -> String {
    match call_raw(provider, link, operation, encode(request).unwrap()).await {
        Ok(answer) => panic!("{operation} should have been refused, answered {answer:?}"),
        Err(error) => error.to_string(),
    }
}

/// Runs every operation of the contract against `provider`, whose store must start empty,
/// through `link` (already put). Keys are prefixed with `prefix`, so runs can share a store.
pub async fn conformance(provider: &dyn Provider, link: LinkDefinition, prefix: &str) {
    let link = Arc::new(link);
    let p = provider;
    let key = |name: &str| format!("{prefix}{name}");

    // Strings.
    let missing: GetResponse = call(p, &link, GET, &key("s")).await;
    assert_eq!(missing, GetResponse::default());
    let set = |name: &str, value: &str, expires| SetRequest {
        key: key(name),
        value: value.into(),
        expires,
    };
    let () = decode_unit(call_raw(p, &link, SET, encode(&set("s", "v", 0)).unwrap()).await);
    let got: GetResponse = call(p, &link, GET, &key("s")).await;
    assert_eq!(
        got,
        GetResponse {
            value: "v".into(),
            exists: true
        }
    );
    assert!(call::<_, bool>(p, &link, CONTAINS, &key("s")).await);
    assert!(call::<_, bool>(p, &link, DEL, &key("s")).await);
    assert!(!call::<_, bool>(p, &link, DEL, &key("s")).await);
    assert!(!call::<_, bool>(p, &link, CONTAINS, &key("s")).await);
    let empty: GetResponse = call(p, &link, GET, &key("s")).await;
    assert_eq!(empty, GetResponse::default());

    // Expiry: a value set for one second is gone after it.
    let () = decode_unit(call_raw(p, &link, SET, encode(&set("e", "soon", 1)).unwrap()).await);
    assert!(call::<_, bool>(p, &link, CONTAINS, &key("e")).await);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert!(!call::<_, bool>(p, &link, CONTAINS, &key("e")).await);

    // Increment: from nothing, negative, overflow refused and nothing changed, not a number.
    let inc = |value| IncrementRequest {
        key: key("n"),
        value,
    };
    assert_eq!(call::<_, i32>(p, &link, INCREMENT, &inc(1)).await, 1);
    assert_eq!(call::<_, i32>(p, &link, INCREMENT, &inc(41)).await, 42);
    assert_eq!(call::<_, i32>(p, &link, INCREMENT, &inc(-2)).await, 40);
    refused(p, &link, INCREMENT, &inc(i32::MAX)).await;
    assert_eq!(call::<_, i32>(p, &link, INCREMENT, &inc(0)).await, 40);
    let () = decode_unit(call_raw(p, &link, SET, encode(&set("word", "x", 0)).unwrap()).await);
    let word = IncrementRequest {
        key: key("word"),
        value: 1,
    };
    refused(p, &link, INCREMENT, &word).await;

    // Lists: append, inclusive and negative ranges, delete the first occurrence, clear.
    let list = key("l");
    for value in ["a", "b", "c", "b"] {
        let _: u32 = call(
            p,
            &link,
            LIST_ADD,
            &ListAddRequest {
                list_name: list.clone(),
                value: value.into(),
            },
        )
        .await;
    }
    let range = |start, stop| ListRangeRequest {
        list_name: list.clone(),
        start,
        stop,
    };
    assert_eq!(
        call::<_, Vec<String>>(p, &link, LIST_RANGE, &range(0, -1)).await,
        ["a", "b", "c", "b"]
    );
    assert_eq!(
        call::<_, Vec<String>>(p, &link, LIST_RANGE, &range(1, 2)).await,
        ["b", "c"]
    );
    assert_eq!(
        call::<_, Vec<String>>(p, &link, LIST_RANGE, &range(-2, -1)).await,
        ["c", "b"]
    );
    assert_eq!(
        call::<_, Vec<String>>(p, &link, LIST_RANGE, &range(-2, 100)).await,
        ["c", "b"]
    );
    assert!(
        call::<_, Vec<String>>(p, &link, LIST_RANGE, &range(3, 1))
            .await
            .is_empty()
    );
    let del = ListDelRequest {
        list_name: list.clone(),
        value: "b".into(),
    };
    assert!(call::<_, bool>(p, &link, LIST_DEL, &del).await);
    assert_eq!(
        call::<_, Vec<String>>(p, &link, LIST_RANGE, &range(0, -1)).await,
        ["a", "c", "b"]
    );
    let gone = ListDelRequest {
        list_name: list.clone(),
        value: "zz".into(),
    };
    assert!(!call::<_, bool>(p, &link, LIST_DEL, &gone).await);
    assert!(call::<_, bool>(p, &link, LIST_CLEAR, &list).await);
    assert!(!call::<_, bool>(p, &link, LIST_CLEAR, &list).await);

    // Sets: add (1 new, 0 again), query sorted, union, intersection, delete, clear.
    let (a, b) = (key("sa"), key("sb"));
    for (set_name, value) in [(&a, "x"), (&a, "y"), (&b, "y"), (&b, "z")] {
        let added: u32 = call(
            p,
            &link,
            SET_ADD,
            &SetAddRequest {
                set_name: set_name.clone(),
                value: value.into(),
            },
        )
        .await;
        assert_eq!(added, 1);
    }
    let again: u32 = call(
        p,
        &link,
        SET_ADD,
        &SetAddRequest {
            set_name: a.clone(),
            value: "x".into(),
        },
    )
    .await;
    assert_eq!(again, 0);
    assert_eq!(
        call::<_, Vec<String>>(p, &link, SET_QUERY, &a).await,
        ["x", "y"]
    );
    assert_eq!(
        call::<_, Vec<String>>(p, &link, SET_UNION, &vec![a.clone(), b.clone()]).await,
        ["x", "y", "z"]
    );
    assert_eq!(
        call::<_, Vec<String>>(p, &link, SET_INTERSECTION, &vec![a.clone(), b.clone()]).await,
        ["y"]
    );
    let removed: u32 = call(
        p,
        &link,
        SET_DEL,
        &SetDelRequest {
            set_name: a.clone(),
            value: "x".into(),
        },
    )
    .await;
    assert_eq!(removed, 1);
    assert_eq!(call::<_, Vec<String>>(p, &link, SET_QUERY, &a).await, ["y"]);
    assert!(call::<_, bool>(p, &link, SET_CLEAR, &a).await);
    assert!(
        call::<_, Vec<String>>(p, &link, SET_QUERY, &a)
            .await
            .is_empty()
    );

    // A key used as another kind of value is refused, and left as it was.
    let wrong = refused(
        p,
        &link,
        LIST_ADD,
        &ListAddRequest {
            list_name: key("word"),
            value: "v".into(),
        },
    )
    .await;
    assert!(wrong.contains("WRONGTYPE"), "{wrong}");
    let wrong = refused(p, &link, SET_CLEAR, &key("word")).await;
    assert!(wrong.contains("WRONGTYPE"), "{wrong}");
    let word: GetResponse = call(p, &link, GET, &key("word")).await;
    assert_eq!(word.value, "x");
    let _: u32 = call(
        p,
        &link,
        LIST_ADD,
        &ListAddRequest {
            list_name: key("l2"),
            value: "a".into(),
        },
    )
    .await;
    let wrong = refused(p, &link, GET, &key("l2")).await;
    assert!(wrong.contains("WRONGTYPE"), "{wrong}");
    let wrong = refused(
        p,
        &link,
        SET_ADD,
        &SetAddRequest {
            set_name: key("l2"),
            value: "x".into(),
        },
    )
    .await;
    assert!(wrong.contains("WRONGTYPE"), "{wrong}");

    // Undecodable requests and unknown operations are errors, not panics.
    let bad = call_raw(p, &link, INCREMENT, vec![0xc1]).await.unwrap_err();
    assert!(bad.to_string().contains(INCREMENT), "{bad}");
    let unknown = call_raw(p, &link, "KeyValue.Nope", Vec::new())
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("KeyValue.Nope"), "{unknown}");
}

/// `Set` answers with nothing.
fn decode_unit(answer: Result<Vec<u8>, ProviderError>) {
    let answer = answer.unwrap_or_else(|e| panic!("Set: {e}"));
    assert!(answer.is_empty(), "Set answered {answer:?}");
}
