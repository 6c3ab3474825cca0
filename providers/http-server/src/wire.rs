//! The contract's `HttpRequest` and `HttpResponse` written from and read into hyper's types
//! directly. The bytes are the contract types' (`weft_contracts::httpserver`), encoded as
//! `weft_contracts::encode` does, so actors see no difference; what this saves is the owned
//! middle step on every request: a `String` for each part and header, a hashed map of the
//! headers, and a second copy of the response body (it is served from the actor's answer
//! buffer itself).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct, Serializer};
use std::borrow::Cow;
use std::fmt;

/// Most header values an actor's answer may carry: far past what clients read (hyper's own
/// client takes 100 headers), and under the 32,768 that hyper's header map holds (adding one
/// past that panics). An answer with more is refused as malformed: the request is answered
/// 500, naming this bound.
pub const MAX_ANSWER_HEADER_VALUES: usize = 1024;

/// A request as the actor's `HttpRequest`, borrowed from hyper's parts and the body read.
pub(crate) struct WireRequest<'a> {
    pub(crate) parts: &'a Parts,
    pub(crate) body: &'a [u8],
}

impl WireRequest<'_> {
    /// MessagePack, as `weft_contracts::encode(&HttpRequest { .. })` writes it.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        // Room for the fixed part and the headers as they came, so the buffer grows rarely.
        let mut out = Vec::with_capacity(self.body.len() + 128 + 48 * self.parts.headers.len());
        rmp_serde::encode::write_named(&mut out, self)?;
        Ok(out)
    }
}

impl serde::Serialize for WireRequest<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut request = serializer.serialize_struct("HttpRequest", 5)?;
        request.serialize_field("method", self.parts.method.as_str())?;
        request.serialize_field("path", self.parts.uri.path())?;
        request.serialize_field("queryString", self.parts.uri.query().unwrap_or_default())?;
        request.serialize_field("header", &Headers(&self.parts.headers))?;
        request.serialize_field("body", serde_bytes::Bytes::new(self.body))?;
        request.end()
    }
}

/// Header name → every value under it, as the contract's map of lists.
struct Headers<'a>(&'a HeaderMap);

impl serde::Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.keys_len()))?;
        for name in self.0.keys() {
            map.serialize_entry(name.as_str(), &Values(self.0.get_all(name)))?;
        }
        map.end()
    }
}

struct Values<'a>(hyper::header::GetAll<'a, HeaderValue>);

impl serde::Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.iter().count()))?;
        for value in self.0.iter() {
            // The contract's values are strings: bytes that are not UTF-8 are replaced, as
            // the owned conversion did.
            seq.serialize_element(&String::from_utf8_lossy(value.as_bytes()))?;
        }
        seq.end()
    }
}

/// Reads the actor's `HttpResponse` from `answer` into a hyper response: the status (one
/// that is not a status is 500), the headers hyper accepts (others are left out, as before),
/// and the body as a slice of `answer` itself.
pub(crate) fn into_response(
    answer: Vec<u8>,
) -> Result<Response<Full<Bytes>>, rmp_serde::decode::Error> {
    let answer = Bytes::from(answer);
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(&answer);
    let read = serde::de::DeserializeSeed::deserialize(ResponseSeed(&answer), &mut deserializer)?;
    let body = match read.body {
        Cow::Borrowed(body) => answer.slice_ref(body),
        Cow::Owned(body) => Bytes::from(body),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        StatusCode::from_u16(read.status_code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *response.headers_mut() = read.headers;
    Ok(response)
}

/// What the actor answered, its body borrowed from the answer.
struct ResponseParts<'a> {
    status_code: u16,
    headers: HeaderMap,
    body: Cow<'a, [u8]>,
}

const RESPONSE_FIELDS: &[&str] = &["statusCode", "header", "body"];

/// Reads an `HttpResponse` out of `answer` (the buffer being read, whose slices the header
/// values become).
struct ResponseSeed<'b>(&'b Bytes);

impl<'de> DeserializeSeed<'de> for ResponseSeed<'_> {
    type Value = ResponseParts<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_struct("HttpResponse", RESPONSE_FIELDS, self)
    }
}

