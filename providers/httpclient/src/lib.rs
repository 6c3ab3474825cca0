//! # weft-httpclient — outbound HTTP for actors (`wasmcloud:httpclient`)
//!
//! Serves `HttpClient.Request`: the actor's request goes out with hyper over HTTP/1.1, plain
//! or TLS (`https`, [`tls`]: the server's certificate checked against the system's CA roots
//! and any the link adds), on a connection kept for reuse to a host the link lists
//! ([`pool`]: idle up to 30 s, at most 8 to a host), and the answer comes back whole. Each
//! link says what its actor may do, and nothing is allowed that a link does not say:
//!
//! | link value | meaning | default |
//! |---|---|---|
//! | `allowed_hosts` | comma-separated `HOST` or `HOST:PORT`; `*` for any (then no connection is kept) | none: every request refused |
//! | `timeout_ms` | the whole request, connect to last byte (and never past the actor's own deadline) | 10000 |
//! | `max_body_bytes` | the response body; over it the call fails, nothing is returned | 1048576 |
//! | `follow_redirects` | `true` follows up to 5 redirects, each to an allowed host, never from https to http | `false`: a 3xx is the answer |
//! | `tls_roots_pem` | PEM certificates of CAs trusted besides the system's (a private CA), at most 100 | the system's only |
//!
//! **What it is not:** a client that presents certificates of its own (no client TLS
//! authentication), an HTTP/2 client, or a cache. An error names what to change: the link
//! value, the URL.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use std::time::Duration;
use weft_contracts::httpclient::{CONTRACT_ID, HttpRequest, HttpResponse, REQUEST};
use weft_contracts::httpserver::HeaderMap;
use weft_provider_sdk::{LinkDefinition, Provider, ProviderCall, ProviderError, async_trait};

mod pool;
mod tls;

/// The default of `timeout_ms`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default of `max_body_bytes`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The most redirects followed when `follow_redirects` is on.
pub const MAX_REDIRECTS: usize = 5;

/// The `wasmcloud:httpclient` provider.
#[derive(Debug, Default)]
pub struct HttpClient {
    clients: pool::Clients,
}

impl HttpClient {
    /// A client; what each actor may reach is in its link.
    pub fn new() -> Self {
        HttpClient::default()
    }
}

/// What one link allows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings<'link> {
    /// `None`: any host.
    allowed: Option<Vec<Allowed>>,
    timeout: Duration,
    max_body_bytes: usize,
    follow_redirects: bool,
    /// PEM certificates of CAs trusted besides the system's (checked when the link is put).
    tls_roots_pem: Option<&'link str>,
}

/// A host, and a port if the link named one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    host: String,
    port: Option<u16>,
}

impl<'link> Settings<'link> {
    fn of(link: &'link LinkDefinition) -> Result<Settings<'link>, ProviderError> {
        let bad = |reason: String| ProviderError::Link {
            actor_id: link.actor_id.clone(),
            reason,
        };
        let value = |key: &str| link.values.get(key).map(|v| v.trim());
        let allowed = match value("allowed_hosts") {
            Some("*") => None,
            None | Some("") => Some(Vec::new()),
            Some(list) => Some(
                list.split(',')
                    .map(|entry| parse_allowed(entry.trim()).map_err(&bad))
                    .collect::<Result<_, _>>()?,
            ),
        };
        let number = |key: &str, default: u64| match value(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| bad(format!("link value {key}={v:?} is not a whole number"))),
        };
        let timeout =
            Duration::from_millis(number("timeout_ms", DEFAULT_TIMEOUT.as_millis() as u64)?);
        let max_body_bytes =
            usize::try_from(number("max_body_bytes", DEFAULT_MAX_BODY_BYTES as u64)?)
                .unwrap_or(usize::MAX);
        let follow_redirects = match value("follow_redirects") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(bad(format!(
                    "link value follow_redirects={other:?} is neither true nor false"
                )));
            }
        };
        Ok(Settings {
            allowed,
            timeout,
            max_body_bytes,
            follow_redirects,
            tls_roots_pem: link.values.get("tls_roots_pem").map(String::as_str),
        })
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        self.allowed.as_ref().is_none_or(|allowed| {
            allowed
                .iter()
                .any(|a| a.host.eq_ignore_ascii_case(host) && a.port.is_none_or(|p| p == port))
        })
    }
}

