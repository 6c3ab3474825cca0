//! Shared pieces of Weft's benchmarks: where the built actors are, how to serve one over
//! HTTP, and how to read a criterion estimate back to print a ratio against its baseline.

use std::path::{Path, PathBuf};

/// The repository's target directory (benchmarks share it), or `WEFT_TARGET_DIR`: a bench
/// binary carried to another machine (`scripts/device-cores.sh`) finds the actors there.
pub fn target_dir() -> PathBuf {
    std::env::var_os("WEFT_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// An actor's unsigned wasm as cargo built it; the benchmarks sign it themselves.
pub fn unsigned_actor(name: &str) -> Result<Vec<u8>, String> {
    let path = target_dir()
        .join("wasm32-unknown-unknown/release")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).map_err(|e| {
        format!(
            "{}: {e}; build the actors first (scripts/test.sh, or weft build)",
            path.display()
        )
    })
}

/// The hello actor, signed with keys of its own for the HTTP server contract (revision 1);
/// exits the benchmark saying how to build it when it is not built. `WEFT_HELLO=hello-owned`
/// serves the same answer from the actor written on the owned contract types instead (for
/// the README's comparison of the two).
pub fn signed_hello() -> Vec<u8> {
    let name = match std::env::var("WEFT_HELLO").as_deref() {
        Ok("hello-owned") => "hello_owned",
        Ok("hello") | Err(_) => "hello",
        Ok(other) => {
            eprintln!("WEFT_HELLO={other}: no such actor (hello or hello-owned)");
            std::process::exit(2)
        }
    };
    let code = unsigned_actor(name).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let keys = (
        wascap::KeyRole::Account.generate(),
        wascap::KeyRole::Module.generate(),
    );
    let (Some(account), Some(module)) = keys else {
        eprintln!("could not generate signing keys");
        std::process::exit(2)
    };
    let claims = wascap::Claims::new(
        account.public_key(),
        module.public_key(),
        wascap::Actor {
            name: Some("hello".into()),
            caps: Some(vec![wascap::contracts::HTTP_SERVER.into()]),
            rev: Some(1),
            ..wascap::Actor::default()
        },
    );
    wascap::embed_claims(&code, &claims, &account).unwrap_or_else(|e| {
        eprintln!("signing hello: {e}");
        std::process::exit(2)
    })
}

/// The mean time of a finished criterion benchmark, nanoseconds.
pub fn mean_ns(criterion_dir: &Path, group: &str, bench: &str) -> Option<f64> {
    let file = criterion_dir
        .join(group)
        .join(bench)
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    json.get("mean")?.get("point_estimate")?.as_f64()
}

/// What a paired measurement found: medians over its rounds, and the spread of the rounds'
/// ratios.
pub struct Paired {
    /// Median time of one baseline call, µs.
    pub raw_us: f64,
    /// Median time of one Weft call, µs.
    pub weft_us: f64,
    /// Median of the rounds' Weft/baseline ratios.
    pub ratio: f64,
    /// The lowest round's ratio.
    pub lowest: f64,
    /// The highest round's ratio.
    pub highest: f64,
}

/// The value of the environment variable `name`, parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The counts (of cores, of threads) listed in the environment variable `name`, comma-separated,
/// or 1, 2, 4, … up to `cores`.
pub fn counts_from_env(name: &str, cores: usize) -> Vec<usize> {
    match std::env::var(name) {
        Ok(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        Err(_) => std::iter::successors(Some(1), |n| Some(n * 2))
            .take_while(|n| *n <= cores)
            .collect(),
    }
}

/// The middle value (sorts `values`).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Times `calls` sequential calls of `raw`, then as many of `weft`, `rounds` times (which
/// goes first alternates), so both see the same machine: on a shared 2-core VM whose speed
/// drifts by tens of percent within a minute, the median of per-round ratios is steady where
/// back-to-back measurements are not.
pub async fn paired_ratio<R, W, RF, WF>(rounds: usize, calls: usize, raw: R, weft: W) -> Paired
where
    R: Fn() -> RF,
    W: Fn() -> WF,
    RF: std::future::Future<Output = ()>,
    WF: std::future::Future<Output = ()>,
{
    let (mut raws, mut wefts, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut raw_time = std::time::Duration::ZERO;
        let mut weft_time = std::time::Duration::ZERO;
        for first_raw in [round % 2 == 0, round % 2 != 0] {
            let started = std::time::Instant::now();
            for _ in 0..calls {
                if first_raw { raw().await } else { weft().await }
            }
            if first_raw {
                raw_time = started.elapsed();
            } else {
                weft_time = started.elapsed();
            }
        }
        let per_call = |t: std::time::Duration| t.as_secs_f64() * 1e6 / calls as f64;
        raws.push(per_call(raw_time));
        wefts.push(per_call(weft_time));
        ratios.push(weft_time.as_secs_f64() / raw_time.as_secs_f64());
    }
    let ratio = median(&mut ratios);
    Paired {
        raw_us: median(&mut raws),
        weft_us: median(&mut wefts),
        ratio,
        lowest: ratios.first().copied().unwrap_or(f64::NAN),
        highest: ratios.last().copied().unwrap_or(f64::NAN),
    }
}

/// Links `actor` to the http-server provider `http` (added to `host` as "http") on a free
/// loopback port; where it listens.
pub async fn serve_http(
    host: &weft_host::Host,
    http: &weft_http_server::HttpServer,
    actor: &str,
) -> std::net::SocketAddr {
    host.put_link(weft_provider_sdk::LinkDefinition {
        actor_id: actor.to_string(),
        contract_id: wascap::contracts::HTTP_SERVER.into(),
        link_name: "default".into(),
        provider_id: "http".into(),
        values: [("address".to_string(), "127.0.0.1:0".to_string())].into(),
    })
    .await
    .unwrap_or_else(|e| panic!("linking {actor} to HTTP: {e}"));
    http.bound_address(actor, "default")
        .unwrap_or_else(|| panic!("{actor} has no HTTP listener"))
}

/// What every hello world of the benchmarks answers, native or actor.
pub const HELLO: &str = "Hello, world!\n";

/// A native hyper HTTP/1 server answering [`HELLO`] to every request, on a free loopback
/// port: the baseline of the HTTP benchmarks. Serves until the runtime ends.
pub async fn native_hello() -> std::net::SocketAddr {
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("binding the native server: {e}"));
    let address = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("the native server's address: {e}"));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                // The hello actor's answer exactly: its status, header and body.
                let service = hyper::service::service_fn(|_request| async {
                    let mut response =
                        hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(HELLO)));
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain"),
                    );
                    Ok::<_, std::convert::Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

