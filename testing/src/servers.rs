//! Real servers for tests.
//!
//! Starts `nats-server`, `redis-server` and `chromedriver` as child processes on free loopback
//! ports, waits until they accept connections, keeps the end of what each writes to its
//! standard error (read as it is written, so a chatty server never blocks on a full pipe; it
//! says why a server exited or a cluster's routes stayed down: [`Process::log_tail`]), and
//! stops them when dropped (SIGKILL, then reaped), so a failing test leaves nothing running.
//! A server can be killed and restarted on the same port and with the same data (Redis
//! appends every write to its log before acknowledging it, so a restart loses nothing that
//! was acknowledged).
//!
//! **What it is not:** a mock. If a binary is missing the start fails with an error naming the
//! package to install (`scripts/setup.sh` installs both); tests fail loudly, never skip.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a server gets to accept connections after it is spawned.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The binary is not installed.
    #[error(
        "{binary} is not installed or not on PATH ({source}); run scripts/setup.sh, which installs the Debian package {package}"
    )]
    Missing {
        /// The program.
        binary: &'static str,
        /// The Debian package that has it.
        package: &'static str,
        /// The spawn error.
        #[source]
        source: std::io::Error,
    },
    /// It started but did not accept connections in time, or exited.
    #[error("{binary} on port {port} did not accept connections within {within:?}: {detail}")]
    NotReady {
        /// The program.
        binary: &'static str,
        /// Its port.
        port: u16,
        /// The time allowed.
        within: Duration,
        /// What was seen.
        detail: String,
    },
    /// Local I/O (a free port, a temporary directory).
    #[error("setting up a test server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> Result<u16, ServerError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// How many times a server is started on fresh ports when one it was given was taken first
/// (or a cluster's routes did not come up).
const PORT_ATTEMPTS: usize = 3;

impl ServerError {
    /// Whether the server exited because a port it was given was taken: [`free_port`] finds
    /// a port free, and another test may bind it before the server does.
    fn port_taken(&self) -> bool {
        matches!(self, ServerError::NotReady { detail, .. }
            if detail.to_ascii_lowercase().contains("address already in use"))
    }

    /// Whether a NATS cluster started but its routes did not come up in time.
    fn routes_down(&self) -> bool {
        matches!(self, ServerError::NotReady { detail, .. } if detail.starts_with(ROUTES_DOWN))
    }

    /// Whether starting again on fresh ports may succeed: a port was taken, or (a
    /// [`NatsCluster`]) the routes stayed down — a fresh-clone CI run, with the soak and two
    /// load tests beside it on 2 cores, once saw them stay down for the whole wait.
    fn worth_another_try(&self) -> bool {
        self.port_taken() || self.routes_down()
    }
}

/// What [`NatsCluster::start`] reports when a message published on one server does not reach
/// a subscriber on another in time.
const ROUTES_DOWN: &str = "the cluster's routes did not come up";

/// `start` again, on fresh ports, while the ports it picked were taken before it bound them
/// (or a cluster's routes did not come up on them).
fn on_free_ports<T>(mut start: impl FnMut() -> Result<T, ServerError>) -> Result<T, ServerError> {
    let mut attempt = 1;
    loop {
        match start() {
            Err(error) if error.worth_another_try() && attempt < PORT_ATTEMPTS => attempt += 1,
            result => return result,
        }
    }
}

/// One child server process, how to start it again, and what a test does to it: kill,
/// pause, resume, restart. [`NatsServer`] and [`RedisServer`] are this, started their way.
pub struct Process {
    binary: &'static str,
    package: &'static str,
    args: Vec<String>,
    port: u16,
    child: Option<Child>,
    ready: Readiness,
    log: Log,
    /// The thread reading the running process's standard error into `log`.
    draining: Option<std::thread::JoinHandle<()>>,
}

/// Most bytes of a server's standard error kept: the end of it, which says why it stopped.
const LOG_TAIL_BYTES: usize = 16 << 10;

/// The last [`LOG_TAIL_BYTES`] a server wrote to its standard error, across restarts. Read as
/// it is written: a pipe nobody reads fills (64 KiB on Linux) and then stops the server in
/// the middle of writing a line, which a long test with many logged refusals would reach.
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<String>>);