fn parse_allowed(entry: &str) -> Result<Allowed, String> {
    let invalid = || {
        format!(
            "link value allowed_hosts has {entry:?}, which is not HOST or HOST:PORT; list \
             them separated by commas, or give * for any host"
        )
    };
    if entry.is_empty() || entry.contains('/') || entry.contains('*') {
        return Err(invalid());
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok(Allowed {
            host: host.to_string(),
            port: Some(port.parse().map_err(|_| invalid())?),
        }),
        _ => Ok(Allowed {
            host: entry.to_string(),
            port: None,
        }),
    }
}

#[async_trait]
impl Provider for HttpClient {
    fn contract_id(&self) -> &str {
        CONTRACT_ID
    }

    /// Refuses a link whose values do not parse, so the mistake shows when it is made.
    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        let settings = Settings::of(link)?;
        if let Some(pem) = settings.tls_roots_pem {
            tls::parse_roots(pem).map_err(|reason| ProviderError::Link {
                actor_id: link.actor_id.clone(),
                reason,
            })?;
        }
        Ok(())
    }

    async fn handle_call(&self, call: ProviderCall) -> Result<Vec<u8>, ProviderError> {
        if call.operation != REQUEST {
            return Err(ProviderError::unknown_operation(
                CONTRACT_ID,
                &call.operation,
            ));
        }
        let bad = |reason: String| ProviderError::BadRequest {
            operation: REQUEST.to_string(),
            reason,
        };
        let request: HttpRequest =
            weft_contracts::decode(&call.payload).map_err(|e| bad(e.to_string()))?;
        let settings = Settings::of(&call.link)?;
        let within = settings.timeout.min(call.time_left);
        let response = tokio::time::timeout(
            within,
            send(&self.clients, &settings, request, &call.actor_id),
        )
        .await
        .map_err(|_| {
            ProviderError::Backend(format!(
                "the HTTP request took over {} ms; raise the link's timeout_ms (the actor's \
                     own deadline bounds it too)",
                within.as_millis()
            ))
        })??;
        weft_contracts::encode(&response).map_err(|e| ProviderError::Backend(e.to_string()))
    }
}

/// Sends `request`, following redirects if the link says so.
async fn send(
    clients: &pool::Clients,
    settings: &Settings<'_>,
    mut request: HttpRequest,
    actor: &str,
) -> Result<HttpResponse, ProviderError> {
    let mut redirects = 0;
    loop {
        let url = checked_url(settings, &request.url, actor)?;
        let response = send_once(clients, settings, &request, &url).await?;
        let location = response
            .header
            .get("location")
            .and_then(|values| values.first());
        let redirected = (300..400).contains(&response.status_code) && response.status_code != 304;
        match location {
            Some(location) if redirected && settings.follow_redirects => {
                if redirects == MAX_REDIRECTS {
                    return Err(ProviderError::Backend(format!(
                        "{} redirected more than {MAX_REDIRECTS} times; the last was to {location}",
                        request.url
                    )));
                }
                redirects += 1;
                let next = url.join(location).map_err(|e| {
                    ProviderError::Backend(format!(
                        "{} redirected to {location:?}, which is not a URL: {e}",
                        request.url
                    ))
                })?;
                // 303, and 301/302 after a POST as browsers do: the next request is a GET.
                if response.status_code == 303
                    || (request.method.eq_ignore_ascii_case("POST")
                        && matches!(response.status_code, 301 | 302))
                {
                    request.method = "GET".into();
                    request.body.clear();
                }
                if url.scheme() == "https" && next.scheme() != "https" {
                    return Err(ProviderError::Backend(format!(
                        "{url} redirected to {next}, from https to plain HTTP; not followed \
                         (what the request carries would travel in the clear)"
                    )));
                }
                request.url = next.to_string();
            }
            _ => return Ok(response),
        }
    }
}

