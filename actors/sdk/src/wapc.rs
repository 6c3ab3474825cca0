//! The guest side of waPC, the call boundary every actor of the lineage speaks: the host
//! calls the exported `__guest_call` with an operation's name and its payload, and the
//! guest calls the host with `__host_call`.
//!
//! The SDK's own instead of `wapc-guest`'s, with the same functions and types
//! ([`register_function`], [`host_call`], [`console_log`], [`CallResult`]), because of what
//! `wapc-guest` does on every call: two fresh buffers for the operation and the payload, a
//! read lock, and a SipHash lookup of the operation's name. On a hello world those were a
//! fifth of the actor's time. Here the payload lands in one buffer kept from call to call,
//! the operation is found by comparing its bytes with the few registered names, and an
//! answer written by the SDK itself ([`http::serve_borrowed`](crate::http::serve_borrowed))
//! goes into a second kept buffer. An actor links this or `wapc-guest`, not both: each exports
//! `__guest_call`.
//!
//! Outside wasm (the SDK's unit tests) nothing is linked to a host: calls fail saying so.

// Natively only the unit tests reach the dispatch; on wasm the export does.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

use std::cell::RefCell;

/// What a guest's operation handler and a host call return, as in `wapc-guest`.
pub type CallResult = Result<Vec<u8>, Box<dyn std::error::Error + Sync + Send>>;

/// A handler of one operation: the payload in, the answer out.
pub type Handler = fn(&[u8]) -> CallResult;

/// A handler that writes its answer into the buffer it is given (cleared, capacity kept).
pub(crate) type Writer =
    fn(&[u8], &mut Vec<u8>) -> Result<(), Box<dyn std::error::Error + Sync + Send>>;

#[derive(Clone, Copy)]
enum Serve {
    Answer(Handler),
    Write(Writer),
}

/// Past this, a call's buffers are not kept for the next one: one large request must not hold
/// its memory for the instance's life.
const KEPT_BUFFER_BYTES: usize = 64 << 10;

thread_local! {
    /// The registered operations; a handful, so a scan beats hashing the name.
    static OPERATIONS: RefCell<Vec<(Box<str>, Serve)>> = const { RefCell::new(Vec::new()) };
    /// The last call's buffers, kept for the next: the request's, then the answer's.
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Registers `handler` for `operation`, replacing any handler it had.
pub fn register_function(operation: &str, handler: Handler) {
    register(operation, Serve::Answer(handler));
}

/// Registers `writer` for `operation`: its answer goes into a kept buffer, no allocation.
pub(crate) fn register_writer(operation: &str, writer: Writer) {
    register(operation, Serve::Write(writer));
}

fn register(operation: &str, serve: Serve) {
    OPERATIONS.with(|operations| {
        let mut operations = operations.borrow_mut();
        match operations.iter_mut().find(|(name, _)| **name == *operation) {
            Some((_, registered)) => *registered = serve,
            None => operations.push((operation.into(), serve)),
        }
    });
}

fn find(operation: &[u8]) -> Option<Serve> {
    OPERATIONS.with(|operations| {
        operations
            .borrow()
            .iter()
            .find(|(name, _)| crate::same::same(name.as_bytes(), operation))
            .map(|(_, serve)| *serve)
    })
}

/// The host's error for a failed host call, as `wapc-guest` words it.
#[derive(Debug)]
pub struct HostError(String);

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Host error: {}", self.0)
    }
}

impl std::error::Error for HostError {}

/// Calls `operation` of `namespace` (a contract, or another actor) through the link named
/// `binding`, with `payload`; the host's answer, or its error.
pub fn host_call(binding: &str, namespace: &str, operation: &str, payload: &[u8]) -> CallResult {
    abi::host_call(binding, namespace, operation, payload)
}

/// Writes `text` to the host's log of this actor.
pub fn console_log(text: &str) {
    abi::console_log(text);
}

/// Serves one call: `1` with the answer handed to the host, `0` with an error handed to it.
fn guest_call(operation_len: usize, request_len: usize) -> bool {
    let (mut request, mut answer) = BUFFERS.with(|buffers| buffers.take());
    let served = serve(operation_len, request_len, &mut request, &mut answer);
    match &served {
        Ok(Some(owned)) => abi::respond(owned),
        Ok(None) => abi::respond(&answer),
        Err(error) => abi::fail(error),
    }
    for buffer in [&mut request, &mut answer] {
        if buffer.capacity() > KEPT_BUFFER_BYTES {
            *buffer = Vec::new();
        }
        buffer.clear();
    }
    // Kept unless a call the handler made reentered this instance and left its own there.
    BUFFERS.with(|buffers| {
        let mut buffers = buffers.borrow_mut();
        if buffers.0.capacity() == 0 {
            *buffers = (request, answer);
        }
    });
    served.is_ok()
}