impl Log {
    /// Reads `stderr` into the log until it closes (the process exited), on a thread.
    fn drain(&self, stderr: ChildStderr) -> std::io::Result<std::thread::JoinHandle<()>> {
        let log = self.clone();
        std::thread::Builder::new()
            .name("server-log".into())
            .spawn(move || {
                let (mut stderr, mut chunk) = (stderr, [0u8; 4096]);
                while let Ok(read @ 1..) = std::io::Read::read(&mut stderr, &mut chunk) {
                    log.push(&String::from_utf8_lossy(
                        chunk.get(..read).unwrap_or_default(),
                    ));
                }
            })
    }

    fn push(&self, text: &str) {
        let mut log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        log.push_str(text);
        // Cut back to the tail once it is twice as long: each byte is moved once, not on
        // every line.
        if log.len() > 2 * LOG_TAIL_BYTES {
            let cut = log.ceil_char_boundary(log.len() - LOG_TAIL_BYTES);
            log.drain(..cut);
        }
    }

    fn tail(&self, bytes: usize) -> String {
        let log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let from = log.ceil_char_boundary(log.len().saturating_sub(bytes));
        log.get(from..).unwrap_or_default().to_string()
    }
}

/// When a started server counts as ready.
#[derive(Debug, Clone, Copy)]
enum Readiness {
    /// It accepts a TCP connection.
    Accepts,
    /// It answers `PING` with `+PONG`: Redis accepts connections while it still loads its
    /// data, and answers `-LOADING` meanwhile.
    AnswersRedisPing,
}

impl Readiness {
    fn reached(self, address: &SocketAddr) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(address, Duration::from_millis(100)) else {
            return false;
        };
        match self {
            Readiness::Accepts => true,
            Readiness::AnswersRedisPing => {
                use std::io::{Read, Write};
                let mut reply = [0u8; 16];
                stream
                    .set_read_timeout(Some(Duration::from_millis(500)))
                    .is_ok()
                    && stream.write_all(b"PING\r\n").is_ok()
                    && stream
                        .read(&mut reply)
                        .is_ok_and(|n| reply.get(..n).is_some_and(|r| r.starts_with(b"+PONG")))
            }
        }
    }
}

impl Process {
    fn new(
        binary: &'static str,
        package: &'static str,
        args: Vec<String>,
        port: u16,
        ready: Readiness,
    ) -> Self {
        Process {
            binary,
            package,
            args,
            port,
            child: None,
            ready,
            log: Log::default(),
            draining: None,
        }
    }