/// A host keeping metrics, as the CLI's hosts always do.
pub fn metered_host() -> weft_host::Host {
    let metrics = weft_host::metrics::Metrics::new()
        .unwrap_or_else(|e| panic!("metrics for the benchmark host: {e}"));
    weft_host::Host::new(weft_host::HostConfig {
        metrics: Some(std::sync::Arc::new(metrics)),
        ..weft_host::HostConfig::default()
    })
    .unwrap_or_else(|e| panic!("the benchmark host: {e}"))
}

/// A host keeping metrics (as the CLI's hosts do) serving `signed` over HTTP through the
/// http-server provider on a free loopback port: the host, and where it listens.
pub async fn metered_http_host(signed: &[u8]) -> (weft_host::Host, std::net::SocketAddr) {
    let host = metered_host();
    let http = std::sync::Arc::new(weft_http_server::HttpServer::new());
    host.add_provider("http", http.clone())
        .await
        .unwrap_or_else(|e| panic!("the http-server provider: {e}"));
    let actor = host
        .start_actor(signed)
        .await
        .unwrap_or_else(|e| panic!("starting the actor: {e}"))
        .id;
    let address = serve_http(&host, &http, &actor).await;
    (host, address)
}

/// A relay actor's code: every call it gets, it makes as a host call to `namespace` (a
/// contract, or an actor's module key) with `operation` on the link `default`, and answers
/// with what that said; given no call to make, it answers with the request itself (the same
/// module, less the call).
pub fn relay_module(call: Option<(&str, &str)>) -> Vec<u8> {
    let calls = i32::from(call.is_some());
    let (namespace, operation) = call.unwrap_or_default();
    let wat = format!(
        r#"(module
  (import "wapc" "__guest_request" (func $req (param i32 i32)))
  (import "wapc" "__guest_response" (func $resp (param i32 i32)))
  (import "wapc" "__host_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_response" (func $hresp (param i32)))
  (import "wapc" "__host_response_len" (func $hresp_len (result i32)))
  (memory (export "memory") 1) (func (export "__wasmbus_rpc_version") (result i32) i32.const 1)
  (data (i32.const 0) "default")
  (data (i32.const 16) "{namespace}")
  (data (i32.const 80) "{operation}")
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (call $req (i32.const 1024) (i32.const 2048))
    (if (i32.eqz (i32.const {calls}))
      (then (call $resp (i32.const 2048) (local.get $msg_len)) (return (i32.const 1))))
    (if (i32.eqz (call $call (i32.const 0) (i32.const 7) (i32.const 16) (i32.const {namespace_len})
          (i32.const 80) (i32.const {operation_len}) (i32.const 2048) (local.get $msg_len)))
      (then (return (i32.const 0))))
    (call $hresp (i32.const 8192))
    (call $resp (i32.const 8192) (call $hresp_len))
    (i32.const 1)))"#,
        namespace_len = namespace.len(),
        operation_len = operation.len(),
    );
    wat::parse_str(&wat).unwrap_or_else(|e| panic!("the relay's text: {e}"))
}
