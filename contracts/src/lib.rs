//! # weft-contracts — the wire types of Weft's capability contracts
//!
//! The requests and responses that cross the waPC boundary between actors and capability
//! providers, with the names, fields and encodings of wasmCloud 0.x's published
//! `wasmcloud-interface-*` 0.12 crates, so that actors built against those crates talk to Weft's
//! providers unmodified. Payloads are MessagePack with named fields (`rmp_serde::to_vec_named`,
//! what `wasmbus_rpc::common::serialize` writes); operation names are `Interface.Method`.
//!
//! **What it is not:** no transport, no async, no host or guest code: plain data, usable from
//! the host and from wasm32 actors alike.
//!
//! ```
//! use weft_contracts::{decode, encode, keyvalue::IncrementRequest};
//!
//! # fn main() -> Result<(), weft_contracts::CodecError> {
//! let request = IncrementRequest { key: "visits".into(), value: 1 };
//! let bytes = encode(&request)?;
//! assert_eq!(decode::<IncrementRequest>(&bytes)?, request);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A payload that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Encoding failed (only for values MessagePack cannot represent).
    #[error("could not encode the payload as MessagePack: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// The bytes are not the MessagePack of the expected type.
    #[error("could not decode the payload as {expected}: {source}")]
    Decode {
        /// The type expected.
        expected: &'static str,
        /// What the decoder said.
        #[source]
        source: rmp_serde::decode::Error,
    },
}

/// Encodes a value as wasmCloud 0.x does: MessagePack, structs as maps with field names.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(rmp_serde::to_vec_named(value)?)
}

/// As [`encode`], into a buffer the caller sized: `encode` starts from an empty one, which
/// grows (and copies) a few times for any payload of some size.
pub fn encode_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), CodecError> {
    Ok(rmp_serde::encode::write_named(out, value)?)
}

/// Decodes a value from MessagePack (a struct from a named map or an array).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    rmp_serde::from_slice(bytes).map_err(|source| CodecError::Decode {
        expected: std::any::type_name::<T>(),
        source,
    })
}

pub mod generations;
pub mod invocation;
pub mod link;
pub mod secret;

/// `wasmcloud:httpserver`: the provider calls the actor.
pub mod httpserver {
    use serde::{Deserialize, Serialize};
    use std::collections::HashMap;

    /// The contract id.
    pub const CONTRACT_ID: &str = "wasmcloud:httpserver";
    /// The operation the provider calls on the actor.
    pub const HANDLE_REQUEST: &str = "HttpServer.HandleRequest";

    /// Header name → its values.
    pub type HeaderMap = HashMap<String, Vec<String>>;

    /// An HTTP request as the actor receives it.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct HttpRequest {
        /// `GET`, `POST`, ...
        #[serde(default)]
        pub method: String,
        /// The path, without the query string.
        #[serde(default)]
        pub path: String,
        /// The raw query string, without `?`.
        #[serde(rename = "queryString", default)]
        pub query_string: String,
        /// The headers. Required on the wire: `wasmcloud-interface-httpserver` has no default.
        pub header: HeaderMap,
        /// The body.
        #[serde(with = "serde_bytes", default)]
        pub body: Vec<u8>,
    }

    /// The actor's answer.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct HttpResponse {
        /// HTTP status code.
        #[serde(rename = "statusCode", default)]
        pub status_code: u16,
        /// Response headers.
        #[serde(default)]
        pub header: HeaderMap,
        /// The body.
        #[serde(with = "serde_bytes", default)]
        pub body: Vec<u8>,
    }
}

/// `wasmcloud:httpclient`: the actor calls the provider (`wasmcloud-interface-httpclient`).
pub mod httpclient {
    use crate::httpserver::HeaderMap;
    use serde::{Deserialize, Serialize};

    /// The contract id.
    pub const CONTRACT_ID: &str = "wasmcloud:httpclient";
    /// [`HttpRequest`] → [`HttpResponse`].
    pub const REQUEST: &str = "HttpClient.Request";

