//! `wasmcloud:httpclient` against a real HTTP server on loopback (hyper, started here on a
//! free port): what a link allows, bodies both ways, headers, timeouts, body bounds and
//! redirects, each obeyed and violated.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use weft_contracts::httpclient::{CONTRACT_ID, HttpRequest, HttpResponse, REQUEST};
use weft_httpclient::HttpClient;
use weft_provider_sdk::{LinkDefinition, Provider, ProviderCall};

/// The server's routes: `/hello`, `/echo` (method, a header and the body back), `/big`
/// (2 MiB), `/slow` (answers after 3 s), `/moved` (302 to `/hello`), `/loop` (302 to itself),
/// `/to?url=URL` (302 to URL).
pub async fn route(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = request.uri().path().to_string();
    let reply = |status: u16, body: Vec<u8>| {
        Response::builder()
            .status(status)
            .header("x-served-by", "test")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    Ok(match path.as_str() {
        "/hello" => reply(200, b"hi".to_vec()),
        "/echo" => {
            let method = request.method().to_string();
            let greeting = request
                .headers()
                .get("x-greeting")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let query = request.uri().query().unwrap_or_default().to_string();
            let body = request.into_body().collect().await?.to_bytes();
            let text = format!(
                "{method} {greeting} {query} {}",
                String::from_utf8_lossy(&body)
            );
            reply(201, text.into_bytes())
        }
        "/big" => reply(200, vec![b'x'; 2 * 1024 * 1024]),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            reply(200, b"late".to_vec())
        }
        "/moved" => Response::builder()
            .status(302)
            .header("location", "/hello")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        "/to" => Response::builder()
            .status(302)
            .header(
                "location",
                request
                    .uri()
                    .query()
                    .unwrap_or_default()
                    .trim_start_matches("url="),
            )
            .body(Full::new(Bytes::new()))
            .unwrap(),
        "/loop" => Response::builder()
            .status(302)
            .header("location", "/loop")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        _ => reply(404, b"no such page".to_vec()),
    })
}

/// Starts the server; its address.
pub async fn server() -> std::net::SocketAddr {
    serve(None).await
}

/// Starts the server, behind TLS when given an acceptor; its address.
pub async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> std::net::SocketAddr {
    serve_counted(tls).await.0
}

/// [`serve`], with the count of connections it has accepted.
pub async fn serve_counted(
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let tls = tls.clone();
            tokio::spawn(async move {
                let http = hyper::server::conn::http1::Builder::new();
                let service = hyper::service::service_fn(route);
                let _ = match tls {
                    // A client that refuses the certificate ends the handshake: nothing to
                    // serve.
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(stream) => {
                            http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await
                        }
                        Err(_) => return,
                    },
                    None => {
                        http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await
                    }
                };
            });
        }
    });
    (address, accepted)
}

