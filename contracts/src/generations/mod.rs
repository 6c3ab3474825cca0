//! The three generations of actor ABI in the lineage, and the translation between an older
//! generation's operations and payloads and the wasmbus ones Weft's providers speak.
//!
//! Providers speak only wasmbus (`HttpServer.HandleRequest`, `KeyValue.Increment`, ...). An
//! actor of an older generation is met half-way in one place, the host's call path: a call to
//! it ([`to_actor`]) is renamed and re-shaped into its SDK's terms and its answer shaped back
//! ([`ToActor::answer`]); a call it makes ([`from_actor`]) is turned into the wasmbus call and
//! the provider's answer shaped into what its SDK decodes ([`FromActor::answer`]). So every
//! provider, in process or on the lattice, serves every generation without knowing of them.
//!
//! The shapes are those of each generation's published SDK crates (the source of truth):
//! `wascc-codec` 0.8 (waSCC) and the `wasmcloud-actor-*` 0.1–0.2 crates generated from
//! `actor-interfaces`' widl (wasmCloud 0.15–0.18). Both write MessagePack maps with field
//! names (`with_struct_map`), and both name operations without an interface prefix.

mod fast;
mod old;

use crate::{CodecError, decode, encode};
use crate::{actor, httpclient, httpserver, keyvalue, logging, messaging, numbergen};
use serde::Serialize;
use std::fmt;

/// Which generation of the lineage's actor ABI a module was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generation {
    /// waSCC (2019–2020): `wascc-actor`; contracts `wascc:*`; `wapc` imports, no `wapc_init`.
    Wascc,
    /// wasmCloud 0.15–0.18 (2020–2021): `wasmcloud-actor-*`; contracts `wasmcloud:*`;
    /// handlers registered in `wapc_init`; operations without an interface prefix.
    WasmCloud018,
    /// wasmbus-rpc (2021 on) and Weft's own SDK: operations `Interface.Method`.
    Wasmbus,
}

impl Generation {
    /// Every generation, oldest first.
    pub const ALL: [Generation; 3] = [
        Generation::Wascc,
        Generation::WasmCloud018,
        Generation::Wasmbus,
    ];

    /// A short name for listings and JSON: `wascc`, `wasmcloud-0.18`, `wasmbus`.
    pub fn short_name(self) -> &'static str {
        match self {
            Generation::Wascc => "wascc",
            Generation::WasmCloud018 => "wasmcloud-0.18",
            Generation::Wasmbus => "wasmbus",
        }
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Generation::Wascc => "waSCC",
            Generation::WasmCloud018 => "wasmCloud 0.15–0.18",
            Generation::Wasmbus => "wasmbus-rpc",
        })
    }
}

/// Whether `contract` is a waSCC contract id (`wascc:…`).
pub fn is_wascc_contract(contract: &str) -> bool {
    contract.starts_with("wascc:")
}

/// The contract id Weft's providers, links and claims checks know `contract` by: a waSCC or
/// wasmCloud 0.x id of a contract that was renamed maps to today's; any other id is itself.
pub fn canonical_contract(contract: &str) -> &str {
    match contract {
        "wascc:http_server" => httpserver::CONTRACT_ID,
        "wascc:http_client" => httpclient::CONTRACT_ID,
        "wascc:keyvalue" => keyvalue::CONTRACT_ID,
        "wascc:messaging" => messaging::CONTRACT_ID,
        "wascc:logging" | "wasmcloud:logging" => logging::CONTRACT_ID,
        "wascc:extras" | "wasmcloud:extras" => numbergen::CONTRACT_ID,
        other => other,
    }
}

/// A payload that could not be translated between generations.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// The generation has no such operation on the contract.
    #[error(
        "{generation} actors have no operation {operation:?} on {contract}; the operations it \
         has are {known}"
    )]
    NoSuchOperation {
        /// The actor's generation.
        generation: Generation,
        /// The contract called.
        contract: String,
        /// The operation asked for.
        operation: String,
        /// The operations that generation has on the contract.
        known: &'static str,
    },
    /// A payload was not what its generation's SDK writes.
    #[error("{0}")]
    Codec(#[from] CodecError),
}

