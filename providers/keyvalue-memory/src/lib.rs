//! # weft-keyvalue-memory — `wasmcloud:keyvalue` in memory
//!
//! The key-value provider `weft up` uses when no Redis is configured: the whole contract (get,
//! set with expiry, del, contains, increment, lists, sets) on an in-process map, with Redis's
//! semantics where the contract leaves them open, so an app moves to the Redis provider
//! without surprises: one keyspace shared by every linked actor, as actors sharing a Redis
//! database would be; a key holds one kind of value and using it as another is an error
//! (Redis's `WRONGTYPE`); list ranges take Redis's inclusive, negative-from-the-end indexes.
//!
//! **What it is not:** durable or shared between processes. Data lives as long as the provider,
//! and a replacement in the same process takes it over (`weft ctl update provider`).
//! Nor unbounded: a store holds at most [`Quota::max_keys`] keys and [`Quota::max_bytes`]
//! bytes (keys and values, plus a fixed overhead per key and per list or set member, about
//! what each takes in memory); a write past either is refused before anything is stored, as
//! Redis refuses writes past its `maxmemory`, and every read and delete still works.
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
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use weft_contracts::keyvalue::{self as kv, GetResponse};
use weft_contracts::{decode, encode};
use weft_provider_sdk::{HeldState, Provider, ProviderCall, ProviderError, async_trait};

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

/// Bytes counted for each key beyond its name and value: what a map entry costs.
const KEY_OVERHEAD: usize = 64;
/// Bytes counted for each list or set member beyond its text.
const MEMBER_OVERHEAD: usize = 32;
/// Default for [`Quota::max_keys`].
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// Default for [`Quota::max_bytes`] (64 MiB).
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

/// How much one store may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Keys (strings, lists and sets together).
    pub max_keys: usize,
    /// Bytes of keys and values, with [`KEY_OVERHEAD`] per key and [`MEMBER_OVERHEAD`] per list
    /// or set member.
    pub max_bytes: usize,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            max_keys: DEFAULT_MAX_KEYS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// The bytes `key` holding `value` counts for.
fn weight(key: &str, value: &Value) -> usize {
    let members = |len: usize, bytes: usize| len * MEMBER_OVERHEAD + bytes;
    KEY_OVERHEAD
        + key.len()
        + match value {
            Value::Text { value, .. } => value.len(),
            Value::List(list) => members(list.len(), list.iter().map(String::len).sum()),
            Value::Set(set) => members(set.len(), set.iter().map(String::len).sum()),
        }
}

/// Operations between two sweeps for expired keys nobody reads again.
const SWEEP_EVERY_OPS: u32 = 4096;

#[derive(Default)]
struct Store {
    data: Data,
    ops_since_sweep: u32,
}

/// The keys, and what they count for against the quota.
#[derive(Default)]
struct Data {
    values: HashMap<String, Value>,
    /// The sum of every key's [`weight`].
    bytes: usize,
}

impl Data {
    /// Removes `key`, giving back what it counted for.
    fn remove(&mut self, key: &str) -> Option<Value> {
        let value = self.values.remove(key)?;
        self.bytes = self.bytes.saturating_sub(weight(key, &value));
        Some(value)
    }

    /// Drops `key` if it is an expired string: expiry is lazy, as in Redis.
    fn expire(&mut self, key: &str, now: Instant) {
        if matches!(self.values.get(key), Some(Value::Text { expires: Some(at), .. }) if *at <= now)
        {
            self.remove(key);
        }
    }

    /// Checks that `key` may grow by `added` bytes (a new key if it is not there), before
    /// anything is stored; then counts them.
    fn grow(
        &mut self,
        quota: &Quota,
        op: &str,
        key: &str,
        added: usize,
    ) -> Result<(), ProviderError> {
        let new_key = !self.values.contains_key(key);
        let added = added + if new_key { KEY_OVERHEAD + key.len() } else { 0 };
        if new_key && self.values.len() >= quota.max_keys {
            return Err(full(
                op,
                key,
                format!("it holds {} keys, its max_keys", self.values.len()),
            ));
        }
        let bytes = self.bytes.saturating_add(added);
        if bytes > quota.max_bytes {
            return Err(full(
                op,
                key,
                format!(
                    "it holds {} bytes and this adds {added}, over its max_bytes of {}",
                    self.bytes, quota.max_bytes
                ),
            ));
        }
        self.bytes = bytes;
        Ok(())
    }