    fn spawn(&mut self) -> Result<(), ServerError> {
        let mut child = Command::new(self.binary)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ServerError::Missing {
                binary: self.binary,
                package: self.package,
                source,
            })?;
        if let Some(stderr) = child.stderr.take() {
            match self.log.drain(stderr) {
                Ok(draining) => self.draining = Some(draining),
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ServerError::Io(error));
                }
            }
        }
        self.child = Some(child);
        self.wait_ready()
    }

    /// The end of what it wrote to its standard error (since it was first started), at most
    /// `bytes` of it.
    pub fn log_tail(&self, bytes: usize) -> String {
        self.log.tail(bytes)
    }

    fn wait_ready(&mut self) -> Result<(), ServerError> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                // What it wrote last is read to its end once the process is gone.
                if let Some(draining) = self.draining.take() {
                    let until = Instant::now() + Duration::from_secs(1);
                    while !draining.is_finished() && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                let said = self.log.tail(4 << 10);
                return Err(self.not_ready(format!("it exited with {status}: {}", said.trim())));
            }
            if self.ready.reached(&address) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let said = self.log.tail(2 << 10);
        Err(self.not_ready(format!(
            "no connection accepted; its log ends: {}",
            said.trim()
        )))
    }

    fn not_ready(&self, detail: String) -> ServerError {
        ServerError::NotReady {
            binary: self.binary,
            port: self.port,
            within: READY_WITHIN,
            detail,
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id while it runs (for reading what it used from `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills it (SIGKILL) and reaps it: clients see the connection drop; nothing is flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Sends `signal` (a `kill -s` name) to the process: STOP freezes it with its sockets
    /// open, so clients hang rather than see a refused connection; CONT resumes it.
    fn signal(&mut self, signal: &str) -> Result<(), ServerError> {
        let Some(child) = self.child.as_ref() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(ServerError::Io(std::io::Error::other(format!(
                "kill -s {signal} {} failed: {status}",
                child.id()
            ))))
        }
    }

    /// Freezes it (SIGSTOP): connections stay open and nothing answers.
    pub fn pause(&mut self) -> Result<(), ServerError> {
        self.signal("STOP")
    }

    /// Resumes it after [`Process::pause`] (SIGCONT).
    pub fn resume(&mut self) -> Result<(), ServerError> {
        self.signal("CONT")
    }

    /// Starts it again on the same port (and, for Redis, with the same data) after
    /// [`Process::kill`].
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.kill();
        self.spawn()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `nats-server` on a free loopback port.
pub struct NatsServer {
    process: Process,
}

impl NatsServer {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Result<Self, ServerError> {
        Self::start_with(&[])
    }

    /// Starts one with extra command-line arguments (`--max_payload`, auth, ...).
    pub fn start_with(extra_args: &[&str]) -> Result<Self, ServerError> {
        on_free_ports(|| Self::start_on(free_port()?, extra_args))
    }

    fn start_on(port: u16, extra_args: &[&str]) -> Result<Self, ServerError> {
        let mut args = vec![
            "--addr".to_string(),
            "127.0.0.1".to_string(),
            "--port".to_string(),
            port.to_string(),
        ];
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let mut process =
            Process::new("nats-server", "nats-server", args, port, Readiness::Accepts);
        process.spawn()?;
        Ok(NatsServer { process })
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.process.port)
    }
}

/// Three (or more) `nats-server`s in one cluster on loopback: each has a client port and a
/// cluster port, and routes to the others.
pub struct NatsCluster {
    servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` servers routed to each other, and waits until a message published on
    /// each reaches a subscriber on every other (the routes are up).
    /// A cluster whose routes do not come up in time is stopped and started again on fresh
    /// ports, as one whose port was taken is.
    pub fn start(size: usize) -> Result<Self, ServerError> {
        on_free_ports(|| Self::start_once(size))
    }

    fn start_once(size: usize) -> Result<Self, ServerError> {
        let cluster_ports = (0..size)
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()?;
        let routes = |own: u16| {
            cluster_ports
                .iter()
                .filter(|&&p| p != own)
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let servers = cluster_ports
            .iter()
            .map(|&port| {
                let listen = format!("nats://127.0.0.1:{port}");
                NatsServer::start_with(&[
                    "--cluster_name",
                    "weft-test",
                    "--cluster",
                    &listen,
                    "--routes",
                    &routes(port),
                ])
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cluster = NatsCluster { servers };
        cluster.wait_routed()?;
        Ok(cluster)
    }

    /// Waits until the routes are up: a message published on each server reaches a
    /// subscriber on every other (spoken in NATS's text protocol, so this crate needs no
    /// client library).
    fn wait_routed(&self) -> Result<(), ServerError> {
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            let ports: Vec<u16> = self.servers.iter().map(|s| s.process.port).collect();
            let all = ports.iter().enumerate().all(|(i, &from)| {
                ports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .all(|(_, &to)| delivers(from, to).unwrap_or(false))
            });
            if all {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let logs: Vec<String> = (self.servers.iter())
            .map(|s| {
                format!(
                    "[port {}] {}",
                    s.process.port,
                    s.process.log_tail(2 << 10).trim()
                )
            })
            .collect();
        Err(ServerError::NotReady {
            binary: "nats-server",
            port: self.servers.first().map_or(0, |s| s.process.port),
            within: READY_WITHIN,
            detail: format!("{ROUTES_DOWN}; the servers' logs end: {}", logs.join(" ")),
        })
    }

    /// Server `i`'s client URL.
    pub fn url(&self, i: usize) -> String {
        self.servers.get(i).map(NatsServer::url).unwrap_or_default()
    }

    /// Every server's client URL, comma-separated, starting with server `first`: what a
    /// process is given to fail over between them.
    pub fn urls_from(&self, first: usize) -> String {
        let n = self.servers.len();
        (0..n)
            .map(|k| self.url((first + k) % n))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Server `i`, to kill, pause or restart.
    pub fn server(&mut self, i: usize) -> Option<&mut NatsServer> {
        self.servers.get_mut(i)
    }
}

/// Whether a message published on the server at port `from` reaches a subscriber on the one
/// at port `to`.
fn delivers(from: u16, to: u16) -> std::io::Result<bool> {
    use std::io::{Read, Write};
    let open = |port: u16| -> std::io::Result<TcpStream> {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        Ok(stream)
    };
    // Reads until `wanted` appears in what the server sent, or the timeout.
    let read_until = |stream: &mut TcpStream, wanted: &str| -> bool {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                return false;
            }
            seen.extend_from_slice(buf.get(..n).unwrap_or_default());
            if String::from_utf8_lossy(&seen).contains(wanted) {
                return true;
            }
        }
        false
    };
    let mut subscriber = open(to)?;
    subscriber.write_all(b"CONNECT {\"verbose\":false}\r\nSUB weft.routed 1\r\nPING\r\n")?;
    if !read_until(&mut subscriber, "PONG") {
        return Ok(false);
    }
    let mut publisher = open(from)?;
    publisher.write_all(b"CONNECT {\"verbose\":false}\r\nPUB weft.routed 2\r\nhi\r\nPING\r\n")?;
    read_until(&mut publisher, "PONG");
    Ok(read_until(&mut subscriber, "MSG weft.routed"))
}

impl std::ops::Deref for NatsServer {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl std::ops::DerefMut for NatsServer {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// A `chromedriver` (Debian's chromium-driver) on a free loopback port: the WebDriver server
/// through which a test drives a real headless Chromium.
pub struct ChromeDriver {
    process: Process,
}

impl ChromeDriver {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Result<Self, ServerError> {
        on_free_ports(|| {
            let port = free_port()?;
            let args = vec![format!("--port={port}"), "--allowed-ips=127.0.0.1".into()];
            let mut process = Process::new(
                "chromedriver",
                "chromium-driver",
                args,
                port,
                Readiness::Accepts,
            );
            process.spawn()?;
            Ok(ChromeDriver { process })
        })
    }

    /// `http://127.0.0.1:PORT`, where a WebDriver client connects.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.process.port)
    }
}

/// A `redis-server` on a free loopback port, logging every write to an append-only file in
/// its own temporary directory and syncing it before acknowledging (`appendfsync always`).
pub struct RedisServer {
    process: Process,
    _data: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Result<Self, ServerError> {
        Self::start_with(&[])
    }

    /// Starts one with extra command-line arguments, which override the defaults above
    /// (`--appendfsync everysec`, ...).
    pub fn start_with(extra_args: &[&str]) -> Result<Self, ServerError> {
        on_free_ports(|| Self::start_on(free_port()?, extra_args))
    }

    fn start_on(port: u16, extra_args: &[&str]) -> Result<Self, ServerError> {
        let data = tempfile::tempdir()?;
        let dir: PathBuf = data.path().to_path_buf();
        let args = [
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--dir",
            &dir.to_string_lossy(),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ]
        .iter()
        .chain(extra_args)
        .map(|a| a.to_string())
        .collect();
        let mut process = Process::new(
            "redis-server",
            "redis-server",
            args,
            port,
            Readiness::AnswersRedisPing,
        );
        process.spawn()?;
        Ok(RedisServer {
            process,
            _data: data,
        })
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.process.port)
    }

    /// The value of `key` (no spaces in it), read over a connection of its own as any client
    /// would: what a test checks the store against.
    pub fn get(&self, key: &str) -> Result<Option<String>, ServerError> {
        use std::io::{BufRead, BufReader, Read, Write};
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.process.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(format!("GET {key}\r\n").as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let unexpected = || {
            ServerError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("redis answered GET {key} with {header:?}"),
            ))
        };
        let length: i64 = header
            .strip_prefix('$')
            .and_then(|n| n.trim_end().parse().ok())
            .ok_or_else(unexpected)?;
        let Ok(length) = usize::try_from(length) else {
            return Ok(None); // $-1: no such key
        };
        let mut value = vec![0; length + 2];
        reader.read_exact(&mut value)?;
        value.truncate(length);
        Ok(Some(String::from_utf8_lossy(&value).into_owned()))
    }
}

impl std::ops::Deref for RedisServer {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl std::ops::DerefMut for RedisServer {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Read, Write};

    #[test]
    fn a_cluster_whose_routes_stay_down_is_told_apart_from_a_taken_port() {
        let down = ServerError::NotReady {
            binary: "nats-server",
            port: 1,
            within: READY_WITHIN,
            detail: ROUTES_DOWN.into(),
        };
        assert!(down.routes_down() && !down.port_taken(), "{down}");
        assert!(down.worth_another_try(), "{down}");
        let taken = ServerError::NotReady {
            binary: "nats-server",
            port: 1,
            within: READY_WITHIN,
            detail: "listen tcp 127.0.0.1:1: bind: address already in use".into(),
        };
        assert!(taken.port_taken() && !taken.routes_down(), "{taken}");
        let exited = ServerError::NotReady {
            binary: "nats-server",
            port: 1,
            within: READY_WITHIN,
            detail: "it exited: bad flag".into(),
        };
        assert!(!exited.worth_another_try(), "{exited}");
    }

    #[test]
    fn a_port_taken_before_the_server_binds_it_is_told_apart_and_another_is_tried() {
        // The cluster port is the one that clashed in a CI run: taken, the server exits.
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let cluster = |port: u16| format!("nats://127.0.0.1:{port}");
        let busy = cluster(taken.local_addr().unwrap().port());
        let err = NatsServer::start_on(free_port().unwrap(), &["--cluster", &busy])
            .err()
            .unwrap();
        assert!(err.port_taken(), "{err}");

        let mut attempts = 0;
        let nats = on_free_ports(|| {
            attempts += 1;
            let port = if attempts < 3 {
                busy.clone()
            } else {
                cluster(free_port()?)
            };
            NatsServer::start_on(free_port()?, &["--cluster", &port])
        })
        .unwrap();
        assert_eq!(
            attempts, 3,
            "two on the taken port, the third on a free one"
        );
        assert!(TcpStream::connect(nats.url().trim_start_matches("nats://")).is_ok());
    }

    fn redis_command(port: u16, command: &str) -> String {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        stream.write_all(command.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reply = [0u8; 64];
        let n = stream.read(&mut reply).unwrap();
        String::from_utf8_lossy(&reply[..n]).into_owned()
    }

    #[test]
    fn redis_keeps_acknowledged_writes_across_a_kill() {
        let mut redis = RedisServer::start().unwrap();
        assert_eq!(redis_command(redis.port(), "INCRBY n 5\r\n"), ":5\r\n");
        redis.kill();
        assert!(!redis.is_running());
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, redis.port())).is_err());
        redis.restart().unwrap();
        assert_eq!(redis_command(redis.port(), "GET n\r\n"), "$1\r\n5\r\n");
    }

    #[test]
    fn nats_restarts_on_the_same_port_and_dropping_stops_it() {
        let mut nats = NatsServer::start().unwrap();
        let port = nats.port();
        assert!(nats.url().ends_with(&port.to_string()));
        nats.kill();
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
        nats.restart().unwrap();
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok());
        drop(nats);
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    }

    #[test]
    fn a_server_that_logs_much_keeps_serving_and_its_log_is_kept() {
        // Tracing, nats-server logs two lines for each PING: far more than a pipe holds.
        let nats = NatsServer::start_with(&["-V"]).unwrap();
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, nats.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        const PINGS: usize = 3000;
        let mut sent = b"CONNECT {\"verbose\":false}\r\n".to_vec();
        sent.extend(b"PING\r\n".repeat(PINGS));
        stream.write_all(&sent).unwrap();
        let mut lines = std::io::BufReader::new(stream);
        let mut pongs = 0;
        let mut line = String::new();
        while pongs < PINGS {
            line.clear();
            let read = lines.read_line(&mut line);
            assert!(
                read.is_ok_and(|n| n > 0),
                "the server stopped answering after {pongs} PONGs"
            );
            pongs += usize::from(line == "PONG\r\n");
        }
        let until = Instant::now() + Duration::from_secs(5);
        while !nats.log_tail(1 << 10).contains("PING") && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let tail = nats.log_tail(1 << 10);
        assert!(tail.contains("PING") && tail.len() <= 1 << 10, "{tail}");
    }

    #[test]
    fn a_missing_binary_is_named_with_its_package() {
        let mut process = Process::new(
            "weft-no-such-server",
            "weft-no-such-package",
            Vec::new(),
            1,
            Readiness::Accepts,
        );
        let err = process.spawn().unwrap_err().to_string();
        assert!(
            err.contains("weft-no-such-server is not installed"),
            "{err}"
        );
        assert!(err.contains("scripts/setup.sh"), "{err}");
    }
}
