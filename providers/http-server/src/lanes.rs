//! Lanes: threads of the provider's own, each running a single-threaded tokio runtime, on
//! which it serves its connections, a connection staying on the lane it was given from its
//! accept to its close.
//!
//! Why not the (work-stealing) runtime the provider was started on: there a connection's
//! task moves between worker threads, so its buffers are freed on another thread than the
//! one that allocated them (both then take glibc's arena lock), and a worker with queued
//! requests wakes an idle one to steal them (a futex wake and a context switch each). With
//! a request's actor call inside the connection's task, each poll is long enough that this
//! happens all the time: `perf` of the host serving `hello` from 2 workers showed 0.12
//! context switches and 0.05 futex calls a request, half of the latter glibc's arena lock.
//! A lane runs what its connections start (the actor's call, its host calls) on its own
//! thread, so on its own core's engine copy; accepting stays where the provider was started.
//!
//! Lanes are process-wide: as many as the first runtime to use them has workers, at most one
//! per core this process may run on (`available_parallelism`, which follows `taskset`),
//! started on first use and kept for the life of the process, because what a call starts on
//! a lane may outlive the listener (a lattice caller's answer loop, started by the first call
//! to a remote provider). A listener accepting on a single-threaded runtime (`weft provider
//! run`'s default, `--threads 1`) uses none: its connections are served where they
//! are accepted, on that one thread, as before; nor does a provider kept off them
//! ([`crate::HttpServer::serving_on_lanes`]`(false)`, the provider setting `lanes=off`).

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::task::JoinSet;

struct Lanes {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

static LANES: OnceLock<Option<Lanes>> = OnceLock::new();

/// Spawns `serve(stream)` into `connections` on the next lane, the socket registered again
/// with that lane's runtime; where it was accepted when there is no lane (see [`next`]).
pub(crate) fn spawn<F, Served>(connections: &mut JoinSet<()>, stream: TcpStream, serve: F)
where
    F: FnOnce(TcpStream) -> Served + Send + 'static,
    Served: Future<Output = ()> + Send + 'static,
{
    let Some(lane) = next() else {
        connections.spawn(serve(stream));
        return;
    };
    match stream.into_std() {
        Ok(stream) => {
            connections.spawn_on(
                async move {
                    match TcpStream::from_std(stream) {
                        Ok(stream) => serve(stream).await,
                        Err(error) => {
                            tracing::warn!(%error, "could not serve an HTTP connection on its lane");
                        }
                    }
                },
                lane,
            );
        }
        Err(error) => tracing::warn!(%error, "could not hand an HTTP connection to a lane"),
    }
}

/// The lane for the next connection (round-robin), or `None` to serve it where it was
/// accepted: on a runtime of one worker, on one core, or when the lanes could not start.
/// Asked on the accepting runtime.
fn next() -> Option<&'static Handle> {
    let workers = Handle::try_current().map_or(1, |runtime| runtime.metrics().num_workers());
    if workers < 2 {
        return None;
    }
    let lanes = LANES.get_or_init(|| start(workers)).as_ref()?;
    let turn = lanes.next.fetch_add(1, Ordering::Relaxed);
    lanes.handles.get(turn % lanes.handles.len())
}

/// Starts a lane per worker of the accepting runtime, at most one per core.
fn start(workers: usize) -> Option<Lanes> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let count = workers.min(cores);
    if count < 2 {
        return None;
    }
    let mut handles = Vec::with_capacity(count);
    for lane in 0..count {
        match start_one(lane) {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                tracing::warn!(%error, lane, "could not start an HTTP lane; connections are served on the provider's runtime");
                return None;
            }
        }
    }
    Some(Lanes {
        handles,
        next: AtomicUsize::new(0),
    })
}

