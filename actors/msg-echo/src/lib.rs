//! msg-echo: for every message on its subscriptions, replies `echo: BODY` to the sender (when
//! it asked for a reply) and publishes what it saw on `msg-echo.seen`, so both directions of
//! `wasmcloud:messaging` are exercised.

use weft_actor::contracts::messaging::SubMessage;
use weft_actor::messaging;

/// The subject msg-echo reports every message on.
const SEEN: &str = "msg-echo.seen";

/// Registers the message handler; the host calls `wapc_init` once after instantiation.
// The waPC host looks the function up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn wapc_init() {
    messaging::subscribe(echo);
}

fn echo(message: &SubMessage) -> weft_actor::Result<()> {
    if let Some(reply_to) = &message.reply_to {
        let mut reply = b"echo: ".to_vec();
        reply.extend_from_slice(&message.body);
        messaging::publish(reply_to, None, &reply)?;
    }
    messaging::publish(SEEN, None, message.subject.as_bytes())
}
