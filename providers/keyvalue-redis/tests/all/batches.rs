//! Increments arriving together go to Redis in batches (one script call for many), and each
//! is answered as if it had gone alone: its own new value, or its own refusal (not an
//! integer, the wrong type, over `i32`) leaving the others applied. More at once than one
//! batch holds are split over several.

use crate::redis::link;
use futures_util::future::join_all;
use std::sync::Arc;
use weft_contracts::keyvalue::{self as kv, IncrementRequest, SetRequest};
use weft_contracts::{decode, encode};
use weft_keyvalue_redis::RedisKeyValue;
use weft_provider_sdk::{LinkDefinition, Provider, ProviderError};
use weft_testing::RedisServer;
use weft_testing::keyvalue::call_raw;

async fn increment(
    provider: &RedisKeyValue,
    link: &Arc<LinkDefinition>,
    key: &str,
    value: i32,
) -> Result<i32, ProviderError> {
    let request = encode(&IncrementRequest {
        key: key.into(),
        value,
    })
    .unwrap();
    let answer = call_raw(provider, link, kv::INCREMENT, request).await?;
    Ok(decode(&answer).unwrap())
}

/// How many script calls Redis has run (`INFO commandstats`).
async fn script_calls(url: &str) -> u64 {
    let mut redis = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis)
        .await
        .unwrap();
    info.lines()
        .filter(|line| line.starts_with("cmdstat_eval"))
        .filter_map(|line| {
            line.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increments_together_are_batched_and_each_answered_as_alone() {
    let redis = RedisServer::start().unwrap();
    let provider = RedisKeyValue::new(None);
    let link = Arc::new(link(Some(&redis.url())));
    provider.put_link(&link).await.unwrap();
    let set = |key: &str, value: &str| {
        encode(&SetRequest {
            key: key.into(),
            value: value.into(),
            expires: 0,
        })
        .unwrap()
    };
    call_raw(&provider, &link, kv::SET, set("text", "abc"))
        .await
        .unwrap();
    call_raw(&provider, &link, kv::SET, set("near", "2147483600"))
        .await
        .unwrap();
    // A number, but not an integer: Redis refuses to add to it.
    call_raw(&provider, &link, kv::SET, set("fraction", "1.5"))
        .await
        .unwrap();
    let list = encode(&kv::ListAddRequest {
        list_name: "list".into(),
        value: "x".into(),
    })
    .unwrap();
    call_raw(&provider, &link, kv::LIST_ADD, list)
        .await
        .unwrap();
    let scripts_before = script_calls(&redis.url()).await;

    // 300 on one key (over two batches' worth), 50 nearing i32::MAX (the last 3 over it), and
    // three keys whose value cannot be added to.
    let mut keys = vec!["counted"; 300];
    keys.extend(["near"; 50]);
    keys.extend(["text", "list", "fraction"]);
    let answers = join_all(keys.iter().map(|key| increment(&provider, &link, key, 1))).await;

    let mut counted: Vec<i32> = answers[..300]
        .iter()
        .map(|a| *a.as_ref().unwrap())
        .collect();
    counted.sort_unstable();
    assert_eq!(
        counted,
        (1..=300).collect::<Vec<_>>(),
        "each got its own value"
    );
    let near: Vec<&Result<i32, ProviderError>> = answers[300..350].iter().collect();
    assert_eq!(near.iter().filter(|a| a.is_ok()).count(), 47);
    for refused in near.iter().filter_map(|a| a.as_ref().err()) {
        assert!(
            matches!(refused, ProviderError::BadRequest { .. })
                && refused.to_string().contains("overflow i32"),
            "{refused}"
        );
    }
    let not_a_number = answers[350].as_ref().unwrap_err();
    assert!(
        not_a_number.to_string().contains("not an integer"),
        "{not_a_number}"
    );
    let fraction = answers[352].as_ref().unwrap_err();
    assert!(
        matches!(fraction, ProviderError::BadRequest { .. })
            && fraction.to_string().contains("not an integer"),
        "{fraction}"
    );
    let wrong_type = answers[351].as_ref().unwrap_err();
    assert!(
        matches!(wrong_type, ProviderError::BadRequest { .. })
            && wrong_type.to_string().contains("WRONGTYPE"),
        "{wrong_type}"
    );

    // What Redis holds: every applied increment once, the refused ones not at all.
    let get = |key: &str| {
        let (provider, link, key) = (&provider, &link, key.to_string());
        async move {
            let answer = call_raw(provider, link, kv::GET, encode(&key).unwrap())
                .await
                .unwrap();
            decode::<kv::GetResponse>(&answer).unwrap().value
        }
    };
    assert_eq!(get("counted").await, "300");
    assert_eq!(get("near").await, i32::MAX.to_string());
    assert_eq!(get("text").await, "abc");
    assert_eq!(get("fraction").await, "1.5");
    assert_eq!(
        increment(&provider, &link, "counted", -300).await.unwrap(),
        0
    );

    // Redis ran a handful of script calls for the 352 increments, none holding over 128.
    let scripts = script_calls(&redis.url()).await - scripts_before;
    assert!(
        (3..=60).contains(&scripts),
        "{scripts} script calls for 352 increments and one more"
    );
    println!("352 increments arriving together: {scripts} script calls");
}
