//! The waPC imports an actor's guest calls (`__guest_request`, `__host_call`, …): each reads
//! or writes guest memory after checking every `(pointer, length)` against the memory and a
//! cap, so a bad pointer traps the guest, never the host.

use super::GuestState;
use crate::invoke::{Deadline, GuestError, HostCall};
use crate::limits::{MAX_LOG_LINE_BYTES, MAX_NAME_BYTES};
use std::ops::Range;
use wapc::wapc_functions as wf;
use wasmtime::{Caller, Engine, Linker, Memory};

/// Module names the waPC imports are linked under: waPC's own and wasmCloud 0.x's.
pub const IMPORT_NAMESPACES: [&str; 2] = [wapc::HOST_NAMESPACE, "wasmbus"];

/// A linker with the nine waPC imports under both namespaces. Built once per engine.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<GuestState>> {
    let mut linker = Linker::new(engine);
    for ns in IMPORT_NAMESPACES {
        linker.func_wrap(ns, wf::GUEST_REQUEST_FN, guest_request)?;
        linker.func_wrap(ns, wf::HOST_CONSOLE_LOG, console_log)?;
        linker.func_wrap_async(
            ns,
            wf::HOST_CALL,
            |caller, (bp, bl, np, nl, op, ol, ptr, len): HostCallArgs| {
                Box::new(host_call(caller, [bp, bl, np, nl, op, ol], ptr, len))
            },
        )?;
        linker.func_wrap(ns, wf::HOST_RESPONSE_FN, host_response)?;
        linker.func_wrap(ns, wf::HOST_RESPONSE_LEN_FN, host_response_len)?;
        linker.func_wrap(ns, wf::GUEST_RESPONSE_FN, guest_response)?;
        linker.func_wrap(ns, wf::GUEST_ERROR_FN, guest_error)?;
        linker.func_wrap(ns, wf::HOST_ERROR_FN, host_error)?;
        linker.func_wrap(ns, wf::HOST_ERROR_LEN_FN, host_error_len)?;
    }
    Ok(linker)
}

/// wasm32 addresses and lengths travel as `i32`; they are unsigned.
fn unsigned(v: i32) -> usize {
    u32::from_ne_bytes(v.to_ne_bytes()) as usize
}

pub(super) fn fault(error: GuestError) -> wasmtime::Error {
    wasmtime::Error::new(error)
}

fn memory(caller: &Caller<'_, GuestState>) -> wasmtime::Result<Memory> {
    caller.data().memory.ok_or_else(|| {
        fault(GuestError::NotAnActor(
            "it exports no memory named `memory`".into(),
        ))
    })
}

/// Copies `len` bytes at `ptr` out of guest memory, after checking the cap and the bounds.
fn read(
    caller: &Caller<'_, GuestState>,
    ptr: i32,
    len: i32,
    limit: usize,
    what: &'static str,
) -> wasmtime::Result<Vec<u8>> {
    let (ptr, len) = (unsigned(ptr), unsigned(len));
    if len > limit {
        return Err(fault(GuestError::TooLarge { what, len, limit }));
    }
    let data = memory(caller)?.data(caller);
    ptr.checked_add(len)
        .and_then(|end| data.get(ptr..end))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            fault(GuestError::OutOfBounds {
                what,
                ptr,
                len,
                memory: data.len(),
            })
        })
}

/// Appends `len` bytes at `ptr` of guest memory to `into`, after checking the cap and the
/// bounds; returns where in `into` they are.
fn read_into(
    caller: &Caller<'_, GuestState>,
    (ptr, len): (i32, i32),
    limit: usize,
    what: &'static str,
    into: &mut Vec<u8>,
) -> wasmtime::Result<Range<usize>> {
    let (ptr, len) = (unsigned(ptr), unsigned(len));
    if len > limit {
        return Err(fault(GuestError::TooLarge { what, len, limit }));
    }
    let data = memory(caller)?.data(caller);
    let bytes = ptr
        .checked_add(len)
        .and_then(|end| data.get(ptr..end))
        .ok_or_else(|| {
            fault(GuestError::OutOfBounds {
                what,
                ptr,
                len,
                memory: data.len(),
            })
        })?;
    let start = into.len();
    into.extend_from_slice(bytes);
    Ok(start..into.len())
}

fn name<'a>(args: &'a [u8], at: Range<usize>, what: &'static str) -> wasmtime::Result<&'a str> {
    args.get(at)
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .ok_or_else(|| fault(GuestError::NotUtf8 { what }))
}

/// Copies `bytes` into guest memory at `ptr`, after checking the bounds.
fn write(
    caller: &mut Caller<'_, GuestState>,
    ptr: i32,
    bytes: &[u8],
    what: &'static str,
) -> wasmtime::Result<()> {
    let data = memory(caller)?.data_mut(caller);
    let start = unsigned(ptr);
    match start
        .checked_add(bytes.len())
        .and_then(|end| data.get_mut(start..end))
    {
        Some(target) => {
            target.copy_from_slice(bytes);
            Ok(())
        }
        None => Err(fault(GuestError::OutOfBounds {
            what,
            ptr: start,
            len: bytes.len(),
            memory: data.len(),
        })),
    }
}

fn guest_request(
    mut caller: Caller<'_, GuestState>,
    op_ptr: i32,
    ptr: i32,
) -> wasmtime::Result<()> {
    let request = std::mem::take(&mut caller.data_mut().request);
    let operation = std::mem::take(&mut caller.data_mut().operation);
    let written = write(&mut caller, ptr, &request, "request buffer").and_then(|()| {
        write(
            &mut caller,
            op_ptr,
            operation.as_bytes(),
            "operation buffer",
        )
    });
    // Put them back: a guest may ask twice, and a failed call must not lose them.
    let state = caller.data_mut();
    state.request = request;
    state.operation = operation;
    written
}