/// Reads the call into `request` and runs its handler: its answer, or `None` when it was
/// written into `answer`. Both buffers come empty ([`guest_call`] keeps them so).
fn serve(
    operation_len: usize,
    request_len: usize,
    request: &mut Vec<u8>,
    answer: &mut Vec<u8>,
) -> Result<Option<Vec<u8>>, String> {
    let total = operation_len
        .checked_add(request_len)
        .ok_or("the call's operation and payload lengths overflow")?;
    request.reserve(total);
    abi::read_request(request, operation_len, request_len);
    let (operation, payload) = request.split_at(operation_len.min(request.len()));
    match find(operation) {
        None => Err(format!(
            "No handler registered for function {}",
            String::from_utf8_lossy(operation)
        )),
        Some(Serve::Answer(handler)) => handler(payload).map(Some).map_err(|e| e.to_string()),
        Some(Serve::Write(writer)) => writer(payload, answer)
            .map(|()| None)
            .map_err(|e| e.to_string()),
    }
}

/// The waPC imports and exports, on wasm.
#[cfg(target_family = "wasm")]
#[allow(unsafe_code)]
mod abi {
    use super::{CallResult, HostError};

    #[link(wasm_import_module = "wapc")]
    unsafe extern "C" {
        fn __console_log(ptr: *const u8, len: usize);
        #[allow(clippy::too_many_arguments)]
        fn __host_call(
            binding_ptr: *const u8,
            binding_len: usize,
            namespace_ptr: *const u8,
            namespace_len: usize,
            operation_ptr: *const u8,
            operation_len: usize,
            payload_ptr: *const u8,
            payload_len: usize,
        ) -> usize;
        fn __host_response(ptr: *mut u8);
        fn __host_response_len() -> usize;
        fn __host_error(ptr: *mut u8);
        fn __host_error_len() -> usize;
        fn __guest_response(ptr: *const u8, len: usize);
        fn __guest_error(ptr: *const u8, len: usize);
        fn __guest_request(operation_ptr: *mut u8, payload_ptr: *mut u8);
    }

    /// The export the host calls for each operation.
    // The host looks it up by this exact name, so the symbol must not be mangled.
    #[unsafe(no_mangle)]
    pub extern "C" fn __guest_call(operation_len: i32, request_len: i32) -> i32 {
        match (usize::try_from(operation_len), usize::try_from(request_len)) {
            (Ok(operation_len), Ok(request_len)) => {
                i32::from(super::guest_call(operation_len, request_len))
            }
            _ => {
                fail("the host gave a negative length for the call");
                0
            }
        }
    }

    /// Fills `request` (capacity reserved for both) with the operation's name and then the
    /// payload, as the host copies them.
    pub(super) fn read_request(request: &mut Vec<u8>, operation_len: usize, request_len: usize) {
        let start = request.as_mut_ptr();
        // SAFETY: `request` has room for `operation_len + request_len` bytes (reserved by the
        // caller), and the host writes exactly that many: the operation at `start`, the
        // payload right after it.
        unsafe {
            __guest_request(start, start.add(operation_len));
            request.set_len(operation_len + request_len);
        }
    }

    pub(super) fn respond(answer: &[u8]) {
        // SAFETY: the host copies `answer.len()` bytes out of live memory.
        unsafe { __guest_response(answer.as_ptr(), answer.len()) }
    }

    pub(super) fn fail(error: &str) {
        // SAFETY: as in `respond`.
        unsafe { __guest_error(error.as_ptr(), error.len()) }
    }

