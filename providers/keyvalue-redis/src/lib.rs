//! # weft-keyvalue-redis — `wasmcloud:keyvalue` on Redis
//!
//! The production key-value provider: the whole contract (get, set with expiry, del, contains,
//! increment, lists, sets) as Redis commands, with the same answers as the in-memory provider
//! (`weft-keyvalue-memory`), which copies Redis's semantics. Each distinct Redis URL gets one
//! multiplexed connection, shared by every link naming it and re-established by itself after
//! Redis restarts; at most [`weft_provider_sdk::connections::DEFAULT_MAX_URLS`] URLs at once,
//! and a URL's connection is dropped with the last link naming it; a command is never re-sent after a failure, so an increment whose answer
//! was lost is reported as an error, not applied twice. Increments to a server go in batches,
//! one script call each ([`increments`]): under load, Redis runs one command for many.
//!
//! The URL comes from the link's values (`url`, or wasmCloud's `URL`), else from the provider's
//! own default ([`RedisKeyValue::new`]); a link may not be put without one.
//!
//! **What it is not:** a cache in front of Redis, or a cluster client.
#![deny(missing_docs)]

mod increments;

use increments::{Answer, Increments};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use weft_contracts::keyvalue::{self as kv, GetResponse};
use weft_contracts::{decode, encode};
use weft_provider_sdk::connections::{Connections, DEFAULT_MAX_URLS};
use weft_provider_sdk::{
    Health, LinkDefinition, Provider, ProviderCall, ProviderError, async_trait,
};

/// Link value keys that name the Redis URL, in order of preference.
pub const URL_KEYS: [&str; 2] = ["url", "URL"];

/// How long connecting to Redis may take before a call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one command may wait for Redis's answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnect attempts per outage before calls fail (each call after that tries again).
const RECONNECT_ATTEMPTS: usize = 3;
/// How long a health check waits for each server's `PING`: inside the host's check timeout.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(1500);

/// `ListClear` / `SetClear`: delete the key if it holds the right kind (ARGV[1]), refuse
/// another kind (Redis's WRONGTYPE), answer whether anything was deleted.
const CLEAR_KIND: &str = r"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then return 0 end
if kind ~= ARGV[1] then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
return redis.call('DEL', KEYS[1])
";

/// The Redis key-value provider.
pub struct RedisKeyValue {
    default_url: Option<String>,
    /// One connection per URL, shared by the links that name it.
    connections: Connections<Redis>,
    clear_kind: Arc<redis::Script>,
}

/// One Redis server's connection, and the queue its increments are batched in.
#[derive(Clone)]
struct Redis {
    commands: ConnectionManager,
    increments: Increments,
}

impl std::fmt::Debug for RedisKeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKeyValue")
            .field("default_url", &self.default_url)
            .finish_non_exhaustive()
    }
}

fn args<T: DeserializeOwned>(operation: &str, payload: &[u8]) -> Result<T, ProviderError> {
    decode(payload).map_err(|e| ProviderError::bad_request(operation, e))
}

fn reply<T: Serialize>(operation: &str, value: &T) -> Result<Vec<u8>, ProviderError> {
    encode(value).map_err(|e| ProviderError::bad_request(operation, e))
}

/// Redis's refusals of a request (wrong type, not a number, overflow) are the caller's bad
/// request; anything else (connection refused, timeout) is the backend failing.
fn redis_error(operation: &str, url: &str, error: redis::RedisError) -> ProviderError {
    match error.kind() {
        redis::ErrorKind::Server(_) | redis::ErrorKind::Extension => {
            ProviderError::bad_request(operation, error)
        }
        _ => ProviderError::Backend(format!(
            "Redis at {} failed {operation}: {error}; is redis-server running there?",
            weft_contracts::secret::scrub(url)
        )),
    }
}

impl RedisKeyValue {
    /// A provider whose links may name their own URL, falling back to `default_url`.
    pub fn new(default_url: Option<String>) -> Self {
        RedisKeyValue {
            connections: Connections::new(DEFAULT_MAX_URLS, default_url.clone()),
            default_url,
            clear_kind: Arc::new(redis::Script::new(CLEAR_KIND)),
        }
    }