    /// A request to send.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct HttpRequest {
        /// `GET`, `POST`, ...
        #[serde(default)]
        pub method: String,
        /// The absolute URL, `http://HOST[:PORT]/PATH[?QUERY]`.
        #[serde(default)]
        pub url: String,
        /// Header name → its values.
        #[serde(default)]
        pub headers: HeaderMap,
        /// The body.
        #[serde(with = "serde_bytes", default)]
        pub body: Vec<u8>,
    }

    /// What the server answered.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct HttpResponse {
        /// HTTP status code.
        #[serde(rename = "statusCode", default)]
        pub status_code: u16,
        /// Response headers.
        #[serde(default)]
        pub header: HeaderMap,
        /// The body.
        #[serde(with = "serde_bytes", default)]
        pub body: Vec<u8>,
    }
}

/// `wasmcloud:blobstore`: containers of objects (`wasmcloud-interface-blobstore`). Objects go
/// whole in one chunk each way here: `PutChunk` and chunked downloads are not served.
pub mod blobstore {
    use serde::{Deserialize, Serialize};

    /// The contract id.
    pub const CONTRACT_ID: &str = "wasmcloud:blobstore";
    /// Container name → `bool`.
    pub const CONTAINER_EXISTS: &str = "Blobstore.ContainerExists";
    /// Container name → nothing.
    pub const CREATE_CONTAINER: &str = "Blobstore.CreateContainer";
    /// Container name → [`ContainerMetadata`].
    pub const GET_CONTAINER_INFO: &str = "Blobstore.GetContainerInfo";
    /// Nothing → `Vec<ContainerMetadata>`.
    pub const LIST_CONTAINERS: &str = "Blobstore.ListContainers";
    /// `Vec<String>` container names → `Vec<ItemResult>` (the failures).
    pub const REMOVE_CONTAINERS: &str = "Blobstore.RemoveContainers";
    /// [`ContainerObject`] → `bool`.
    pub const OBJECT_EXISTS: &str = "Blobstore.ObjectExists";
    /// [`ListObjectsRequest`] → [`ListObjectsResponse`].
    pub const LIST_OBJECTS: &str = "Blobstore.ListObjects";
    /// [`RemoveObjectsRequest`] → `Vec<ItemResult>` (the failures).
    pub const REMOVE_OBJECTS: &str = "Blobstore.RemoveObjects";
    /// [`PutObjectRequest`] → [`PutObjectResponse`].
    pub const PUT_OBJECT: &str = "Blobstore.PutObject";
    /// [`GetObjectRequest`] → [`GetObjectResponse`].
    pub const GET_OBJECT: &str = "Blobstore.GetObject";

    /// A container.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ContainerMetadata {
        /// Its name.
        #[serde(rename = "containerId")]
        pub container_id: String,
    }

    /// An object in a container.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ContainerObject {
        /// The container.
        #[serde(rename = "containerId", default)]
        pub container_id: String,
        /// The object.
        #[serde(rename = "objectId", default)]
        pub object_id: String,
    }

    /// An object's name and size.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ObjectMetadata {
        /// Its container.
        #[serde(rename = "containerId")]
        pub container_id: String,
        /// Its name.
        #[serde(rename = "objectId")]
        pub object_id: String,
        /// Bytes.
        #[serde(default)]
        pub size: u64,
    }

    /// A part of an object; here always the whole of it.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Chunk {
        /// The object.
        #[serde(rename = "objectId", default)]
        pub object_id: String,
        /// Its container.
        #[serde(rename = "containerId", default)]
        pub container_id: String,
        /// The bytes.
        #[serde(with = "serde_bytes", default)]
        pub bytes: Vec<u8>,
        /// Where in the object they start.
        #[serde(default)]
        pub offset: u64,
        /// Whether this is the last chunk.
        #[serde(rename = "isLast", default)]
        pub is_last: bool,
    }

    /// `PutObject`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PutObjectRequest {
        /// The object's name, container and bytes.
        pub chunk: Chunk,
        /// Its MIME type.
        #[serde(
            rename = "contentType",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub content_type: Option<String>,
        /// Its content encoding.
        #[serde(
            rename = "contentEncoding",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub content_encoding: Option<String>,
    }

    /// `PutObject`'s answer: a stream id only for chunked uploads, never given here.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PutObjectResponse {
        /// For `PutChunk`; `None`.
        #[serde(rename = "streamId", default, skip_serializing_if = "Option::is_none")]
        pub stream_id: Option<String>,
    }

    /// `GetObject`: the whole object, or `rangeStart..=rangeEnd` of it.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct GetObjectRequest {
        /// The container.
        #[serde(rename = "containerId", default)]
        pub container_id: String,
        /// The object.
        #[serde(rename = "objectId", default)]
        pub object_id: String,
        /// First byte, inclusive.
        #[serde(
            rename = "rangeStart",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub range_start: Option<u64>,
        /// Last byte, inclusive.
        #[serde(rename = "rangeEnd", default, skip_serializing_if = "Option::is_none")]
        pub range_end: Option<u64>,
    }

    /// `GetObject`'s answer.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct GetObjectResponse {
        /// Whether it was found and read.
        #[serde(default)]
        pub success: bool,
        /// Why not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<String>,
        /// The bytes.
        #[serde(
            rename = "initialChunk",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub initial_chunk: Option<Chunk>,
        /// The object's whole length.
        #[serde(rename = "contentLength", default)]
        pub content_length: u64,
    }

    /// `ListObjects`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ListObjectsRequest {
        /// The container.
        #[serde(rename = "containerId", default)]
        pub container_id: String,
        /// At most this many (the provider's bound applies too).
        #[serde(rename = "maxItems", default, skip_serializing_if = "Option::is_none")]
        pub max_items: Option<u32>,
    }

    /// `ListObjects`' answer, sorted by name.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ListObjectsResponse {
        /// The objects.
        pub objects: Vec<ObjectMetadata>,
        /// Whether that is all of them.
        #[serde(rename = "isLast", default)]
        pub is_last: bool,
    }

    /// `RemoveObjects`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RemoveObjectsRequest {
        /// The container.
        #[serde(rename = "containerId", default)]
        pub container_id: String,
        /// The objects.
        #[serde(default)]
        pub objects: Vec<String>,
    }

    /// One item that an operation on many could not do.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ItemResult {
        /// The item.
        #[serde(default)]
        pub key: String,
        /// Always `false` in the lists answered.
        #[serde(default)]
        pub success: bool,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<String>,
    }
}