/// How to shape an answer on its way back across generations.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// As it is.
    Same,
    /// Nothing (the old SDK ignores what comes back).
    Empty,
    /// An old `Response` into an [`httpserver::HttpResponse`].
    HttpResponse,
    /// An [`httpclient::HttpResponse`] into an old `Response`.
    ClientResponse,
    /// A wasmCloud 0.15–0.18 `HealthCheckResponse` into today's.
    Health,
    /// Any answer at all means healthy (waSCC's rule).
    HealthFromOk,
    /// `i32` into `AddResponse`.
    Added,
    /// Nothing into `SetResponse { value }`: the value set.
    SetTo(String),
    /// Nothing or `bool` into `DelResponse { key }`.
    Deleted(String),
    /// A `u32` length into `ListResponse { newCount }`.
    ListCount,
    /// A `bool` (one removed or none) into `ListResponse { newCount }`.
    ListRemoved,
    /// A `u32` into `SetOperationResponse`, its field named as the generation names it.
    SetCount(Generation),
    /// `Vec<String>` into `{ values }`.
    Values,
    /// Nothing into wasmCloud 0.15–0.18's `PublishResponse { published: true }`.
    Published,
    /// A [`messaging::ReplyMessage`] into an old `BrokerMessage`.
    Reply,
    /// A GUID, random number or sequence number into the older generations' `GeneratorResult`,
    /// its fields spelled as the generation spelled them.
    Generated(Generated, Generation),
}

/// Which of the `GeneratorResult` fields an answer fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generated {
    Guid,
    Random,
    Sequence,
}

impl Answer {
    fn shape(&self, bytes: Vec<u8>) -> Result<Vec<u8>, CodecError> {
        match self {
            Answer::Same => Ok(bytes),
            Answer::Empty => Ok(Vec::new()),
            Answer::HttpResponse => {
                if let Some(response) = fast::old_response_to_http(&bytes) {
                    return Ok(response);
                }
                let old: old::HttpResponse = decode(&bytes)?;
                encode(&httpserver::HttpResponse {
                    status_code: u16::try_from(old.status_code).unwrap_or(500),
                    header: old
                        .header
                        .into_iter()
                        .map(|(name, value)| (name, vec![value]))
                        .collect(),
                    body: old.body,
                })
            }
            Answer::ClientResponse => {
                let response: httpclient::HttpResponse = decode(&bytes)?;
                encode(&old::HttpResponse {
                    status_code: u32::from(response.status_code),
                    status: String::new(),
                    header: response
                        .header
                        .into_iter()
                        .map(|(name, values)| (name, values.join(", ")))
                        .collect(),
                    body: response.body,
                })
            }
            Answer::Health => {
                let old: old::HealthCheckResponse = decode(&bytes)?;
                encode(&actor::HealthCheckResponse {
                    healthy: old.healthy,
                    message: Some(old.message).filter(|m| !m.is_empty()),
                })
            }
            Answer::HealthFromOk => encode(&actor::HealthCheckResponse {
                healthy: true,
                message: None,
            }),
            Answer::Added => encode(&old::AddResponse {
                value: decode(&bytes)?,
            }),
            Answer::SetTo(value) => encode(&old::SetResponse {
                value: value.clone(),
            }),
            Answer::Deleted(key) => encode(&old::DelResponse { key: key.clone() }),
            Answer::ListCount => encode(&old::ListResponse {
                new_count: i32::try_from(decode::<u32>(&bytes)?).unwrap_or(i32::MAX),
            }),
            Answer::ListRemoved => encode(&old::ListResponse {
                new_count: i32::from(decode::<bool>(&bytes)?),
            }),
            Answer::SetCount(generation) => {
                let count = i32::try_from(decode::<u32>(&bytes)?).unwrap_or(i32::MAX);
                if *generation == Generation::Wascc {
                    encode(&old::WasccSetOperationResponse { new_count: count })
                } else {
                    encode(&old::SetOperationResponse { new_count: count })
                }
            }
            Answer::Values => encode(&old::Values {
                values: decode(&bytes)?,
            }),
            Answer::Published => encode(&old::PublishResponse { published: true }),
            Answer::Generated(what, generation) => {
                let mut result = old::GeneratorResult::default();
                match what {
                    Generated::Guid => result.guid = Some(decode(&bytes)?),
                    Generated::Random => result.random_number = decode(&bytes)?,
                    Generated::Sequence => result.sequence_number = decode(&bytes)?,
                }
                if *generation == Generation::Wascc {
                    encode(&result)
                } else {
                    encode(&old::WasmCloudGeneratorResult::from(result))
                }
            }
            Answer::Reply => {
                let reply: messaging::ReplyMessage = decode(&bytes)?;
                encode(&old::BrokerMessage {
                    subject: reply.subject,
                    reply_to: reply.reply_to.unwrap_or_default(),
                    body: reply.body,
                })
            }
        }
    }
}

/// A call to an older-generation actor, in its SDK's terms.
#[derive(Debug)]
pub struct ToActor {
    /// The operation its SDK registered a handler for.
    pub operation: &'static str,
    /// The payload as its SDK decodes it.
    pub payload: Vec<u8>,
    answer: Answer,
}

impl ToActor {
    /// The actor's answer as the wasmbus caller expects it.
    pub fn answer(&self, bytes: Vec<u8>) -> Result<Vec<u8>, TranslateError> {
        Ok(self.answer.shape(bytes)?)
    }
}