    fn url_of(&self, link: &LinkDefinition) -> Result<String, ProviderError> {
        URL_KEYS
            .iter()
            .find_map(|key| link.values.get(*key))
            .cloned()
            .or_else(|| self.default_url.clone())
            .ok_or_else(|| ProviderError::Link {
                actor_id: link.actor_id.clone(),
                reason: "no Redis URL: set the link value `url` (e.g. redis://127.0.0.1:6379) \
                         or start the provider with a default URL"
                    .into(),
            })
    }

    /// The shared connection for `url`, created (lazily connecting) on first use.
    async fn connection(&self, actor_id: &str, url: &str) -> Result<Redis, ProviderError> {
        self.connections
            .get(url, || async { Self::connect(actor_id, url) })
            .await
    }

    /// A connection to `url` that connects on first use (so a link can be put while Redis
    /// is still starting), or why the URL is unusable.
    fn connect(actor_id: &str, url: &str) -> Result<Redis, ProviderError> {
        let bad_url = |e: redis::RedisError| ProviderError::Link {
            actor_id: actor_id.to_string(),
            reason: format!(
                "Redis URL {:?} is unusable: {e}",
                weft_contracts::secret::scrub(url)
            ),
        };
        let client = redis::Client::open(url).map_err(bad_url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_ATTEMPTS);
        let commands = ConnectionManager::new_lazy_with_config(client, config).map_err(bad_url)?;
        Ok(Redis {
            increments: Increments::start(commands.clone()),
            commands,
        })
    }

    /// Serves one operation of the contract on `url`.
    pub async fn apply(
        &self,
        url: &str,
        operation: &str,
        payload: &[u8],
        actor_id: &str,
    ) -> Result<Vec<u8>, ProviderError> {
        let connection = self.connection(actor_id, url).await?;
        let mut redis = connection.commands;
        let op = operation;
        let failed = |e| redis_error(op, url, e);
        match operation {
            kv::GET => {
                let key: String = args(op, payload)?;
                let value: Option<String> = redis.get(&key).await.map_err(failed)?;
                let response = match value {
                    Some(value) => GetResponse {
                        value,
                        exists: true,
                    },
                    None => GetResponse::default(),
                };
                reply(op, &response)
            }
            kv::SET => {
                let request: kv::SetRequest = args(op, payload)?;
                if request.expires > 0 {
                    let () = redis
                        .set_ex(&request.key, &request.value, u64::from(request.expires))
                        .await
                        .map_err(failed)?;
                } else {
                    let () = redis
                        .set(&request.key, &request.value)
                        .await
                        .map_err(failed)?;
                }
                Ok(Vec::new())
            }
            kv::DEL => {
                let key: String = args(op, payload)?;
                let removed: u32 = redis.del(&key).await.map_err(failed)?;
                reply(op, &(removed > 0))
            }
            kv::CONTAINS => {
                let key: String = args(op, payload)?;
                let exists: bool = redis.exists(&key).await.map_err(failed)?;
                reply(op, &exists)
            }
            kv::INCREMENT => {
                let request: kv::IncrementRequest = args(op, payload)?;
                let answer = connection
                    .increments
                    .increment(request.key, request.value)
                    .await;
                match answer {
                    Answer::Applied(next) => reply(op, &next),
                    Answer::Refused(reason) => Err(ProviderError::bad_request(op, reason)),
                    Answer::Failed(error) => Err(failed(error)),
                }
            }
            kv::LIST_ADD => {
                let request: kv::ListAddRequest = args(op, payload)?;
                let len: u32 = redis
                    .rpush(&request.list_name, &request.value)
                    .await
                    .map_err(failed)?;
                reply(op, &len)
            }
            kv::LIST_DEL => {
                let request: kv::ListDelRequest = args(op, payload)?;
                let removed: u32 = redis
                    .lrem(&request.list_name, 1, &request.value)
                    .await
                    .map_err(failed)?;
                reply(op, &(removed > 0))
            }
            kv::LIST_RANGE => {
                let request: kv::ListRangeRequest = args(op, payload)?;
                let values: Vec<String> = redis
                    .lrange(
                        &request.list_name,
                        isize::try_from(request.start).unwrap_or(isize::MAX),
                        isize::try_from(request.stop).unwrap_or(isize::MAX),
                    )
                    .await
                    .map_err(failed)?;
                reply(op, &values)
            }
            kv::LIST_CLEAR | kv::SET_CLEAR => {
                let name: String = args(op, payload)?;
                let kind = if op == kv::LIST_CLEAR { "list" } else { "set" };
                let removed: u32 = self
                    .clear_kind
                    .key(&name)
                    .arg(kind)
                    .invoke_async(&mut redis)
                    .await
                    .map_err(failed)?;
                reply(op, &(removed > 0))
            }
            kv::SET_ADD => {
                let request: kv::SetAddRequest = args(op, payload)?;
                let added: u32 = redis
                    .sadd(&request.set_name, &request.value)
                    .await
                    .map_err(failed)?;
                reply(op, &added)
            }
            kv::SET_DEL => {
                let request: kv::SetDelRequest = args(op, payload)?;
                let removed: u32 = redis
                    .srem(&request.set_name, &request.value)
                    .await
                    .map_err(failed)?;
                reply(op, &removed)
            }
            kv::SET_QUERY => {
                let name: String = args(op, payload)?;
                let mut values: Vec<String> = redis.smembers(&name).await.map_err(failed)?;
                // Sorted, as the in-memory provider answers (Redis's order is arbitrary).
                values.sort();
                reply(op, &values)
            }
            kv::SET_UNION | kv::SET_INTERSECTION => {
                let names: Vec<String> = args(op, payload)?;
                if names.is_empty() {
                    return reply(op, &Vec::<String>::new());
                }
                let mut values: Vec<String> = if op == kv::SET_UNION {
                    redis.sunion(&names).await
                } else {
                    redis.sinter(&names).await
                }
                .map_err(failed)?;
                values.sort();
                reply(op, &values)
            }
            _ => Err(ProviderError::unknown_operation(kv::CONTRACT_ID, operation)),
        }
    }
}