/// `wasmcloud:keyvalue`: the actor calls the provider.
pub mod keyvalue {
    use serde::{Deserialize, Serialize};

    /// The contract id.
    pub const CONTRACT_ID: &str = "wasmcloud:keyvalue";

    /// `String` key → [`GetResponse`].
    pub const GET: &str = "KeyValue.Get";
    /// [`SetRequest`] → nothing.
    pub const SET: &str = "KeyValue.Set";
    /// `String` key → `bool` (whether it existed).
    pub const DEL: &str = "KeyValue.Del";
    /// `String` key → `bool`.
    pub const CONTAINS: &str = "KeyValue.Contains";
    /// [`IncrementRequest`] → `i32` (the new value).
    pub const INCREMENT: &str = "KeyValue.Increment";
    /// [`ListAddRequest`] → `u32` (the new length).
    pub const LIST_ADD: &str = "KeyValue.ListAdd";
    /// `String` list name → `bool` (whether it existed).
    pub const LIST_CLEAR: &str = "KeyValue.ListClear";
    /// [`ListDelRequest`] → `bool` (whether a value was removed).
    pub const LIST_DEL: &str = "KeyValue.ListDel";
    /// [`ListRangeRequest`] → `Vec<String>`.
    pub const LIST_RANGE: &str = "KeyValue.ListRange";
    /// [`SetAddRequest`] → `u32` (values added: 0 or 1).
    pub const SET_ADD: &str = "KeyValue.SetAdd";
    /// [`SetDelRequest`] → `u32` (values removed: 0 or 1).
    pub const SET_DEL: &str = "KeyValue.SetDel";
    /// `Vec<String>` set names → `Vec<String>`.
    pub const SET_INTERSECTION: &str = "KeyValue.SetIntersection";
    /// `String` set name → `Vec<String>`.
    pub const SET_QUERY: &str = "KeyValue.SetQuery";
    /// `Vec<String>` set names → `Vec<String>`.
    pub const SET_UNION: &str = "KeyValue.SetUnion";
    /// `String` set name → `bool` (whether it existed).
    pub const SET_CLEAR: &str = "KeyValue.SetClear";