    pub(super) fn host_call(
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> CallResult {
        // SAFETY: each pointer and length is a live slice's.
        let succeeded = unsafe {
            __host_call(
                binding.as_ptr(),
                binding.len(),
                namespace.as_ptr(),
                namespace.len(),
                operation.as_ptr(),
                operation.len(),
                payload.as_ptr(),
                payload.len(),
            )
        } == 1;
        if succeeded {
            // SAFETY: the host writes exactly the length it reported.
            Ok(unsafe { read(__host_response_len(), |ptr| __host_response(ptr)) })
        } else {
            // SAFETY: as above.
            let error = unsafe { read(__host_error_len(), |ptr| __host_error(ptr)) };
            Err(Box::new(HostError(
                String::from_utf8_lossy(&error).into_owned(),
            )))
        }
    }

    /// A buffer of `len` bytes filled by `fill`.
    ///
    /// # Safety
    /// `fill` writes exactly `len` bytes at the pointer it is given.
    unsafe fn read(len: usize, fill: impl FnOnce(*mut u8)) -> Vec<u8> {
        let mut buffer = Vec::with_capacity(len);
        fill(buffer.as_mut_ptr());
        // SAFETY: the caller's promise.
        unsafe { buffer.set_len(len) };
        buffer
    }

    pub(super) fn console_log(text: &str) {
        // SAFETY: a live slice.
        unsafe { __console_log(text.as_ptr(), text.len()) }
    }
}

/// Outside wasm there is no host: the SDK's unit tests run here, and play the host's part of a
/// call with [`abi::CALL`] and [`abi::ANSWERED`].
#[cfg(not(target_family = "wasm"))]
mod abi {
    use super::{CallResult, HostError};
    use std::cell::RefCell;

    thread_local! {
        /// The operation and payload of the call the test makes.
        pub(super) static CALL: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
        /// What the guest handed back: its answer, or its error.
        pub(super) static ANSWERED: RefCell<Option<Result<Vec<u8>, String>>> = const { RefCell::new(None) };
    }

    pub(super) fn read_request(request: &mut Vec<u8>, operation_len: usize, request_len: usize) {
        CALL.with(|call| {
            let (operation, payload) = &*call.borrow();
            assert_eq!(
                (operation.len(), payload.len()),
                (operation_len, request_len)
            );
            request.extend_from_slice(operation);
            request.extend_from_slice(payload);
        });
    }

    pub(super) fn respond(answer: &[u8]) {
        ANSWERED.with(|answered| *answered.borrow_mut() = Some(Ok(answer.to_vec())));
    }

    pub(super) fn fail(error: &str) {
        ANSWERED.with(|answered| *answered.borrow_mut() = Some(Err(error.to_string())));
    }

    pub(super) fn host_call(_: &str, _: &str, _: &str, _: &[u8]) -> CallResult {
        Err(Box::new(HostError("not running in a waPC host".into())))
    }

    pub(super) fn console_log(_: &str) {}
}

#[cfg(all(test, not(target_family = "wasm")))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Calls `operation` with `payload` as the host would: whether it succeeded, and what came back.
    fn call(operation: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        abi::CALL.with(|call| *call.borrow_mut() = (operation.into(), payload.to_vec()));
        let succeeded = guest_call(operation.len(), payload.len());
        let answered = abi::ANSWERED.with(|answered| answered.borrow_mut().take());
        let answered = answered.expect("the guest handed nothing back");
        assert_eq!(succeeded, answered.is_ok());
        answered
    }

    fn kept_capacity() -> (usize, usize) {
        BUFFERS.with(|buffers| {
            let buffers = buffers.borrow();
            (buffers.0.capacity(), buffers.1.capacity())
        })
    }

    #[test]
    fn each_operation_reaches_its_handler() {
        register_function("Echo", |payload| Ok(payload.to_vec()));
        register_function("Fail", |_| Err("refused".into()));
        assert_eq!(call("Echo", b"hi").unwrap(), b"hi");
        assert_eq!(call("Fail", b"hi").unwrap_err(), "refused");
        assert_eq!(
            call("Missing", b"").unwrap_err(),
            "No handler registered for function Missing"
        );
        // A name registered again is served by its new handler.
        register_function("Echo", |_| Ok(b"again".to_vec()));
        assert_eq!(call("Echo", b"hi").unwrap(), b"again");
        // A name that is a prefix of a registered one is not it.
        assert!(call("Ech", b"").is_err());
    }

    #[test]
    fn a_writer_answers_from_a_buffer_kept_between_calls() {
        register_writer("Write", |payload, answer| {
            answer.extend_from_slice(b"got ");
            answer.extend_from_slice(payload);
            Ok(())
        });
        assert_eq!(call("Write", b"one").unwrap(), b"got one");
        let (request, answer) = kept_capacity();
        assert!(request >= 8 && answer >= 7, "{request} {answer}");
        // The next answer is not appended to the last one.
        assert_eq!(call("Write", b"two").unwrap(), b"got two");
        // A large call's buffers are let go, not held for the instance's life.
        let large = vec![7u8; KEPT_BUFFER_BYTES + 1];
        assert_eq!(call("Write", &large).unwrap().len(), large.len() + 4);
        assert_eq!(kept_capacity(), (0, 0));
        assert_eq!(call("Write", b"three").unwrap(), b"got three");
    }
}