fn start_one(lane: usize) -> std::io::Result<Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(format!("weft-http-{lane}"))
        // The lane runs for the life of the process: what it serves ends with its
        // listeners, and an idle lane costs one parked thread.
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::HttpServer;
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;
    use weft_contracts::httpserver::HttpResponse;
    use weft_provider_sdk::{ActorInvoker, Failure, LinkDefinition, Provider, async_trait};

    /// Answers every request with the name of the thread that ran its call.
    struct Where;

    #[async_trait]
    impl ActorInvoker for Where {
        async fn invoke_actor(&self, _: &str, _: &str, _: Vec<u8>) -> Result<Vec<u8>, Failure> {
            let thread = std::thread::current()
                .name()
                .unwrap_or_default()
                .to_string();
            Ok(weft_contracts::encode(&HttpResponse {
                status_code: 200,
                body: thread.into_bytes(),
                ..HttpResponse::default()
            })
            .unwrap())
        }
    }

    /// A provider answering with [`Where`], on lanes or not, listening on a free port: its
    /// address.
    async fn serving(on_lanes: bool) -> (HttpServer, String) {
        let server = HttpServer::new().serving_on_lanes(on_lanes);
        server.start(Arc::new(Where)).await.unwrap();
        let link = LinkDefinition {
            actor_id: "MA".into(),
            contract_id: weft_contracts::httpserver::CONTRACT_ID.into(),
            link_name: "default".into(),
            provider_id: "http".into(),
            values: [("address".to_string(), "127.0.0.1:0".to_string())].into(),
        };
        server.put_link(&link).await.unwrap();
        let address = server.bound_address("MA", "default").unwrap().to_string();
        (server, address)
    }

    /// The threads that served `requests` requests sent one after another on one kept-alive
    /// connection, in order.
    async fn served_on(address: &str, requests: usize) -> Vec<String> {
        let mut connection = BufReader::new(TcpStream::connect(address).await.unwrap());
        let mut threads = Vec::new();
        for _ in 0..requests {
            connection
                .get_mut()
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut length = None;
            loop {
                let mut line = String::new();
                connection.read_line(&mut line).await.unwrap();
                let line = line.trim_end().to_ascii_lowercase();
                if line.is_empty() {
                    break;
                }
                if let Some(value) = line.strip_prefix("content-length:") {
                    length = Some(value.trim().parse::<usize>().unwrap());
                }
            }
            let mut body = vec![0; length.expect("a content-length")];
            connection.read_exact(&mut body).await.unwrap();
            threads.push(String::from_utf8(body).unwrap());
        }
        threads
    }

    /// Accepted on a runtime of two workers, on a machine of two cores or more: each
    /// connection is served on one lane, every request of it, and the connections are shared
    /// out over both lanes. On one core there are no lanes, and each request is served on one
    /// of the runtime's own workers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_connection_is_served_on_one_lane_and_connections_share_the_lanes() {
        let (_server, address) = serving(true).await;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut lanes_used = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let threads = served_on(&address, 3).await;
            if cores < 2 {
                assert!(
                    threads.iter().all(|t| t.starts_with("tokio-")),
                    "{threads:?}"
                );
                continue;
            }
            assert!(threads[0].starts_with("weft-http-"), "{threads:?}");
            assert!(threads.iter().all(|t| *t == threads[0]), "{threads:?}");
            lanes_used.insert(threads[0].clone());
        }
        if cores >= 2 {
            assert_eq!(lanes_used.len(), 2, "{lanes_used:?}");
        }
    }

    /// Accepted on a runtime of one thread: served on that thread, with no lane started.
    #[tokio::test]
    async fn a_single_threaded_runtime_serves_its_connections_itself() {
        let (_server, address) = serving(true).await;
        let this_thread = std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            served_on(&address, 2).await,
            [this_thread.clone(), this_thread]
        );
        assert!(super::LANES.get().is_none());
    }

    /// Lanes turned off (`--config lanes=off`): on a runtime of two workers, requests are
    /// served on its workers and no lane starts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_lanes_off_the_runtimes_workers_serve() {
        let (_server, address) = serving(false).await;
        for _ in 0..2 {
            let threads = served_on(&address, 2).await;
            assert!(
                threads.iter().all(|t| t.starts_with("tokio-")),
                "{threads:?}"
            );
        }
        assert!(super::LANES.get().is_none());
    }
}