    /// Answer to `Get`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct GetResponse {
        /// The value, empty when absent.
        #[serde(default)]
        pub value: String,
        /// Whether the key existed.
        #[serde(default)]
        pub exists: bool,
    }

    /// `Set`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct SetRequest {
        /// The key.
        #[serde(default)]
        pub key: String,
        /// The value.
        #[serde(default)]
        pub value: String,
        /// Seconds to live; 0 for no expiry.
        #[serde(default)]
        pub expires: u32,
    }

    /// `Increment`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct IncrementRequest {
        /// The key.
        #[serde(default)]
        pub key: String,
        /// Amount to add (may be negative).
        #[serde(default)]
        pub value: i32,
    }

    /// `ListAdd`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ListAddRequest {
        /// The list.
        #[serde(rename = "listName", default)]
        pub list_name: String,
        /// The value to append.
        #[serde(default)]
        pub value: String,
    }

    /// `ListDel`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ListDelRequest {
        /// The list.
        #[serde(rename = "listName", default)]
        pub list_name: String,
        /// The value to remove (its first occurrence).
        #[serde(default)]
        pub value: String,
    }

    /// `ListRange`: inclusive indexes, negative ones counted from the end (Redis `LRANGE`).
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ListRangeRequest {
        /// The list.
        #[serde(rename = "listName", default)]
        pub list_name: String,
        /// First index.
        #[serde(default)]
        pub start: i32,
        /// Last index, inclusive.
        #[serde(default)]
        pub stop: i32,
    }

    /// `SetAdd`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct SetAddRequest {
        /// The set.
        #[serde(rename = "setName", default)]
        pub set_name: String,
        /// The value.
        #[serde(default)]
        pub value: String,
    }

    /// `SetDel`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct SetDelRequest {
        /// The set.
        #[serde(rename = "setName", default)]
        pub set_name: String,
        /// The value.
        #[serde(default)]
        pub value: String,
    }
}

/// `wasmcloud:messaging`: actors publish and request; the provider delivers subscribed
/// messages to `MessageSubscriber.HandleMessage` (`wasmcloud-interface-messaging` 0.x).
pub mod messaging {
    use serde::{Deserialize, Serialize};

    /// The contract id.
    pub const CONTRACT_ID: &str = "wasmcloud:messaging";
    /// Actor → provider: publish a [`PubMessage`]; answers nothing.
    pub const PUBLISH: &str = "Messaging.Publish";
    /// Actor → provider: a [`RequestMessage`], answered with a [`ReplyMessage`].
    pub const REQUEST: &str = "Messaging.Request";
    /// Provider → actor: a [`SubMessage`] from a subscription; answers nothing.
    pub const HANDLE_MESSAGE: &str = "MessageSubscriber.HandleMessage";

    /// A message to publish.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PubMessage {
        /// Its subject.
        #[serde(default)]
        pub subject: String,
        /// Where replies should go.
        #[serde(rename = "replyTo", default, skip_serializing_if = "Option::is_none")]
        pub reply_to: Option<String>,
        /// The payload.
        #[serde(with = "serde_bytes", default)]
        pub body: Vec<u8>,
    }

    /// A request that waits for one reply.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RequestMessage {
        /// Its subject.
        #[serde(default)]
        pub subject: String,
        /// The payload.
        #[serde(with = "serde_bytes", default)]
        pub body: Vec<u8>,
        /// How long to wait for the reply, milliseconds.
        #[serde(rename = "timeoutMs", default)]
        pub timeout_ms: u32,
    }

    /// The reply to a [`RequestMessage`].
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ReplyMessage {
        /// The subject it came on.
        #[serde(default)]
        pub subject: String,
        /// Where replies to it should go.
        #[serde(rename = "replyTo", default, skip_serializing_if = "Option::is_none")]
        pub reply_to: Option<String>,
        /// The payload.
        #[serde(with = "serde_bytes", default)]
        pub body: Vec<u8>,
    }

    /// A message from a subscription, delivered to the actor.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct SubMessage {
        /// The subject it came on.
        #[serde(default)]
        pub subject: String,
        /// Where the sender wants the reply.
        #[serde(rename = "replyTo", default, skip_serializing_if = "Option::is_none")]
        pub reply_to: Option<String>,
        /// The payload.
        #[serde(with = "serde_bytes", default)]
        pub body: Vec<u8>,
    }
}

/// `wasmcloud:builtin:logging`: served by the host itself.
pub mod logging {
    use serde::{Deserialize, Serialize};

