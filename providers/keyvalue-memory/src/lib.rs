//! # weft-keyvalue-memory — `wasmcloud:keyvalue` in memory
//!
//! The key-value provider `weft up` uses when no Redis is configured: the whole contract (get,
//! set with expiry, del, contains, increment, lists, sets) on an in-process map, with Redis's
//! semantics where the contract leaves them open, so an app moves to the Redis provider
//! without surprises: one keyspace shared by every linked actor, as actors sharing a Redis
//! database would be; a key holds one kind of value and using it as another is an error
//! (Redis's `WRONGTYPE`); list ranges take Redis's inclusive, negative-from-the-end indexes.
//!
//! **What it is not:** durable or shared between processes. Data lives as long as the provider.
//!
//! ```
//! use weft_keyvalue_memory::MemoryKeyValue;
//! use weft_contracts::{encode, decode, keyvalue};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let kv = MemoryKeyValue::new();
//! let request = keyvalue::IncrementRequest { key: "hits".into(), value: 2 };
//! let reply = kv.apply(keyvalue::INCREMENT, &encode(&request)?)?;
//! assert_eq!(decode::<i32>(&reply)?, 2);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use weft_contracts::keyvalue::{self as kv, GetResponse};
use weft_contracts::{decode, encode};
use weft_provider_sdk::{Provider, ProviderCall, ProviderError, async_trait};

/// What one key holds.
enum Value {
    Text {
        value: String,
        expires: Option<Instant>,
    },
    List(VecDeque<String>),
    Set(BTreeSet<String>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Text { .. } => "a string",
            Value::List(_) => "a list",
            Value::Set(_) => "a set",
        }
    }
}

/// Operations between two sweeps for expired keys nobody reads again.
const SWEEP_EVERY_OPS: u32 = 4096;

#[derive(Default)]
struct Store {
    values: HashMap<String, Value>,
    ops_since_sweep: u32,
}

impl Store {
    /// Now and then, drops every expired key, so unread ones do not pile up.
    fn sweep(&mut self, now: Instant) {
        self.ops_since_sweep += 1;
        if self.ops_since_sweep >= SWEEP_EVERY_OPS {
            self.ops_since_sweep = 0;
            self.values
                .retain(|_, v| !matches!(v, Value::Text { expires: Some(at), .. } if *at <= now));
        }
    }
}

/// The in-memory key-value provider.
#[derive(Default)]
pub struct MemoryKeyValue {
    store: Mutex<Store>,
}

impl std::fmt::Debug for MemoryKeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKeyValue").finish_non_exhaustive()
    }
}

fn wrong_type(operation: &str, key: &str, found: &Value, wanted: &str) -> ProviderError {
    ProviderError::bad_request(
        operation,
        format!(
            "key {key:?} holds {}, not {wanted} (WRONGTYPE)",
            found.kind()
        ),
    )
}

fn args<T: DeserializeOwned>(operation: &str, payload: &[u8]) -> Result<T, ProviderError> {
    decode(payload).map_err(|e| ProviderError::bad_request(operation, e))
}

fn reply<T: Serialize>(operation: &str, value: &T) -> Result<Vec<u8>, ProviderError> {
    encode(value).map_err(|e| ProviderError::bad_request(operation, e))
}

/// Redis `LRANGE` index arithmetic: inclusive, negative counts from the end, clamped.
fn list_range(list: &VecDeque<String>, start: i32, stop: i32) -> Vec<String> {
    let len = i64::try_from(list.len()).unwrap_or(i64::MAX);
    let resolve = |i: i32| {
        if i < 0 {
            len + i64::from(i)
        } else {
            i64::from(i)
        }
    };
    let (start, stop) = (resolve(start).max(0), resolve(stop).min(len - 1));
    if start > stop {
        return Vec::new();
    }
    let (start, count) = (start as usize, (stop - start + 1) as usize);
    list.iter().skip(start).take(count).cloned().collect()
}

