//! The wire types of the two older generations, as `wascc-codec` 0.8 and the
//! `wasmcloud-actor-*` 0.1–0.2 crates declare them. Where the two differ it is said; what is
//! decoded from an actor is lenient (`default`), what is encoded for one carries every field
//! its SDK requires.

use crate::httpserver;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The operation both older SDKs register for HTTP requests.
pub const HANDLE_REQUEST: &str = "HandleRequest";
/// wasmCloud 0.15–0.18's operation for a subscribed message.
pub const HANDLE_MESSAGE: &str = "HandleMessage";
/// waSCC's operation for a subscribed message.
pub const WASCC_DELIVER_MESSAGE: &str = "DeliverMessage";
/// The health check both older SDKs answer.
pub const HEALTH_REQUEST: &str = "HealthRequest";
/// Messaging: publish a `BrokerMessage`.
pub const PUBLISH: &str = "Publish";
/// Messaging: a request answered with a `BrokerMessage`.
pub const REQUEST: &str = "Request";
/// Logging: write a line.
pub const WRITE_LOG: &str = "WriteLog";

/// For errors: what each older contract offers.
pub const KEYVALUE_OPERATIONS: &str = "Get, Add, Set, Del, Clear, Range, Push, ListItemDelete, \
                                       SetAdd, SetRemove, SetUnion, SetIntersection, SetQuery, \
                                       KeyExists";
/// For errors.
pub const MESSAGING_OPERATIONS: &str = "Publish, Request";
/// For errors.
pub const LOGGING_OPERATIONS: &str = "WriteLog";
/// For errors.
pub const EXTRAS_OPERATIONS: &str = "RequestGuid, RequestRandom, RequestSequence";

/// An HTTP request: header values are single strings (the wasmbus one has lists).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    #[serde(rename = "queryString")]
    pub query_string: String,
    pub header: HashMap<String, String>,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl From<httpserver::HttpRequest> for HttpRequest {
    /// A header sent more than once becomes its values joined by `, ` (RFC 9110 §5.3).
    fn from(request: httpserver::HttpRequest) -> Self {
        HttpRequest {
            method: request.method,
            path: request.path,
            query_string: request.query_string,
            header: request
                .header
                .into_iter()
                .map(|(name, values)| (name, values.join(", ")))
                .collect(),
            body: request.body,
        }
    }
}

/// An HTTP response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    #[serde(rename = "statusCode", default)]
    pub status_code: u32,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub header: HashMap<String, String>,
    #[serde(with = "serde_bytes", default)]
    pub body: Vec<u8>,
}

/// The health request ("since we cannot serialize empty requests, this placeholder").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthRequest {
    pub placeholder: bool,
}

/// wasmCloud 0.15–0.18's health answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HealthCheckResponse {
    #[serde(default)]
    pub healthy: bool,
    #[serde(default)]
    pub message: String,
}

/// `{ key }`: Get, Del, Clear, SetQuery, KeyExists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Key {
    #[serde(default)]
    pub key: String,
}

/// `{ key, value }` with a string value: Push, ListItemDelete, SetAdd, SetRemove.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyValue {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// `{ keys }`: SetUnion, SetIntersection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Keys {
    #[serde(default)]
    pub keys: Vec<String>,
}

/// Add (atomic increment).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddRequest {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: i32,
}

/// Set; `expires` in seconds, 0 for none.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SetRequest {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub expires: i32,
}

/// Range of a list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RangeRequest {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub start: i32,
    #[serde(default)]
    pub stop: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddResponse {
    pub value: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetResponse {
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DelResponse {
    pub key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListResponse {
    #[serde(rename = "newCount")]
    pub new_count: i32,
}

/// wasmCloud 0.15–0.18 spells this field `new_count` (its widl did).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetOperationResponse {
    pub new_count: i32,
}

/// waSCC spells it `newCount` (camelCase, as all its fields).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WasccSetOperationResponse {
    #[serde(rename = "newCount")]
    pub new_count: i32,
}

/// `ListRangeResponse` and `SetQueryResponse`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Values {
    pub values: Vec<String>,
}

/// A message: what an actor publishes, what it is delivered, a request's reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerMessage {
    #[serde(default)]
    pub subject: String,
    #[serde(rename = "replyTo", default)]
    pub reply_to: String,
    #[serde(with = "serde_bytes", default)]
    pub body: Vec<u8>,
}

/// A request; `timeout` in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequestMessage {
    #[serde(default)]
    pub subject: String,
    #[serde(with = "serde_bytes", default)]
    pub body: Vec<u8>,
    #[serde(default)]
    pub timeout: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishResponse {
    pub published: bool,
}

/// wasmCloud 0.15–0.18's `WriteLog(target, level, text)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogRequest {
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub text: String,
}

/// waSCC's `WriteLogRequest`: a numeric level.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WasccLogRequest {
    #[serde(default)]
    pub level: u32,
    #[serde(default)]
    pub body: String,
}

/// waSCC's levels: 0 off, 1 error, 2 warn, 3 info, 4 debug, 5 trace.
pub fn wascc_level(level: u32) -> &'static str {
    match level {
        1 => "error",
        2 => "warn",
        4 | 5 => "debug",
        _ => "info",
    }
}

/// The extras request of both older generations (`GeneratorRequest`): flags saying what the
/// operation name already says, and a random number's bounds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct RandomRequest {
    #[serde(default)]
    pub min: u32,
    #[serde(default)]
    pub max: u32,
}

/// waSCC's answer to every extras request: the field asked for filled, the others empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GeneratorResult {
    pub guid: Option<String>,
    #[serde(rename = "sequenceNumber")]
    pub sequence_number: u64,
    #[serde(rename = "randomNumber")]
    pub random_number: u32,
}

/// wasmCloud 0.15–0.18's (`wasmcloud-actor-extras` 0.1): `random_number` in snake case.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WasmCloudGeneratorResult {
    pub guid: Option<String>,
    #[serde(rename = "sequenceNumber")]
    pub sequence_number: u64,
    pub random_number: u32,
}

impl From<GeneratorResult> for WasmCloudGeneratorResult {
    fn from(result: GeneratorResult) -> Self {
        WasmCloudGeneratorResult {
            guid: result.guid,
            sequence_number: result.sequence_number,
            random_number: result.random_number,
        }
    }
}

/// wasmCloud 0.15–0.18's outbound request, `Request(method, url, headers, body)`. (waSCC's
/// is its HTTP `Request`, the URL in `path`.)
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientRequest {
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub headers: HashMap<String, String>,
    #[serde(with = "serde_bytes", default)]
    pub body: Vec<u8>,
}