    /// The contract id.
    pub const CONTRACT_ID: &str = "wasmcloud:builtin:logging";
    /// [`LogEntry`] → nothing.
    pub const WRITE_LOG: &str = "Logging.WriteLog";

    /// One log line from an actor.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct LogEntry {
        /// `debug`, `info`, `warn` or `error`.
        #[serde(default)]
        pub level: String,
        /// The message.
        #[serde(default)]
        pub text: String,
    }
}

/// `wasmcloud:builtin:numbergen`: served by the host itself (`wasmcloud-interface-numbergen`).
pub mod numbergen {
    use serde::{Deserialize, Serialize};

    /// The contract id.
    pub const CONTRACT_ID: &str = "wasmcloud:builtin:numbergen";
    /// Nothing → `String`: a v4 GUID, `nnnnnnnn-nnnn-nnnn-nnnn-nnnnnnnnnnnn`.
    pub const GENERATE_GUID: &str = "NumberGen.GenerateGuid";
    /// [`RangeLimit`] → `u32` within it, both ends included.
    pub const RANDOM_IN_RANGE: &str = "NumberGen.RandomInRange";
    /// Nothing → a random `u32`.
    pub const RANDOM_32: &str = "NumberGen.Random32";
    /// Nothing → `u64`: the calling actor's next sequence number, from 0. Weft's own, for the
    /// older generations' `RequestSequence` (`wascc:extras`, `wasmcloud:extras`).
    pub const NEXT_SEQUENCE: &str = "NumberGen.NextSequence";

    /// `RandomInRange`'s bounds, inclusive.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct RangeLimit {
        /// Least value.
        #[serde(default)]
        pub min: u32,
        /// Greatest value.
        #[serde(default)]
        pub max: u32,
    }
}

/// The operations every actor may be asked by the host.
pub mod actor {
    use serde::{Deserialize, Serialize};

    /// Health check; its payload is an empty map (`0x80`).
    pub const HEALTH_REQUEST: &str = "Actor.HealthRequest";

    /// Answer to [`HEALTH_REQUEST`].
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct HealthCheckResponse {
        /// Whether the actor considers itself healthy.
        #[serde(default)]
        pub healthy: bool,
        /// Why not, when it is not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub message: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_encode_as_named_maps_with_wasmcloud_field_names() {
        let request = httpserver::HttpRequest {
            method: "GET".into(),
            path: "/counter/a".into(),
            query_string: "x=1".into(),
            header: [("accept".to_string(), vec!["*/*".to_string()])].into(),
            body: b"hi".to_vec(),
        };
        let bytes = encode(&request).unwrap();
        let generic: rmpv_like::Value = decode(&bytes).unwrap();
        let keys = generic.keys();
        assert_eq!(keys, ["method", "path", "queryString", "header", "body"]);
        assert_eq!(decode::<httpserver::HttpRequest>(&bytes).unwrap(), request);
    }

    #[test]
    fn http_request_without_header_is_refused_as_wasmcloud_does() {
        #[derive(serde::Serialize)]
        struct NoHeader {
            method: String,
        }
        let bytes = encode(&NoHeader {
            method: "GET".into(),
        })
        .unwrap();
        let err = decode::<httpserver::HttpRequest>(&bytes).unwrap_err();
        assert!(err.to_string().contains("HttpRequest"), "{err}");
    }

    #[test]
    fn structs_decode_from_arrays_too() {
        let bytes = rmp_serde::to_vec(&keyvalue::IncrementRequest {
            key: "k".into(),
            value: 5,
        })
        .unwrap();
        let decoded: keyvalue::IncrementRequest = decode(&bytes).unwrap();
        assert_eq!(decoded.value, 5);
    }

    /// The key order of a MessagePack map, read without a schema.
    mod rmpv_like {
        use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

        pub struct Value(Vec<String>);

        impl Value {
            pub fn keys(&self) -> Vec<&str> {
                self.0.iter().map(String::as_str).collect()
            }
        }

        impl<'de> serde::Deserialize<'de> for Value {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Keys;
                impl<'de> Visitor<'de> for Keys {
                    type Value = Value;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a map")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                        let mut keys = Vec::new();
                        while let Some((k, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                            keys.push(k);
                        }
                        Ok(Value(keys))
                    }
                }
                d.deserialize_map(Keys)
            }
        }
    }
}
