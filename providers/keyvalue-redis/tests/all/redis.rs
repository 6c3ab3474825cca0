//! The Redis provider against a real `redis-server` (started on a free port, killed at the
//! end): the whole contract, links without a usable URL, and Redis going away and coming back.

use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_contracts::keyvalue::{self as kv, IncrementRequest};
use weft_contracts::{decode, encode};
use weft_keyvalue_redis::RedisKeyValue;
use weft_provider_sdk::{LinkDefinition, Provider, ProviderCall, ProviderError};
use weft_testing::RedisServer;

pub fn link(url: Option<&str>) -> LinkDefinition {
    LinkDefinition {
        actor_id: "MACTOR".into(),
        contract_id: kv::CONTRACT_ID.into(),
        link_name: "default".into(),
        provider_id: "redis".into(),
        values: url
            .map(|u| [("url".to_string(), u.to_string())].into())
            .unwrap_or_default(),
    }
}

async fn increment(
    provider: &RedisKeyValue,
    link: &Arc<LinkDefinition>,
    key: &str,
) -> Result<i32, ProviderError> {
    let request = IncrementRequest {
        key: key.into(),
        value: 1,
    };
    let answer = provider
        .handle_call(ProviderCall {
            actor_id: link.actor_id.clone(),
            link: link.clone(),
            operation: kv::INCREMENT.into(),
            payload: encode(&request).unwrap(),
            time_left: std::time::Duration::from_secs(5),
        })
        .await?;
    Ok(decode(&answer).unwrap())
}

#[tokio::test]
async fn the_whole_contract_answers_as_the_memory_provider_does() {
    let redis = RedisServer::start().unwrap();
    let provider = RedisKeyValue::new(None);
    let link = link(Some(&redis.url()));
    provider.put_link(&link).await.unwrap();
    weft_testing::keyvalue::conformance(&provider, link, "").await;
}

#[tokio::test]
async fn the_url_comes_from_the_link_or_the_provider_default() {
    let redis = RedisServer::start().unwrap();
    let no_default = RedisKeyValue::new(None);
    let err = no_default
        .put_link(&link(None))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no Redis URL: set the link value `url`"),
        "{err}"
    );
    let err = no_default
        .put_link(&link(Some("http://not-redis")))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Redis URL \"http://not-redis\" is unusable"),
        "{err}"
    );

    let with_default = RedisKeyValue::new(Some(redis.url()));
    let link = Arc::new(link(None));
    with_default.put_link(&link).await.unwrap();
    assert_eq!(increment(&with_default, &link, "d").await.unwrap(), 1);
}

/// Redis killed mid-load: calls fail fast with an error naming Redis, the provider
/// reconnects by itself after the restart, and every acknowledged increment is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarts_lose_no_acknowledged_increment() {
    let mut redis = RedisServer::start().unwrap();
    let provider = RedisKeyValue::new(None);
    let link = Arc::new(link(Some(&redis.url())));
    provider.put_link(&link).await.unwrap();

    let (mut acknowledged, mut failed) = (0, 0);
    for _ in 0..200 {
        increment(&provider, &link, "n").await.unwrap();
        acknowledged += 1;
    }
    redis.kill();
    let started = Instant::now();
    let err = increment(&provider, &link, "n")
        .await
        .unwrap_err()
        .to_string();
    failed += 1;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.contains(&format!(
            "Redis at {} failed KeyValue.Increment",
            redis.url()
        )),
        "{err}"
    );

    redis.restart().unwrap();
    let back = Instant::now();
    loop {
        match increment(&provider, &link, "n").await {
            Ok(_) => {
                acknowledged += 1;
                break;
            }
            Err(_) => failed += 1,
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "no reconnect within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..100 {
        increment(&provider, &link, "n").await.unwrap();
        acknowledged += 1;
    }
    let total = increment(&provider, &link, "n").await.unwrap() - 1;
    // Every acknowledged increment is there; a failed one may or may not have been applied.
    assert!(
        (acknowledged..=acknowledged + failed).contains(&total),
        "counter {total}, acknowledged {acknowledged}, failed {failed}"
    );
}

/// A Redis that accepts nothing (SIGSTOP, sockets left open) costs each call an error within
/// the response timeout, not a hang; once resumed it serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_is_an_error_within_the_timeout_not_a_hang() {
    let mut redis = RedisServer::start().unwrap();
    let provider = RedisKeyValue::new(None);
    let link = Arc::new(link(Some(&redis.url())));
    provider.put_link(&link).await.unwrap();
    assert_eq!(increment(&provider, &link, "f").await.unwrap(), 1);

    redis.pause().unwrap();
    let started = Instant::now();
    let err = increment(&provider, &link, "f")
        .await
        .unwrap_err()
        .to_string();
    let waited = started.elapsed();
    redis.resume().unwrap();
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    assert!(err.contains("failed KeyValue.Increment"), "{err}");

    let back = Instant::now();
    while increment(&provider, &link, "f").await.is_err() {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "no recovery within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn redis_servers_per_provider_obeyed_and_enforced() {
    use weft_provider_sdk::connections::DEFAULT_MAX_URLS;
    let redis = RedisServer::start().unwrap();
    let provider = RedisKeyValue::new(None);
    // As many URLs as the bound allows: the real server, then the same under other user
    // names (connected to on first use only, so never here).
    let url = |n: usize| match n {
        0 => redis.url(),
        n => redis
            .url()
            .replace("redis://", &format!("redis://u{n}:secret@")),
    };
    let links: Vec<_> = (0..DEFAULT_MAX_URLS)
        .map(|n| {
            let mut link = link(Some(&url(n)));
            link.actor_id = format!("MA{n}");
            link
        })
        .collect();
    for link in &links {
        provider.put_link(link).await.unwrap();
    }
    let mut one_more = link(Some(&url(DEFAULT_MAX_URLS)));
    one_more.actor_id = "MMORE".into();
    let refused = provider.put_link(&one_more).await.unwrap_err().to_string();
    assert!(
        refused.contains(&format!(
            "already keeps connections to {DEFAULT_MAX_URLS} servers"
        )) && !refused.contains("secret"),
        "{refused}"
    );
    // The links already put keep serving; deleting one makes room for another.
    let first = Arc::new(links[0].clone());
    assert_eq!(increment(&provider, &first, "n").await.unwrap(), 1);
    provider.delete_link(&links[1]).await.unwrap();
    provider.put_link(&one_more).await.unwrap();
    assert_eq!(increment(&provider, &first, "n").await.unwrap(), 2);
}