/// The URL parsed, if its scheme is served and its host allowed.
fn checked_url(settings: &Settings<'_>, raw: &str, actor: &str) -> Result<url::Url, ProviderError> {
    let bad = |reason: String| ProviderError::BadRequest {
        operation: REQUEST.to_string(),
        reason,
    };
    let url = url::Url::parse(raw).map_err(|e| bad(format!("{raw:?} is not a URL: {e}")))?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(bad(format!(
                "{raw} has scheme {other}; only http:// and https:// are served"
            )));
        }
    }
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    if !settings.allows(host, port) {
        return Err(ProviderError::Link {
            actor_id: actor.to_string(),
            reason: format!(
                "the link does not allow {host}:{port}; add it to the link value \
                 allowed_hosts (comma-separated HOST or HOST:PORT)"
            ),
        });
    }
    Ok(url)
}

async fn send_once(
    clients: &pool::Clients,
    settings: &Settings<'_>,
    request: &HttpRequest,
    url: &url::Url,
) -> Result<HttpResponse, ProviderError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        ProviderError::Backend(format!("{what} {url}: {e}"))
    };
    let client = clients
        .get(settings.tls_roots_pem, settings.allowed.is_some())
        .map_err(ProviderError::Backend)?;
    let authority = authority(url);
    let mut builder = hyper::Request::builder()
        .method(request.method.as_str())
        // No user info and no fragment: neither goes on the wire.
        .uri(format!(
            "{}://{authority}{}",
            url.scheme(),
            &url[url::Position::BeforePath..url::Position::AfterQuery]
        ))
        .header(hyper::header::HOST, authority);
    for (name, values) in &request.headers {
        for value in values {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    let outgoing = builder
        .body(Full::new(Bytes::from(request.body.clone())))
        .map_err(|e| ProviderError::BadRequest {
            operation: REQUEST.to_string(),
            reason: format!("the request to {url} is not valid HTTP: {e}"),
        })?;
    let response = client.request(outgoing).await.map_err(|e| {
        // The connector's own words, where the connection could not be made.
        match std::error::Error::source(&e).and_then(|s| s.downcast_ref::<pool::ConnectError>()) {
            Some(connect) => ProviderError::Backend(connect.to_string()),
            None => failed("the request failed:", &Chain(&e)),
        }
    })?;
    let status_code = response.status().as_u16();
    let mut header = HeaderMap::new();
    for (name, value) in response.headers() {
        header
            .entry(name.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let body = Limited::new(response.into_body(), settings.max_body_bytes)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ProviderError::Backend(format!(
                    "the response from {url} is over the link's max_body_bytes ({} bytes); \
                     raise it on the link",
                    settings.max_body_bytes
                ))
            } else {
                failed("reading the response from", &e)
            }
        })?
        .to_bytes()
        .to_vec();
    Ok(HttpResponse {
        status_code,
        header,
        body,
    })
}

/// An error with its sources, `: `-separated (hyper-util's own says only its kind).
struct Chain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// `HOST[:PORT]` as the Host header carries it.
fn authority(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(values: &[(&str, &str)]) -> LinkDefinition {
        LinkDefinition {
            actor_id: "Mactor".into(),
            contract_id: CONTRACT_ID.into(),
            link_name: "default".into(),
            provider_id: "http".into(),
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_link_allows_nothing_unless_it_says_so() {
        let empty = link(&[]);
        let none = Settings::of(&empty).unwrap();
        assert!(!none.allows("example.com", 80));
        let listed = link(&[("allowed_hosts", "example.com, 127.0.0.1:8080")]);
        let some = Settings::of(&listed).unwrap();
        assert!(some.allows("EXAMPLE.com", 80));
        assert!(some.allows("127.0.0.1", 8080));
        assert!(!some.allows("127.0.0.1", 8081));
        assert!(!some.allows("other.com", 80));
        assert!(
            Settings::of(&link(&[("allowed_hosts", "*")]))
                .unwrap()
                .allows("any", 1)
        );
    }

    #[test]
    fn bad_link_values_are_refused_naming_the_value() {
        for (key, value, says) in [
            ("allowed_hosts", "http://x", "not HOST or HOST:PORT"),
            ("allowed_hosts", "x:port", "not HOST or HOST:PORT"),
            (
                "timeout_ms",
                "soon",
                "timeout_ms=\"soon\" is not a whole number",
            ),
            ("follow_redirects", "yes", "neither true nor false"),
        ] {
            let err = Settings::of(&link(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{key}={value}: {err}");
        }
    }
}
