//! Listening sockets handed from one process of an HTTP server provider to the process that
//! replaces it, over a Unix socket (`SCM_RIGHTS`). The replacement then listens on the very
//! socket the old process listens on: the port never closes, and a connection waiting to be
//! accepted is accepted by whichever process is there, never reset (two sockets bound with
//! `SO_REUSEPORT` would each have a queue of their own, and closing one resets what waits in
//! it).
//!
//! Each process that shares ([`share_sockets`]) serves requests on `{dir}/{scope}.{pid}.sock`;
//! `dir` is made mode 0700, so only its user reaches it, and `scope` names the lattice and
//! provider id, so only a replacement of the same provider asks there. A request names an
//! address and the link (actor, link name) it is for; a socket is handed over only for the
//! link it serves, as in one process (`crate::listen`). Bounds: a request is one line of at
//! most [`MAX_REQUEST_BYTES`], read within [`ANSWER_WITHIN`]; requests are served one at a
//! time.

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The longest request line.
const MAX_REQUEST_BYTES: u64 = 1024;
/// How long either side waits for the other.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Where this process shares its sockets, once it does.
static SHARING: OnceLock<Sharing> = OnceLock::new();

struct Sharing {
    dir: PathBuf,
    scope: String,
}

/// Shares this process's listening sockets with a later process of the same `scope` (a
/// lattice and provider id), through Unix sockets in `dir`: serves requests for them until
/// the process exits, and from now on a link whose address is taken asks the other processes
/// of `scope` there for their socket before it fails. Call once, before links are put.
pub fn share_sockets(dir: &Path, scope: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // An existing directory keeps its mode; one others can enter is refused.
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is open to other users (mode {mode:o})", dir.display()),
        ));
    }
    let scope = scope.replace(['/', '\0'], "_");
    let path = dir.join(format!("{scope}.{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let shared = Sharing {
        dir: dir.to_path_buf(),
        scope,
    };
    if SHARING.set(shared).is_err() {
        return Err(std::io::Error::other(
            "this process shares its sockets already",
        ));
    }
    std::thread::Builder::new()
        .name("http-socket-handover".into())
        .spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                if let Err(error) = answer(stream) {
                    tracing::warn!(%error, "a request for a listening socket failed");
                }
            }
        })?;
    Ok(())
}

/// Answers one request: `1` and the socket, or `0` (none for that address and link here).
fn answer(stream: UnixStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(ANSWER_WITHIN))?;
    stream.set_write_timeout(Some(ANSWER_WITHIN))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST_BYTES)).read_line(&mut line)?;
    let mut parts = line.trim_end().splitn(3, '\t');
    let (Some(address), Some(actor), Some(link_name)) = (parts.next(), parts.next(), parts.next())
    else {
        return (&stream).write_all(b"0");
    };
    let link = (actor.to_string(), link_name.to_string());
    let socket = address
        .parse::<SocketAddr>()
        .ok()
        .and_then(|address| crate::shared_socket(address, &link));
    let Some(socket) = socket else {
        return (&stream).write_all(b"0");
    };
    let fds = [socket.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        &stream,
        &[IoSlice::new(b"1")],
        &mut control,
        rustix::net::SendFlags::empty(),
    )?;
    tracing::info!(%address, actor, "listening socket handed to a replacement process");
    Ok(())
}

/// The listening socket another process of this scope has on `address` for `link`, if this
/// process shares sockets and one does.
pub(crate) fn fetch(address: SocketAddr, link: &(String, String)) -> Option<std::net::TcpListener> {
    let sharing = SHARING.get()?;
    let own = format!("{}.{}.sock", sharing.scope, std::process::id());
    let prefix = format!("{}.", sharing.scope);
    let entries = std::fs::read_dir(&sharing.dir).ok()?;
    for entry in entries.map_while(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let numbered = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".sock"))
            .is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()));
        if !numbered || name == own {
            continue;
        }
        match ask(&entry.path(), address, link) {
            Ok(Some(socket)) => return Some(socket),
            Ok(None) => {}
            // Its process is gone: the file is stale.
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                let _ = std::fs::remove_file(entry.path());
            }
            Err(error) => {
                tracing::debug!(%error, path = %entry.path().display(), "no socket from there")
            }
        }
    }
    None
}

/// Asks the process serving `path` for its socket on `address` for `link`.
fn ask(
    path: &Path,
    address: SocketAddr,
    link: &(String, String),
) -> std::io::Result<Option<std::net::TcpListener>> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(ANSWER_WITHIN))?;
    stream.set_write_timeout(Some(ANSWER_WITHIN))?;
    (&stream).write_all(format!("{address}\t{}\t{}\n", link.0, link.1).as_bytes())?;
    let mut byte = [0u8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        &stream,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut received: Option<OwnedFd> = None;
    for message in control.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(fds) = message {
            for fd in fds {
                received.get_or_insert(fd);
            }
        }
    }
    match (byte, received) {
        ([b'1'], Some(fd)) => {
            let socket = std::net::TcpListener::from(fd);
            // Only a listening TCP socket on the address asked for is taken.
            if socket.local_addr()? != address {
                return Ok(None);
            }
            socket.set_nonblocking(true)?;
            Ok(Some(socket))
        }
        _ => Ok(None),
    }
}