impl MemoryKeyValue {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Performs one contract operation on an encoded request and returns the encoded answer.
    pub fn apply(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, ProviderError> {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        store.sweep(now);
        let op = operation;
        let data = &mut store.values;
        // Every key an operation names is expired (or not) before the operation sees it.
        let key_arg = |data: &mut HashMap<String, Value>| -> Result<String, ProviderError> {
            let key: String = args(op, payload)?;
            expire(data, &key, now);
            Ok(key)
        };
        match operation {
            kv::GET => {
                let key = key_arg(data)?;
                let response = match data.get(&key) {
                    None => GetResponse::default(),
                    Some(Value::Text { value, .. }) => GetResponse {
                        value: value.clone(),
                        exists: true,
                    },
                    Some(other) => return Err(wrong_type(op, &key, other, "a string")),
                };
                reply(op, &response)
            }
            kv::SET => {
                let request: kv::SetRequest = args(op, payload)?;
                let expires = (request.expires > 0)
                    .then(|| now + Duration::from_secs(u64::from(request.expires)));
                data.insert(
                    request.key,
                    Value::Text {
                        value: request.value,
                        expires,
                    },
                );
                Ok(Vec::new())
            }
            kv::DEL => {
                let key = key_arg(data)?;
                reply(op, &data.remove(&key).is_some())
            }
            kv::CONTAINS => {
                let key = key_arg(data)?;
                reply(op, &data.contains_key(&key))
            }
            kv::INCREMENT => {
                let request: kv::IncrementRequest = args(op, payload)?;
                expire(data, &request.key, now);
                let entry = data.entry(request.key.clone()).or_insert(Value::Text {
                    value: "0".into(),
                    expires: None,
                });
                let Value::Text { value, .. } = entry else {
                    return Err(wrong_type(op, &request.key, entry, "a number"));
                };
                let current: i32 = value.parse().map_err(|_| {
                    ProviderError::bad_request(
                        op,
                        format!("key {:?} is not an integer", request.key),
                    )
                })?;
                let next = current.checked_add(request.value).ok_or_else(|| {
                    ProviderError::bad_request(
                        op,
                        format!("key {:?} would overflow i32", request.key),
                    )
                })?;
                *value = next.to_string();
                reply(op, &next)
            }
            kv::LIST_ADD => {
                let request: kv::ListAddRequest = args(op, payload)?;
                expire(data, &request.list_name, now);
                let entry = data
                    .entry(request.list_name.clone())
                    .or_insert(Value::List(VecDeque::new()));
                let Value::List(list) = entry else {
                    return Err(wrong_type(op, &request.list_name, entry, "a list"));
                };
                list.push_back(request.value);
                reply(op, &u32::try_from(list.len()).unwrap_or(u32::MAX))
            }
            kv::LIST_DEL => {
                let request: kv::ListDelRequest = args(op, payload)?;
                expire(data, &request.list_name, now);
                let removed = match data.get_mut(&request.list_name) {
                    None => false,
                    Some(Value::List(list)) => {
                        match list.iter().position(|v| *v == request.value) {
                            Some(at) => list.remove(at).is_some(),
                            None => false,
                        }
                    }
                    Some(other) => return Err(wrong_type(op, &request.list_name, other, "a list")),
                };
                reply(op, &removed)
            }
            kv::LIST_RANGE => {
                let request: kv::ListRangeRequest = args(op, payload)?;
                expire(data, &request.list_name, now);
                let values = match data.get(&request.list_name) {
                    None => Vec::new(),
                    Some(Value::List(list)) => list_range(list, request.start, request.stop),
                    Some(other) => return Err(wrong_type(op, &request.list_name, other, "a list")),
                };
                reply(op, &values)
            }
            kv::LIST_CLEAR => {
                let name = key_arg(data)?;
                clear(data, op, &name, |v| matches!(v, Value::List(_)), "a list")
            }
            kv::SET_CLEAR => {
                let name = key_arg(data)?;
                clear(data, op, &name, |v| matches!(v, Value::Set(_)), "a set")
            }
            kv::SET_ADD => {
                let request: kv::SetAddRequest = args(op, payload)?;
                expire(data, &request.set_name, now);
                let entry = data
                    .entry(request.set_name.clone())
                    .or_insert(Value::Set(BTreeSet::new()));
                let Value::Set(set) = entry else {
                    return Err(wrong_type(op, &request.set_name, entry, "a set"));
                };
                reply(op, &u32::from(set.insert(request.value)))
            }
            kv::SET_DEL => {
                let request: kv::SetDelRequest = args(op, payload)?;
                expire(data, &request.set_name, now);
                let removed = match data.get_mut(&request.set_name) {
                    None => false,
                    Some(Value::Set(set)) => set.remove(&request.value),
                    Some(other) => return Err(wrong_type(op, &request.set_name, other, "a set")),
                };
                reply(op, &u32::from(removed))
            }
            kv::SET_QUERY => {
                let name = key_arg(data)?;
                let values: Vec<String> = match data.get(&name) {
                    None => Vec::new(),
                    Some(Value::Set(set)) => set.iter().cloned().collect(),
                    Some(other) => return Err(wrong_type(op, &name, other, "a set")),
                };
                reply(op, &values)
            }
            kv::SET_UNION | kv::SET_INTERSECTION => {
                let names: Vec<String> = args(op, payload)?;
                for name in &names {
                    expire(data, name, now);
                }
                let mut sets = Vec::with_capacity(names.len());
                for name in &names {
                    match data.get(name) {
                        None => sets.push(BTreeSet::new()),
                        Some(Value::Set(set)) => sets.push(set.clone()),
                        Some(other) => return Err(wrong_type(op, name, other, "a set")),
                    }
                }
                let combined: BTreeSet<String> = if operation == kv::SET_UNION {
                    sets.into_iter().flatten().collect()
                } else {
                    let mut iter = sets.into_iter();
                    let first = iter.next().unwrap_or_default();
                    iter.fold(first, |acc, set| acc.intersection(&set).cloned().collect())
                };
                reply(op, &combined.into_iter().collect::<Vec<_>>())
            }
            _ => Err(ProviderError::unknown_operation(kv::CONTRACT_ID, operation)),
        }
    }
}

/// Drops `key` if it is an expired string: expiry is lazy, as in Redis.
fn expire(data: &mut HashMap<String, Value>, key: &str, now: Instant) {
    if matches!(data.get(key), Some(Value::Text { expires: Some(at), .. }) if *at <= now) {
        data.remove(key);
    }
}

/// `ListClear` / `SetClear`: removes `name` if it holds the right kind of value.
fn clear(
    data: &mut HashMap<String, Value>,
    op: &str,
    name: &str,
    is_kind: fn(&Value) -> bool,
    kind: &str,
) -> Result<Vec<u8>, ProviderError> {
    match data.get(name) {
        None => reply(op, &false),
        Some(value) if is_kind(value) => {
            data.remove(name);
            reply(op, &true)
        }
        Some(other) => Err(wrong_type(op, name, other, kind)),
    }
}

#[async_trait]
impl Provider for MemoryKeyValue {
    fn contract_id(&self) -> &str {
        kv::CONTRACT_ID
    }

    async fn handle_call(&self, call: ProviderCall) -> Result<Vec<u8>, ProviderError> {
        self.apply(&call.operation, &call.payload)
    }
}