/// The wasmbus operations the host and its providers call on actors; `None` for any other
/// operation (an actor's own, called by another actor), which passes as it is.
pub fn to_actor(
    generation: Generation,
    operation: &str,
    payload: &[u8],
) -> Result<Option<ToActor>, TranslateError> {
    if generation == Generation::Wasmbus {
        return Ok(None);
    }
    let call = match operation {
        httpserver::HANDLE_REQUEST => ToActor {
            operation: old::HANDLE_REQUEST,
            payload: match fast::http_request_to_old(payload) {
                Some(old) => old,
                None => {
                    let request: httpserver::HttpRequest = decode(payload)?;
                    encode(&old::HttpRequest::from(request))?
                }
            },
            answer: Answer::HttpResponse,
        },
        messaging::HANDLE_MESSAGE => {
            let message: messaging::SubMessage = decode(payload)?;
            ToActor {
                operation: if generation == Generation::Wascc {
                    old::WASCC_DELIVER_MESSAGE
                } else {
                    old::HANDLE_MESSAGE
                },
                payload: encode(&old::BrokerMessage {
                    subject: message.subject,
                    reply_to: message.reply_to.unwrap_or_default(),
                    body: message.body,
                })?,
                answer: Answer::Empty,
            }
        }
        actor::HEALTH_REQUEST => ToActor {
            operation: old::HEALTH_REQUEST,
            payload: encode(&old::HealthRequest { placeholder: true })?,
            answer: if generation == Generation::Wascc {
                Answer::HealthFromOk
            } else {
                Answer::Health
            },
        },
        _ => return Ok(None),
    };
    Ok(Some(call))
}

/// A call an older-generation actor made, as the wasmbus call a provider serves.
#[derive(Debug)]
pub struct FromActor {
    /// The operation (`KeyValue.Increment`, ...).
    pub operation: &'static str,
    /// The payload in wasmbus shape.
    pub payload: Vec<u8>,
    answer: Answer,
}

impl FromActor {
    /// The provider's answer as the actor's SDK decodes it.
    pub fn answer(&self, bytes: Vec<u8>) -> Result<Vec<u8>, TranslateError> {
        Ok(self.answer.shape(bytes)?)
    }
}

fn call<T: Serialize>(
    operation: &'static str,
    payload: &T,
    answer: Answer,
) -> Result<FromActor, TranslateError> {
    Ok(FromActor {
        operation,
        payload: encode(payload)?,
        answer,
    })
}

