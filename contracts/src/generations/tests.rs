use super::*;
use std::collections::BTreeMap;

/// A MessagePack value read without a schema.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
enum Value {
    Bool(bool),
    Int(i64),
    Text(String),
    Map(BTreeMap<String, Value>),
    Other(serde::de::IgnoredAny),
}

impl Value {
    fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// A MessagePack map's fields, keys sorted.
fn fields(bytes: &[u8]) -> BTreeMap<String, Value> {
    decode(bytes).unwrap()
}

#[test]
fn an_http_request_reaches_older_actors_as_handle_request_with_string_headers() {
    let request = httpserver::HttpRequest {
        method: "GET".into(),
        path: "/a".into(),
        query_string: "x=1".into(),
        header: [("accept".to_string(), vec!["a".to_string(), "b".to_string()])].into(),
        body: b"hi".to_vec(),
    };
    for generation in [Generation::Wascc, Generation::WasmCloud018] {
        let call = to_actor(
            generation,
            httpserver::HANDLE_REQUEST,
            &encode(&request).unwrap(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(call.operation, "HandleRequest");
        let sent = fields(&call.payload);
        assert_eq!(
            sent.keys().collect::<Vec<_>>(),
            ["body", "header", "method", "path", "queryString"]
        );
        let Value::Map(header) = &sent["header"] else {
            panic!("header is not a map: {sent:?}")
        };
        assert_eq!(header["accept"].as_str(), Some("a, b"));

        let old = old::HttpResponse {
            status_code: 201,
            status: "Created".into(),
            header: [("x".to_string(), "y".to_string())].into(),
            body: b"ok".to_vec(),
        };
        let answer: httpserver::HttpResponse =
            decode(&call.answer(encode(&old).unwrap()).unwrap()).unwrap();
        assert_eq!(answer.status_code, 201);
        assert_eq!(answer.header["x"], ["y"]);
        assert_eq!(answer.body, b"ok");
    }
}

#[test]
fn wasmbus_actors_and_their_own_operations_pass_as_they_are() {
    assert!(
        to_actor(Generation::Wasmbus, httpserver::HANDLE_REQUEST, b"")
            .unwrap()
            .is_none()
    );
    assert!(to_actor(Generation::Wascc, "Ping", b"x").unwrap().is_none());
    assert!(
        from_actor(Generation::Wasmbus, keyvalue::CONTRACT_ID, "Add", b"")
            .unwrap()
            .is_none()
    );
    assert!(
        from_actor(Generation::Wascc, "acme:thing", "Do", b"")
            .unwrap()
            .is_none()
    );
}

#[test]
fn an_old_add_is_an_increment_answered_as_add_response() {
    for generation in [Generation::Wascc, Generation::WasmCloud018] {
        let payload = encode(&old::AddRequest {
            key: "k".into(),
            value: 3,
        })
        .unwrap();
        let call = from_actor(generation, keyvalue::CONTRACT_ID, "Add", &payload)
            .unwrap()
            .unwrap();
        assert_eq!(call.operation, keyvalue::INCREMENT);
        let request: keyvalue::IncrementRequest = decode(&call.payload).unwrap();
        assert_eq!((request.key.as_str(), request.value), ("k", 3));
        let answer = fields(&call.answer(encode(&7i32).unwrap()).unwrap());
        assert_eq!(answer["value"].as_i64(), Some(7));
    }
}

#[test]
fn set_counts_are_spelled_as_each_generation_spelled_them() {
    let payload = encode(&old::KeyValue {
        key: "s".into(),
        value: "v".into(),
    })
    .unwrap();
    for (generation, field) in [
        (Generation::Wascc, "newCount"),
        (Generation::WasmCloud018, "new_count"),
    ] {
        let call = from_actor(generation, keyvalue::CONTRACT_ID, "SetAdd", &payload)
            .unwrap()
            .unwrap();
        assert_eq!(call.operation, keyvalue::SET_ADD);
        let answer = fields(&call.answer(encode(&1u32).unwrap()).unwrap());
        assert_eq!(answer[field].as_i64(), Some(1), "{generation}");
    }
}

#[test]
fn an_operation_the_generation_lacks_is_named_with_those_it_has() {
    let err = from_actor(
        Generation::WasmCloud018,
        keyvalue::CONTRACT_ID,
        "Increment",
        b"",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("wasmCloud 0.15–0.18 actors have no operation \"Increment\""),
        "{err}"
    );
    assert!(err.contains("Get, Add, Set"), "{err}");
}

#[test]
fn old_log_lines_become_log_entries() {
    let wascc = encode(&old::WasccLogRequest {
        level: 1,
        body: "boom".into(),
    })
    .unwrap();
    let call = from_actor(Generation::Wascc, logging::CONTRACT_ID, "WriteLog", &wascc)
        .unwrap()
        .unwrap();
    let entry: logging::LogEntry = decode(&call.payload).unwrap();
    assert_eq!(
        (entry.level.as_str(), entry.text.as_str()),
        ("error", "boom")
    );
    assert_eq!(canonical_contract("wascc:logging"), logging::CONTRACT_ID);
    assert_eq!(
        canonical_contract("wasmcloud:logging"),
        logging::CONTRACT_ID
    );
    assert_eq!(
        canonical_contract("wascc:http_server"),
        httpserver::CONTRACT_ID
    );
    assert_eq!(canonical_contract("acme:x"), "acme:x");
}

#[test]
fn health_answers_are_read_per_generation() {
    let call = to_actor(Generation::WasmCloud018, actor::HEALTH_REQUEST, &[0x80])
        .unwrap()
        .unwrap();
    assert_eq!(call.operation, "HealthRequest");
    assert_eq!(fields(&call.payload)["placeholder"].as_bool(), Some(true));
    let sick = encode(&old::HealthCheckResponse {
        healthy: false,
        message: "db down".into(),
    })
    .unwrap();
    let answer: actor::HealthCheckResponse = decode(&call.answer(sick).unwrap()).unwrap();
    assert!(!answer.healthy);
    assert_eq!(answer.message.as_deref(), Some("db down"));

    // waSCC actors answer `()`: any answer is healthy.
    let call = to_actor(Generation::Wascc, actor::HEALTH_REQUEST, &[0x80])
        .unwrap()
        .unwrap();
    let answer: actor::HealthCheckResponse = decode(&call.answer(vec![0xc0]).unwrap()).unwrap();
    assert!(answer.healthy);
}

#[test]
fn extras_become_numbergen_answered_in_each_generations_result() {
    assert_eq!(canonical_contract("wascc:extras"), numbergen::CONTRACT_ID);
    assert_eq!(
        canonical_contract("wasmcloud:extras"),
        numbergen::CONTRACT_ID
    );
    let request = encode(&old::RandomRequest { min: 1, max: 6 }).unwrap();
    for (generation, random_field) in [
        (Generation::Wascc, "randomNumber"),
        (Generation::WasmCloud018, "random_number"),
    ] {
        let call = from_actor(
            generation,
            numbergen::CONTRACT_ID,
            "RequestRandom",
            &request,
        )
        .unwrap()
        .unwrap();
        assert_eq!(call.operation, numbergen::RANDOM_IN_RANGE);
        let limit: numbergen::RangeLimit = decode(&call.payload).unwrap();
        assert_eq!((limit.min, limit.max), (1, 6));
        let answer = fields(&call.answer(encode(&4u32).unwrap()).unwrap());
        assert_eq!(answer[random_field].as_i64(), Some(4), "{generation}");

        let call = from_actor(generation, numbergen::CONTRACT_ID, "RequestGuid", &request)
            .unwrap()
            .unwrap();
        assert_eq!(call.operation, numbergen::GENERATE_GUID);
        let answer = fields(&call.answer(encode("g-u-i-d").unwrap()).unwrap());
        assert_eq!(answer["guid"].as_str(), Some("g-u-i-d"), "{generation}");

        let call = from_actor(
            generation,
            numbergen::CONTRACT_ID,
            "RequestSequence",
            &request,
        )
        .unwrap()
        .unwrap();
        assert_eq!(call.operation, numbergen::NEXT_SEQUENCE);
        let answer = fields(&call.answer(encode(&7u64).unwrap()).unwrap());
        assert_eq!(answer["sequenceNumber"].as_i64(), Some(7), "{generation}");
    }
}

#[test]
fn outbound_http_requests_of_both_older_generations_become_http_client_requests() {
    let wascc = encode(&old::HttpRequest {
        method: "GET".into(),
        path: "http://example.com/a".into(),
        query_string: "b=1".into(),
        header: [("accept".to_string(), "text/plain".to_string())].into(),
        body: Vec::new(),
    })
    .unwrap();
    let wasmcloud = encode(&old::ClientRequest {
        method: "GET".into(),
        url: "http://example.com/a?b=1".into(),
        headers: [("accept".to_string(), "text/plain".to_string())].into(),
        body: Vec::new(),
    })
    .unwrap();
    for (generation, operation, payload) in [
        (Generation::Wascc, "PerformRequest", wascc),
        (Generation::WasmCloud018, "Request", wasmcloud),
    ] {
        let call = from_actor(generation, httpclient::CONTRACT_ID, operation, &payload)
            .unwrap()
            .unwrap();
        assert_eq!(call.operation, httpclient::REQUEST);
        let request: httpclient::HttpRequest = decode(&call.payload).unwrap();
        assert_eq!(request.url, "http://example.com/a?b=1", "{generation}");
        assert_eq!(request.headers["accept"], ["text/plain"]);
        let answer = fields(
            &call
                .answer(
                    encode(&httpclient::HttpResponse {
                        status_code: 200,
                        header: [("x".to_string(), vec!["1".to_string(), "2".to_string()])].into(),
                        body: b"ok".to_vec(),
                    })
                    .unwrap(),
                )
                .unwrap(),
        );
        assert_eq!(answer["statusCode"].as_i64(), Some(200));
        let Value::Map(header) = &answer["header"] else {
            panic!("{answer:?}")
        };
        assert_eq!(header["x"].as_str(), Some("1, 2"));
    }
    assert_eq!(
        canonical_contract("wascc:http_client"),
        httpclient::CONTRACT_ID
    );
}

#[test]
fn the_direct_http_transcoding_agrees_with_decoding_and_encoding() {
    let header = |pairs: &[(&str, &[&str])]| -> httpserver::HeaderMap {
        pairs
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    };
    for request in [
        httpserver::HttpRequest::default(),
        httpserver::HttpRequest {
            method: "POST".into(),
            path: "/a/b".into(),
            query_string: "x=1&y=é".into(),
            header: header(&[("accept", &["a", "b"]), ("host", &["h"]), ("empty", &[])]),
            body: vec![0, 1, 2, 255],
        },
    ] {
        let payload = encode(&request).unwrap();
        let direct = fast::http_request_to_old(&payload).unwrap();
        let general = encode(&old::HttpRequest::from(request.clone())).unwrap();
        assert_eq!(
            decode::<old::HttpRequest>(&direct).unwrap(),
            decode::<old::HttpRequest>(&general).unwrap()
        );
    }
    // A request that leaves fields out gets them empty, as the general path gives them.
    #[derive(serde::Serialize)]
    struct Partial {
        header: httpserver::HeaderMap,
    }
    let partial = encode(&Partial {
        header: header(&[("a", &["1"])]),
    })
    .unwrap();
    let direct: old::HttpRequest = decode(&fast::http_request_to_old(&partial).unwrap()).unwrap();
    assert_eq!((direct.method.as_str(), direct.body.len()), ("", 0));
    // What it does not expect goes the general way: no header, an array, an unknown field.
    assert!(
        fast::http_request_to_old(
            &encode(&Partial {
                header: Default::default()
            })
            .unwrap()
        )
        .is_some()
    );
    assert!(
        fast::http_request_to_old(&rmp_serde::to_vec(&httpserver::HttpRequest::default()).unwrap())
            .is_none()
    );
    #[derive(serde::Serialize)]
    struct Extra {
        header: httpserver::HeaderMap,
        extra: u8,
    }
    let extra = encode(&Extra {
        header: Default::default(),
        extra: 1,
    })
    .unwrap();
    assert!(fast::http_request_to_old(&extra).is_none());

    for response in [
        old::HttpResponse::default(),
        old::HttpResponse {
            status_code: 404,
            status: "Not Found".into(),
            header: [("x".to_string(), "y".to_string())].into(),
            body: b"gone".to_vec(),
        },
        old::HttpResponse {
            status_code: 70_000,
            ..old::HttpResponse::default()
        },
    ] {
        let bytes = encode(&response).unwrap();
        let direct = fast::old_response_to_http(&bytes).unwrap();
        let general = Answer::HttpResponse.shape(bytes);
        // The general path is the fast one now; compare with what it did before.
        let before = encode(&httpserver::HttpResponse {
            status_code: u16::try_from(response.status_code).unwrap_or(500),
            header: response
                .header
                .iter()
                .map(|(k, v)| (k.clone(), vec![v.clone()]))
                .collect(),
            body: response.body.clone(),
        })
        .unwrap();
        assert_eq!(
            decode::<httpserver::HttpResponse>(&direct).unwrap(),
            decode::<httpserver::HttpResponse>(&before).unwrap()
        );
        assert_eq!(general.unwrap(), direct);
    }
}