#[async_trait]
impl Provider for RedisKeyValue {
    fn contract_id(&self) -> &str {
        kv::CONTRACT_ID
    }

    /// Healthy when every Redis server a link names answers `PING` (connecting first to one
    /// no call has needed yet).
    async fn health(&self) -> Health {
        let mut problems = Vec::new();
        for (url, made) in self.connections.named() {
            let shown = weft_contracts::secret::scrub(&url);
            let ping = async {
                let mut connection = match made {
                    Some(connection) => connection.commands,
                    None => self.connection("(health check)", &url).await?.commands,
                };
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .map_err(|e| ProviderError::Backend(e.to_string()))
            };
            match tokio::time::timeout(HEALTH_TIMEOUT, ping).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    problems.push(format!("Redis at {shown} does not answer PING: {error}"));
                }
                Err(_) => problems.push(format!(
                    "Redis at {shown} did not answer PING within {} ms",
                    HEALTH_TIMEOUT.as_millis()
                )),
            }
        }
        Health::from_problems(problems)
    }

    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        let url = self.url_of(link)?;
        // Refuses a malformed URL now; the connection itself is made on first use, so a link
        // can be put while Redis is still starting.
        self.connection(&link.actor_id, &url).await?;
        self.connections.name(link, &url)
    }

    async fn delete_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        self.connections.unname(link);
        Ok(())
    }

    async fn handle_call(&self, call: ProviderCall) -> Result<Vec<u8>, ProviderError> {
        // Every call carries its link, so a provider that restarted (and was told of no link
        // since) serves it too.
        let url = self.url_of(&call.link)?;
        self.apply(&url, &call.operation, &call.payload, &call.actor_id)
            .await
    }
}