impl<'de> Visitor<'de> for ResponseSeed<'_> {
    type Value = ResponseParts<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an HttpResponse")
    }

    /// The contract's named form: a map of field names (each optional, as the contract type's
    /// `#[serde(default)]` makes them).
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut read = ResponseParts {
            status_code: 0,
            headers: HeaderMap::new(),
            body: Cow::Borrowed(&[]),
        };
        while let Some(Text(field)) = map.next_key::<Text<'de>>()? {
            match field.as_ref() {
                "statusCode" => read.status_code = map.next_value()?,
                "header" => map.next_value_seed(HeaderSeed {
                    headers: &mut read.headers,
                    answer: self.0,
                })?,
                "body" => read.body = map.next_value::<Body<'de>>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(read)
    }

    /// The positional form (an array in field order), which the contract type also reads.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut read = ResponseParts {
            status_code: seq.next_element()?.unwrap_or(0),
            headers: HeaderMap::new(),
            body: Cow::Borrowed(&[]),
        };
        let headers = HeaderSeed {
            headers: &mut read.headers,
            answer: self.0,
        };
        if seq.next_element_seed(headers)?.is_some()
            && let Some(Body(body)) = seq.next_element::<Body<'de>>()?
        {
            read.body = body;
        }
        Ok(read)
    }
}

/// Reads the contract's header map (name → list of values) straight into hyper's; a value
/// borrowed from `answer` becomes a slice of it, not a copy.
struct HeaderSeed<'h> {
    headers: &'h mut HeaderMap,
    answer: &'h Bytes,
}

impl<'de> DeserializeSeed<'de> for HeaderSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeaderSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of header names to lists of values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
            let name = HeaderName::from_bytes(name.as_bytes()).ok();
            map.next_value_seed(ValuesSeed {
                headers: self.headers,
                answer: self.answer,
                name,
            })?;
        }
        Ok(())
    }
}

/// One header's values, appended under `name` (`None`: a name hyper refuses, its values
/// read and left out).
struct ValuesSeed<'h> {
    headers: &'h mut HeaderMap,
    answer: &'h Bytes,
    name: Option<HeaderName>,
}

impl<'de> DeserializeSeed<'de> for ValuesSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ValuesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of header values")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(Text(value)) = seq.next_element::<Text<'de>>()? {
            let Some(name) = &self.name else { continue };
            let value = match value {
                Cow::Borrowed(text) => {
                    HeaderValue::from_maybe_shared(self.answer.slice_ref(text.as_bytes()))
                }
                Cow::Owned(text) => HeaderValue::from_str(&text),
            };
            // A value hyper refuses (a control character) is left out, as before.
            if let Ok(value) = value {
                if self.headers.len() >= MAX_ANSWER_HEADER_VALUES {
                    return Err(de::Error::custom(format!(
                        "it has more than {MAX_ANSWER_HEADER_VALUES} header values; answer with fewer"
                    )));
                }
                self.headers.append(name.clone(), value);
            }
        }
        Ok(())
    }
}

/// A string from the answer, borrowed where it can be (it can whenever the answer is read
/// from one buffer, as here); bytes that are UTF-8 count as a string, as the contract type's
/// `String` reads them.
struct Text<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(text.to_string())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(text)))
    }

    fn visit_borrowed_bytes<E: de::Error>(self, bytes: &'de [u8]) -> Result<Self::Value, E> {
        std::str::from_utf8(bytes)
            .map(|text| Text(Cow::Borrowed(text)))
            .map_err(|_| E::invalid_value(de::Unexpected::Bytes(bytes), &self))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
        std::str::from_utf8(bytes)
            .map(|text| Text(Cow::Owned(text.to_string())))
            .map_err(|_| E::invalid_value(de::Unexpected::Bytes(bytes), &self))
    }
}