pub fn link(values: &[(&str, &str)]) -> Arc<LinkDefinition> {
    Arc::new(LinkDefinition {
        actor_id: "Mcaller".into(),
        contract_id: CONTRACT_ID.into(),
        link_name: "default".into(),
        provider_id: "http".into(),
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

pub async fn request(
    link: &Arc<LinkDefinition>,
    method: &str,
    url: &str,
    body: &[u8],
) -> Result<HttpResponse, String> {
    request_on(&HttpClient::new(), link, method, url, body).await
}

/// [`request`] through `client`, whose connections are kept between requests.
pub async fn request_on(
    client: &HttpClient,
    link: &Arc<LinkDefinition>,
    method: &str,
    url: &str,
    body: &[u8],
) -> Result<HttpResponse, String> {
    let call = ProviderCall {
        actor_id: link.actor_id.clone(),
        link: link.clone(),
        operation: REQUEST.into(),
        payload: weft_contracts::encode(&HttpRequest {
            method: method.into(),
            url: url.into(),
            headers: [("x-greeting".to_string(), vec!["hello".to_string()])].into(),
            body: body.to_vec(),
        })
        .unwrap(),
        time_left: Duration::from_secs(30),
    };
    client
        .handle_call(call)
        .await
        .map(|bytes| weft_contracts::decode(&bytes).unwrap())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn requests_go_out_to_allowed_hosts_with_their_bodies_and_headers() {
    let at = server().await;
    let allowed = link(&[("allowed_hosts", &at.to_string())]);
    // A fragment stays with the caller, as a browser keeps it.
    let answer = request(
        &allowed,
        "POST",
        &format!("http://{at}/echo?a=1#part"),
        b"body",
    )
    .await
    .unwrap();
    assert_eq!(answer.status_code, 201);
    assert_eq!(answer.body, b"POST hello a=1 body");
    assert_eq!(answer.header["x-served-by"], ["test"]);

    let missing = request(&allowed, "GET", &format!("http://{at}/nope"), b"")
        .await
        .unwrap();
    assert_eq!(
        (missing.status_code, missing.body),
        (404, b"no such page".to_vec())
    );
}

#[tokio::test]
async fn a_host_the_link_does_not_allow_is_refused_before_any_connection() {
    let at = server().await;
    for values in [
        &[][..],
        &[("allowed_hosts", "example.com")][..],
        &[("allowed_hosts", "127.0.0.1:1")][..],
    ] {
        let err = request(&link(values), "GET", &format!("http://{at}/hello"), b"")
            .await
            .unwrap_err();
        assert!(
            err.contains(&format!("the link does not allow 127.0.0.1:{}", at.port()))
                && err.contains("add it to the link value allowed_hosts"),
            "{values:?}: {err}"
        );
    }
    // `*` allows any host.
    let any = link(&[("allowed_hosts", "*")]);
    assert_eq!(
        request(&any, "GET", &format!("http://{at}/hello"), b"")
            .await
            .unwrap()
            .body,
        b"hi"
    );
    let err = request(&any, "GET", "ftp://example.com/", b"")
        .await
        .unwrap_err();
    assert!(
        err.contains("only http:// and https:// are served"),
        "{err}"
    );
}

#[tokio::test]
async fn the_response_body_is_bounded_and_the_request_timed() {
    let at = server().await;
    let host = at.to_string();
    let bounded = link(&[("allowed_hosts", &host), ("max_body_bytes", "1048576")]);
    let err = request(&bounded, "GET", &format!("http://{at}/big"), b"")
        .await
        .unwrap_err();
    assert!(
        err.contains("over the link's max_body_bytes (1048576 bytes)"),
        "{err}"
    );
    let roomy = link(&[("allowed_hosts", &host), ("max_body_bytes", "4194304")]);
    let big = request(&roomy, "GET", &format!("http://{at}/big"), b"")
        .await
        .unwrap();
    assert_eq!(big.body.len(), 2 * 1024 * 1024);

    let hasty = link(&[("allowed_hosts", &host), ("timeout_ms", "200")]);
    let started = Instant::now();
    let err = request(&hasty, "GET", &format!("http://{at}/slow"), b"")
        .await
        .unwrap_err();
    assert!(
        err.contains("took over 200 ms; raise the link's timeout_ms"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn redirects_are_answers_unless_the_link_follows_them() {
    let at = server().await;
    let host = at.to_string();
    let plain = link(&[("allowed_hosts", &host)]);
    let answer = request(&plain, "GET", &format!("http://{at}/moved"), b"")
        .await
        .unwrap();
    assert_eq!(answer.status_code, 302);
    assert_eq!(answer.header["location"], ["/hello"]);

    let following = link(&[("allowed_hosts", &host), ("follow_redirects", "true")]);
    let answer = request(&following, "GET", &format!("http://{at}/moved"), b"")
        .await
        .unwrap();
    assert_eq!((answer.status_code, answer.body), (200, b"hi".to_vec()));
    let err = request(&following, "GET", &format!("http://{at}/loop"), b"")
        .await
        .unwrap_err();
    assert!(err.contains("redirected more than 5 times"), "{err}");
}

#[tokio::test]
async fn a_link_with_values_that_do_not_parse_is_refused_when_put() {
    let err = HttpClient::new()
        .put_link(&link(&[("max_body_bytes", "lots")]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_body_bytes=\"lots\" is not a whole number"),
        "{err}"
    );
}

#[tokio::test]
async fn connections_are_kept_for_the_next_request_to_the_same_host() {
    let (at, accepted) = serve_counted(None).await;
    let client = HttpClient::new();
    let allowed = link(&[("allowed_hosts", &at.to_string())]);
    for _ in 0..5 {
        let answer = request_on(&client, &allowed, "GET", &format!("http://{at}/hello"), b"")
            .await
            .unwrap();
        assert_eq!(answer.body, b"hi");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "five requests, one connection"
    );
    // A response over the body bound is not read to its end: its connection is not kept.
    let bounded = link(&[
        ("allowed_hosts", &at.to_string()),
        ("max_body_bytes", "1024"),
    ]);
    assert!(
        request_on(&client, &bounded, "GET", &format!("http://{at}/big"), b"")
            .await
            .is_err()
    );
    request_on(&client, &allowed, "GET", &format!("http://{at}/hello"), b"")
        .await
        .unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    // Under `*` the actor names the hosts: nothing is kept, each request connects anew.
    let any = link(&[("allowed_hosts", "*")]);
    for _ in 0..3 {
        request_on(&client, &any, "GET", &format!("http://{at}/hello"), b"")
            .await
            .unwrap();
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        5,
        "under *, no connection kept"
    );
}