    /// Checks that `key`'s value may go from `old_len` to `new_len` bytes (`old_len` 0 for a
    /// new key), before anything is stored; then counts the difference.
    fn resize(
        &mut self,
        quota: &Quota,
        op: &str,
        key: &str,
        old_len: usize,
        new_len: usize,
    ) -> Result<(), ProviderError> {
        if new_len <= old_len && self.values.contains_key(key) {
            self.shrink(old_len - new_len);
            return Ok(());
        }
        self.grow(quota, op, key, new_len.saturating_sub(old_len))
    }

    /// Counts `removed` bytes of `key`'s value as given back.
    fn shrink(&mut self, removed: usize) {
        self.bytes = self.bytes.saturating_sub(removed);
    }
}

fn full(op: &str, key: &str, why: String) -> ProviderError {
    ProviderError::Backend(format!(
        "{op} of key {key:?} refused: the in-memory key-value store is full ({why}). Delete \
         keys, or raise max_keys / max_bytes in the provider's config"
    ))
}

impl Store {
    /// Now and then, drops every expired key, so unread ones do not pile up.
    fn sweep(&mut self, now: Instant) {
        self.ops_since_sweep += 1;
        if self.ops_since_sweep >= SWEEP_EVERY_OPS {
            self.ops_since_sweep = 0;
            let data = &mut self.data;
            let mut freed = 0;
            data.values.retain(|key, v| {
                let expired = matches!(v, Value::Text { expires: Some(at), .. } if *at <= now);
                if expired {
                    freed += weight(key, v);
                }
                !expired
            });
            data.shrink(freed);
        }
    }
}

/// The in-memory key-value provider.
#[derive(Default)]
pub struct MemoryKeyValue {
    /// The store, shared with a replacement that took it over ([`Provider::take_over`]).
    store: RwLock<Arc<Mutex<Store>>>,
    quota: Quota,
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
    /// An empty store with the default [`Quota`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that holds at most `quota`.
    pub fn with_quota(quota: Quota) -> Self {
        MemoryKeyValue {
            store: RwLock::default(),
            quota,
        }
    }