/// The body: borrowed from the answer when it is one run of bytes (MessagePack `bin`, as the
/// contract type writes it), else read as the contract type reads it (a list of numbers, say).
#[derive(serde::Deserialize)]
struct Body<'a>(#[serde(borrow, with = "serde_bytes")] Cow<'a, [u8]>);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use weft_contracts::httpserver::{HttpRequest, HttpResponse};

    fn parts(uri: &str, headers: &[(&str, &[u8])]) -> Parts {
        let mut request = hyper::Request::builder().method("POST").uri(uri);
        for (name, value) in headers {
            request = request.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_request_reads_as_the_contract_type_with_every_part() {
        let parts = parts(
            "/notes/7?sort=asc&x=%20",
            &[
                ("host", b"example.test"),
                ("accept", b"text/plain"),
                ("accept", b"application/json"),
                // Not UTF-8: replaced, as the contract's strings must be.
                ("x-raw", b"caf\xe9"),
            ],
        );
        let encoded = WireRequest {
            parts: &parts,
            body: b"the body",
        }
        .encode()
        .unwrap();
        let read: HttpRequest = weft_contracts::decode(&encoded).unwrap();
        assert_eq!(read.method, "POST");
        assert_eq!(read.path, "/notes/7");
        assert_eq!(read.query_string, "sort=asc&x=%20");
        assert_eq!(read.body, b"the body");
        assert_eq!(read.header.len(), 3);
        assert_eq!(read.header["host"], ["example.test"]);
        assert_eq!(read.header["accept"], ["text/plain", "application/json"]);
        assert_eq!(read.header["x-raw"], ["caf\u{fffd}"]);
        // The same bytes the contract type writes for it, but for the order of the headers.
        let again = weft_contracts::encode(&read).unwrap();
        assert_eq!(again.len(), encoded.len());
    }

    #[test]
    fn a_request_without_query_headers_or_body_reads_as_empty_ones() {
        let parts = parts("/", &[]);
        let encoded = WireRequest {
            parts: &parts,
            body: &[],
        }
        .encode()
        .unwrap();
        let read: HttpRequest = weft_contracts::decode(&encoded).unwrap();
        assert_eq!(
            read,
            HttpRequest {
                method: "POST".into(),
                path: "/".into(),
                ..HttpRequest::default()
            }
        );
    }

    fn answer() -> HttpResponse {
        HttpResponse {
            status_code: 201,
            header: [
                ("content-type".to_string(), vec!["text/plain".to_string()]),
                (
                    "set-cookie".to_string(),
                    vec!["a=1".to_string(), "b=2".to_string()],
                ),
                // Refused by hyper: left out, the rest kept.
                ("bad name".to_string(), vec!["x".to_string()]),
                ("x-bad-value".to_string(), vec!["line\nbreak".to_string()]),
            ]
            .into(),
            body: b"made".to_vec(),
        }
    }

    fn assert_served_as_answered(response: &Response<Full<Bytes>>) {
        assert_eq!(response.status(), StatusCode::CREATED);
        let headers = response.headers();
        assert_eq!(headers.len(), 3);
        assert_eq!(headers["content-type"], "text/plain");
        let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }

    async fn body_of(response: Response<Full<Bytes>>) -> Bytes {
        use http_body_util::BodyExt;
        response.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn an_answer_in_the_contracts_named_form_is_served_as_it_says() {
        let response = into_response(weft_contracts::encode(&answer()).unwrap()).unwrap();
        assert_served_as_answered(&response);
        assert_eq!(body_of(response).await, "made");
    }

    #[tokio::test]
    async fn an_answer_as_an_array_or_with_its_body_as_numbers_is_read_too() {
        // Positional: the contract type reads this form as well.
        let positional = rmp_serde::to_vec(&answer()).unwrap();
        let response = into_response(positional).unwrap();
        assert_served_as_answered(&response);
        assert_eq!(body_of(response).await, "made");
        // The body as a list of numbers (what serde writes for a Vec<u8> without serde_bytes).
        #[derive(serde::Serialize)]
        struct Unpacked {
            #[serde(rename = "statusCode")]
            status_code: u16,
            body: Vec<u8>,
        }
        let unpacked = rmp_serde::to_vec_named(&Unpacked {
            status_code: 200,
            body: b"ok".to_vec(),
        })
        .unwrap();
        let response = into_response(unpacked).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().is_empty());
        assert_eq!(body_of(response).await, "ok");
    }

    fn with_header_values(count: usize) -> Vec<u8> {
        let values = (0..count).map(|n| n.to_string()).collect();
        weft_contracts::encode(&HttpResponse {
            status_code: 200,
            header: [("x-n".to_string(), values)].into(),
            body: Vec::new(),
        })
        .unwrap()
    }

    #[test]
    fn header_values_up_to_the_bound_are_served_and_past_it_refused() {
        let at_bound = into_response(with_header_values(MAX_ANSWER_HEADER_VALUES)).unwrap();
        assert_eq!(at_bound.headers().len(), MAX_ANSWER_HEADER_VALUES);
        let error = into_response(with_header_values(MAX_ANSWER_HEADER_VALUES + 1))
            .unwrap_err()
            .to_string();
        assert!(error.contains("more than 1024 header values"), "{error}");
        // Past what hyper's header map can hold at all: refused, not a panic.
        assert!(into_response(with_header_values(40_000)).is_err());
    }

    #[tokio::test]
    async fn a_status_that_is_none_is_500_and_what_is_not_an_answer_an_error() {
        let mut odd = answer();
        odd.status_code = 1000;
        let response = into_response(weft_contracts::encode(&odd).unwrap()).unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        // Nothing at all: every field defaults, as the contract type's do.
        let empty = rmp_serde::to_vec_named(&std::collections::HashMap::<String, u8>::new());
        assert_eq!(
            into_response(empty.unwrap()).unwrap().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert!(into_response(b"\xc1 not MessagePack".to_vec()).is_err());
        assert!(into_response(weft_contracts::encode(&"a string").unwrap()).is_err());
        #[derive(serde::Serialize)]
        struct HeaderNotAMap {
            header: u8,
        }
        let header_not_a_map = rmp_serde::to_vec_named(&HeaderNotAMap { header: 1 }).unwrap();
        assert!(into_response(header_not_a_map).is_err());
    }
}