fn console_log(caller: Caller<'_, GuestState>, ptr: i32, len: i32) -> wasmtime::Result<()> {
    let line = read(&caller, ptr, len, MAX_LOG_LINE_BYTES, "log line")?;
    let state = caller.data();
    if state.log.admit(&state.actor, line.len()) {
        state
            .handler
            .console_log(&state.actor, &String::from_utf8_lossy(&line));
    }
    Ok(())
}

/// The most buffer an instance keeps for its host calls' arguments between calls.
const KEEP_HOST_CALL_ARGS_BYTES: usize = 64 * 1024;

/// `__host_call`'s arguments as the waPC ABI passes them: (pointer, length) of the binding,
/// the namespace and the operation, then of the payload.
type HostCallArgs = (i32, i32, i32, i32, i32, i32, i32, i32);

async fn host_call(
    mut caller: Caller<'_, GuestState>,
    [binding_ptr, binding_len, ns_ptr, ns_len, op_ptr, op_len]: [i32; 6],
    ptr: i32,
    len: i32,
) -> wasmtime::Result<i32> {
    const BINDING: &str = "host call binding";
    const NAMESPACE: &str = "host call namespace";
    const OPERATION: &str = "host call operation";
    let mut args = std::mem::take(&mut caller.data_mut().host_call_args);
    args.clear();
    let at = [
        read_into(
            &caller,
            (binding_ptr, binding_len),
            MAX_NAME_BYTES,
            BINDING,
            &mut args,
        )?,
        read_into(
            &caller,
            (ns_ptr, ns_len),
            MAX_NAME_BYTES,
            NAMESPACE,
            &mut args,
        )?,
        read_into(
            &caller,
            (op_ptr, op_len),
            MAX_NAME_BYTES,
            OPERATION,
            &mut args,
        )?,
    ];
    let limit = caller.data().max_host_call_bytes;
    let payload_at = read_into(&caller, (ptr, len), limit, "host call payload", &mut args)?;
    let [binding_at, ns_at, op_at] = at;
    // Borrowed, not cloned, for the whole call: the guest is suspended until it returns, and
    // three reference counts per call were a measurable part of an actor-to-actor call.
    let state = caller.data();
    let deadline = Deadline::at_ms_of(state.deadline_ms);
    let result = state
        .handler
        .host_call(HostCall {
            actor: &state.actor,
            link_name: name(&args, binding_at, BINDING)?,
            contract: name(&args, ns_at, NAMESPACE)?,
            operation: name(&args, op_at, OPERATION)?,
            payload: args.get(payload_at).unwrap_or_default(),
            deadline,
            log: &state.log,
        })
        .await;
    // A large payload's buffer is not kept: an instance holds what its usual calls need.
    if args.capacity() <= KEEP_HOST_CALL_ARGS_BYTES {
        caller.data_mut().host_call_args = args;
    }
    let state = caller.data_mut();
    match result {
        Ok(response) => {
            state.host_response = Some(response);
            state.host_error = None;
            Ok(1)
        }
        Err(error) => {
            state.host_response = None;
            state.host_error = Some(error.to_string());
            Ok(0)
        }
    }
}

fn host_response(mut caller: Caller<'_, GuestState>, ptr: i32) -> wasmtime::Result<()> {
    match caller.data_mut().host_response.take() {
        Some(response) => {
            let written = write(&mut caller, ptr, &response, "host response buffer");
            caller.data_mut().host_response = Some(response);
            written
        }
        None => Ok(()),
    }
}

fn host_response_len(caller: Caller<'_, GuestState>) -> i32 {
    let len = caller.data().host_response.as_ref().map_or(0, Vec::len);
    i32::try_from(len).unwrap_or(i32::MAX)
}

fn guest_response(mut caller: Caller<'_, GuestState>, ptr: i32, len: i32) -> wasmtime::Result<()> {
    let limit = caller.data().max_response_bytes;
    let response = read(&caller, ptr, len, limit, "response")?;
    caller.data_mut().guest_response = Some(response);
    Ok(())
}

fn guest_error(mut caller: Caller<'_, GuestState>, ptr: i32, len: i32) -> wasmtime::Result<()> {
    let limit = caller.data().max_response_bytes;
    let message = read(&caller, ptr, len, limit, "error message")?;
    caller.data_mut().guest_error = Some(cut(&message, crate::limits::MAX_GUEST_ERROR_BYTES));
    Ok(())
}

/// `message` as text, at most `keep` bytes of it, saying how many were cut.
fn cut(message: &[u8], keep: usize) -> String {
    match message.get(..keep) {
        Some(kept) if message.len() > keep => format!(
            "{}… ({} more bytes cut)",
            String::from_utf8_lossy(kept),
            message.len() - keep
        ),
        _ => String::from_utf8_lossy(message).into_owned(),
    }
}

fn host_error(mut caller: Caller<'_, GuestState>, ptr: i32) -> wasmtime::Result<()> {
    match caller.data_mut().host_error.take() {
        Some(error) => {
            let written = write(&mut caller, ptr, error.as_bytes(), "host error buffer");
            caller.data_mut().host_error = Some(error);
            written
        }
        None => Ok(()),
    }
}

fn host_error_len(caller: Caller<'_, GuestState>) -> i32 {
    let len = caller.data().host_error.as_ref().map_or(0, String::len);
    i32::try_from(len).unwrap_or(i32::MAX)
}