    fn store(&self) -> Arc<Mutex<Store>> {
        self.store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keys held and bytes they count for against the quota.
    pub fn usage(&self) -> (usize, usize) {
        let store = self.store();
        let store = store.lock().unwrap_or_else(PoisonError::into_inner);
        (store.data.values.len(), store.data.bytes)
    }

    /// Performs one contract operation on an encoded request and returns the encoded answer.
    pub fn apply(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, ProviderError> {
        let store = self.store();
        let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        store.sweep(now);
        let op = operation;
        let quota = &self.quota;
        let data = &mut store.data;
        // Every key an operation names is expired (or not) before the operation sees it.
        let key_arg = |data: &mut Data| -> Result<String, ProviderError> {
            let key: String = args(op, payload)?;
            data.expire(&key, now);
            Ok(key)
        };
        match operation {
            kv::GET => {
                let key = key_arg(data)?;
                let response = match data.values.get(&key) {
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
                let held = data.values.get(&request.key).map_or(0, |old| {
                    weight(&request.key, old) - KEY_OVERHEAD - request.key.len()
                });
                data.resize(quota, op, &request.key, held, request.value.len())?;
                data.values.insert(
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
                reply(op, &data.values.contains_key(&key))
            }
            kv::INCREMENT => {
                let request: kv::IncrementRequest = args(op, payload)?;
                data.expire(&request.key, now);
                let (current, old_len) = match data.values.get(&request.key) {
                    None => (Ok(0), 0),
                    Some(Value::Text { value, .. }) => (value.parse::<i32>(), value.len()),
                    Some(other) => return Err(wrong_type(op, &request.key, other, "a number")),
                };
                let current = current.map_err(|_| {
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
                let next_text = next.to_string();
                data.resize(quota, op, &request.key, old_len, next_text.len())?;
                match data.values.get_mut(&request.key) {
                    Some(Value::Text { value, .. }) => *value = next_text,
                    _ => {
                        data.values.insert(
                            request.key,
                            Value::Text {
                                value: next_text,
                                expires: None,
                            },
                        );
                    }
                }
                reply(op, &next)
            }
            kv::LIST_ADD => {
                let request: kv::ListAddRequest = args(op, payload)?;
                data.expire(&request.list_name, now);
                if let Some(other @ (Value::Text { .. } | Value::Set(_))) =
                    data.values.get(&request.list_name)
                {
                    return Err(wrong_type(op, &request.list_name, other, "a list"));
                }
                data.grow(
                    quota,
                    op,
                    &request.list_name,
                    MEMBER_OVERHEAD + request.value.len(),
                )?;
                let entry = data
                    .values
                    .entry(request.list_name)
                    .or_insert(Value::List(VecDeque::new()));
                let Value::List(list) = entry else {
                    return Err(ProviderError::Backend(
                        "a list turned into another kind".into(),
                    ));
                };
                list.push_back(request.value);
                reply(op, &u32::try_from(list.len()).unwrap_or(u32::MAX))
            }
            kv::LIST_DEL => {
                let request: kv::ListDelRequest = args(op, payload)?;
                data.expire(&request.list_name, now);
                let removed = match data.values.get_mut(&request.list_name) {
                    None => None,
                    Some(Value::List(list)) => list
                        .iter()
                        .position(|v| *v == request.value)
                        .and_then(|at| list.remove(at)),
                    Some(other) => return Err(wrong_type(op, &request.list_name, other, "a list")),
                };
                if let Some(member) = &removed {
                    data.shrink(MEMBER_OVERHEAD + member.len());
                }
                reply(op, &removed.is_some())
            }
            kv::LIST_RANGE => {
                let request: kv::ListRangeRequest = args(op, payload)?;
                data.expire(&request.list_name, now);
                let values = match data.values.get(&request.list_name) {
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
                data.expire(&request.set_name, now);
                match data.values.get(&request.set_name) {
                    Some(Value::Set(set)) if set.contains(&request.value) => {
                        return reply(op, &0u32);
                    }
                    Some(other @ (Value::Text { .. } | Value::List(_))) => {
                        return Err(wrong_type(op, &request.set_name, other, "a set"));
                    }
                    _ => {}
                }
                data.grow(
                    quota,
                    op,
                    &request.set_name,
                    MEMBER_OVERHEAD + request.value.len(),
                )?;
                let entry = data
                    .values
                    .entry(request.set_name)
                    .or_insert(Value::Set(BTreeSet::new()));
                let Value::Set(set) = entry else {
                    return Err(ProviderError::Backend(
                        "a set turned into another kind".into(),
                    ));
                };
                reply(op, &u32::from(set.insert(request.value)))
            }
            kv::SET_DEL => {
                let request: kv::SetDelRequest = args(op, payload)?;
                data.expire(&request.set_name, now);
                let removed = match data.values.get_mut(&request.set_name) {
                    None => false,
                    Some(Value::Set(set)) => set.remove(&request.value),
                    Some(other) => return Err(wrong_type(op, &request.set_name, other, "a set")),
                };
                if removed {
                    data.shrink(MEMBER_OVERHEAD + request.value.len());
                }
                reply(op, &u32::from(removed))
            }
            kv::SET_QUERY => {
                let name = key_arg(data)?;
                let values: Vec<String> = match data.values.get(&name) {
                    None => Vec::new(),
                    Some(Value::Set(set)) => set.iter().cloned().collect(),
                    Some(other) => return Err(wrong_type(op, &name, other, "a set")),
                };
                reply(op, &values)
            }
            kv::SET_UNION | kv::SET_INTERSECTION => {
                let names: Vec<String> = args(op, payload)?;
                for name in &names {
                    data.expire(name, now);
                }
                let mut sets = Vec::with_capacity(names.len());
                for name in &names {
                    match data.values.get(name) {
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

/// `ListClear` / `SetClear`: removes `name` if it holds the right kind of value.
fn clear(
    data: &mut Data,
    op: &str,
    name: &str,
    is_kind: fn(&Value) -> bool,
    kind: &str,
) -> Result<Vec<u8>, ProviderError> {
    match data.values.get(name) {
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

    fn held_state(&self) -> Option<HeldState> {
        Some(self.store())
    }

    fn keeps_data(&self) -> bool {
        true
    }

    fn replaceable_by_process(&self) -> Result<(), String> {
        Err("it keeps its data in its process's memory, and a new process would start empty".into())
    }

    /// Shares its predecessor's store: the data, not a copy of it, so nothing written while
    /// the old instance finishes its calls is lost. Its own quota applies from now on.
    async fn take_over(&self, state: HeldState) -> Result<(), ProviderError> {
        let store = state.downcast::<Mutex<Store>>().map_err(|_| {
            ProviderError::Backend(
                "the running provider's state is not an in-memory key-value store".into(),
            )
        })?;
        *self.store.write().unwrap_or_else(PoisonError::into_inner) = store;
        Ok(())
    }
}