/// Translates a host call an actor of `generation` made on `contract` (already canonical, see
/// [`canonical_contract`]); `None` when it needs none (a wasmbus actor, an actor-to-actor
/// call, a contract the generation did not have).
pub fn from_actor(
    generation: Generation,
    contract: &str,
    operation: &str,
    payload: &[u8],
) -> Result<Option<FromActor>, TranslateError> {
    if generation == Generation::Wasmbus {
        return Ok(None);
    }
    let unknown = |known| TranslateError::NoSuchOperation {
        generation,
        contract: contract.to_string(),
        operation: operation.to_string(),
        known,
    };
    let translated = match contract {
        keyvalue::CONTRACT_ID => keyvalue_call(generation, operation, payload)?
            .ok_or_else(|| unknown(old::KEYVALUE_OPERATIONS))?,
        messaging::CONTRACT_ID => match operation {
            old::PUBLISH => {
                let message: old::BrokerMessage = decode(payload)?;
                let answer = if generation == Generation::Wascc {
                    Answer::Empty
                } else {
                    Answer::Published
                };
                call(
                    messaging::PUBLISH,
                    &messaging::PubMessage {
                        subject: message.subject,
                        reply_to: Some(message.reply_to).filter(|r| !r.is_empty()),
                        body: message.body,
                    },
                    answer,
                )?
            }
            old::REQUEST => {
                let request: old::RequestMessage = decode(payload)?;
                call(
                    messaging::REQUEST,
                    &messaging::RequestMessage {
                        subject: request.subject,
                        body: request.body,
                        timeout_ms: u32::try_from(request.timeout.max(0)).unwrap_or(u32::MAX),
                    },
                    Answer::Reply,
                )?
            }
            _ => return Err(unknown(old::MESSAGING_OPERATIONS)),
        },
        logging::CONTRACT_ID => match operation {
            old::WRITE_LOG => {
                let entry = if generation == Generation::Wascc {
                    let old: old::WasccLogRequest = decode(payload)?;
                    logging::LogEntry {
                        level: old::wascc_level(old.level).into(),
                        text: old.body,
                    }
                } else {
                    let old: old::LogRequest = decode(payload)?;
                    logging::LogEntry {
                        level: old.level,
                        text: old.text,
                    }
                };
                call(logging::WRITE_LOG, &entry, Answer::Empty)?
            }
            _ => return Err(unknown(old::LOGGING_OPERATIONS)),
        },
        httpclient::CONTRACT_ID => {
            let (method, url, header, body) = match (generation, operation) {
                (Generation::Wascc, "PerformRequest") => {
                    let request: old::HttpRequest = decode(payload)?;
                    let url = if request.query_string.is_empty() {
                        request.path
                    } else {
                        format!("{}?{}", request.path, request.query_string)
                    };
                    (request.method, url, request.header, request.body)
                }
                (Generation::WasmCloud018, "Request") => {
                    let request: old::ClientRequest = decode(payload)?;
                    (request.method, request.url, request.headers, request.body)
                }
                (Generation::Wascc, _) => return Err(unknown("PerformRequest")),
                _ => return Err(unknown("Request")),
            };
            call(
                httpclient::REQUEST,
                &httpclient::HttpRequest {
                    method,
                    url,
                    headers: header.into_iter().map(|(k, v)| (k, vec![v])).collect(),
                    body,
                },
                Answer::ClientResponse,
            )?
        }
        numbergen::CONTRACT_ID => {
            let (operation, what) = match operation {
                "RequestGuid" => (numbergen::GENERATE_GUID, Generated::Guid),
                "RequestRandom" => (numbergen::RANDOM_IN_RANGE, Generated::Random),
                "RequestSequence" => (numbergen::NEXT_SEQUENCE, Generated::Sequence),
                _ => return Err(unknown(old::EXTRAS_OPERATIONS)),
            };
            let answer = Answer::Generated(what, generation);
            if what == Generated::Random {
                let range: old::RandomRequest = decode(payload)?;
                let limit = numbergen::RangeLimit {
                    min: range.min,
                    max: range.max,
                };
                call(operation, &limit, answer)?
            } else {
                call(operation, &(), answer)?
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(translated))
}

fn keyvalue_call(
    generation: Generation,
    operation: &str,
    payload: &[u8],
) -> Result<Option<FromActor>, TranslateError> {
    let key = || decode::<old::Key>(payload).map(|k| k.key);
    let key_value = || decode::<old::KeyValue>(payload);
    let translated = match operation {
        "Get" | "KeyExists" => call(keyvalue::GET, &key()?, Answer::Same)?,
        "Add" => {
            let add: old::AddRequest = decode(payload)?;
            call(
                keyvalue::INCREMENT,
                &keyvalue::IncrementRequest {
                    key: add.key,
                    value: add.value,
                },
                Answer::Added,
            )?
        }
        "Set" => {
            let set: old::SetRequest = decode(payload)?;
            call(
                keyvalue::SET,
                &keyvalue::SetRequest {
                    key: set.key,
                    value: set.value.clone(),
                    expires: u32::try_from(set.expires.max(0)).unwrap_or(0),
                },
                Answer::SetTo(set.value),
            )?
        }
        // `Clear` emptied a list by deleting its key in both old SDKs' providers.
        "Del" | "Clear" => {
            let key = key()?;
            call(keyvalue::DEL, &key, Answer::Deleted(key.clone()))?
        }
        "Range" => {
            let range: old::RangeRequest = decode(payload)?;
            call(
                keyvalue::LIST_RANGE,
                &keyvalue::ListRangeRequest {
                    list_name: range.key,
                    start: range.start,
                    stop: range.stop,
                },
                Answer::Values,
            )?
        }
        "Push" => {
            let push = key_value()?;
            call(
                keyvalue::LIST_ADD,
                &keyvalue::ListAddRequest {
                    list_name: push.key,
                    value: push.value,
                },
                Answer::ListCount,
            )?
        }
        "ListItemDelete" => {
            let del = key_value()?;
            call(
                keyvalue::LIST_DEL,
                &keyvalue::ListDelRequest {
                    list_name: del.key,
                    value: del.value,
                },
                Answer::ListRemoved,
            )?
        }
        "SetAdd" => {
            let add = key_value()?;
            call(
                keyvalue::SET_ADD,
                &keyvalue::SetAddRequest {
                    set_name: add.key,
                    value: add.value,
                },
                Answer::SetCount(generation),
            )?
        }
        "SetRemove" => {
            let del = key_value()?;
            call(
                keyvalue::SET_DEL,
                &keyvalue::SetDelRequest {
                    set_name: del.key,
                    value: del.value,
                },
                Answer::SetCount(generation),
            )?
        }
        "SetUnion" | "SetIntersection" => {
            let keys: old::Keys = decode(payload)?;
            let op = if operation == "SetUnion" {
                keyvalue::SET_UNION
            } else {
                keyvalue::SET_INTERSECTION
            };
            call(op, &keys.keys, Answer::Values)?
        }
        "SetQuery" => call(keyvalue::SET_QUERY, &key()?, Answer::Values)?,
        _ => return Ok(None),
    };
    Ok(Some(translated))
}

#[cfg(test)]
mod tests;
