//! The HTTP request and response, every older actor's hot path, transcoded between the
//! wasmbus and the older shapes straight from MessagePack to MessagePack: the two differ only
//! in header values (a list of strings against one string) and the response's `status`, so
//! decoding into owned maps and strings and encoding again (what `rmp_serde` does, about 1 µs
//! a request and its answer) is not needed.
//!
//! Each function answers `None` for anything it does not expect (an array-encoded struct, a
//! field it does not know, a duplicate, a value of another type); the caller then takes the
//! general path through `serde`, which decides. So this file changes speed, never behaviour.

use rmp::decode;
use rmp::encode;

/// A string at the reader, borrowed.
fn text<'a>(rd: &mut &'a [u8]) -> Option<&'a str> {
    let len = usize::try_from(decode::read_str_len(rd).ok()?).ok()?;
    let (bytes, rest) = rd.split_at_checked(len)?;
    *rd = rest;
    std::str::from_utf8(bytes).ok()
}

/// A byte string at the reader, borrowed.
fn bytes<'a>(rd: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(decode::read_bin_len(rd).ok()?).ok()?;
    let (bytes, rest) = rd.split_at_checked(len)?;
    *rd = rest;
    Some(bytes)
}

fn put_text(out: &mut Vec<u8>, value: &str) -> Option<()> {
    encode::write_str(out, value).ok()
}

fn put_bytes(out: &mut Vec<u8>, value: &[u8]) -> Option<()> {
    encode::write_bin(out, value).ok()
}

/// Marks each of `N` fields as written once; a second time is a duplicate.
struct Seen<const N: usize>([bool; N]);

impl<const N: usize> Seen<N> {
    fn first(&mut self, field: usize) -> Option<()> {
        let seen = self.0.get_mut(field)?;
        (!*seen).then(|| *seen = true)
    }

    fn has(&self, field: usize) -> bool {
        self.0.get(field).copied().unwrap_or(false)
    }
}

/// A wasmbus `HttpRequest` as the older SDKs' `Request`: header values joined by `, `.
pub fn http_request_to_old(payload: &[u8]) -> Option<Vec<u8>> {
    const FIELDS: [&str; 5] = ["method", "path", "queryString", "header", "body"];
    let mut rd = payload;
    let count = decode::read_map_len(&mut rd).ok()?;
    let mut out = Vec::with_capacity(payload.len() + 16);
    encode::write_map_len(&mut out, 5).ok()?;
    let mut seen = Seen([false; 5]);
    for _ in 0..count {
        let key = text(&mut rd)?;
        let (field, name) = FIELDS.iter().enumerate().find(|(_, f)| **f == key)?;
        seen.first(field)?;
        put_text(&mut out, name)?;
        match field {
            3 => {
                let headers = decode::read_map_len(&mut rd).ok()?;
                encode::write_map_len(&mut out, headers).ok()?;
                for _ in 0..headers {
                    put_text(&mut out, text(&mut rd)?)?;
                    match decode::read_array_len(&mut rd).ok()? {
                        1 => put_text(&mut out, text(&mut rd)?)?,
                        values => {
                            let values = (0..values)
                                .map(|_| text(&mut rd))
                                .collect::<Option<Vec<_>>>()?;
                            put_text(&mut out, &values.join(", "))?;
                        }
                    }
                }
            }
            4 => put_bytes(&mut out, bytes(&mut rd)?)?,
            _ => put_text(&mut out, text(&mut rd)?)?,
        }
    }
    if !rd.is_empty() || !seen.has(3) {
        // Trailing bytes, or no header (which the wasmbus shape requires): serde decides.
        return None;
    }
    // The older shapes require every field; what the request left out is empty.
    for (field, name) in FIELDS.iter().enumerate() {
        if !seen.has(field) {
            put_text(&mut out, name)?;
            if field == 4 {
                put_bytes(&mut out, &[])?;
            } else {
                put_text(&mut out, "")?;
            }
        }
    }
    Some(out)
}

/// An older SDK's `Response` as a wasmbus `HttpResponse`: each header value a list of one,
/// `status` dropped, a status code over 65535 made 500.
pub fn old_response_to_http(answer: &[u8]) -> Option<Vec<u8>> {
    const FIELDS: [&str; 4] = ["statusCode", "status", "header", "body"];
    let mut rd = answer;
    let count = decode::read_map_len(&mut rd).ok()?;
    let mut out = Vec::with_capacity(answer.len() + 16);
    encode::write_map_len(&mut out, 3).ok()?;
    let mut seen = Seen([false; 4]);
    for _ in 0..count {
        let key = text(&mut rd)?;
        let field = FIELDS.iter().position(|f| *f == key)?;
        seen.first(field)?;
        match field {
            0 => {
                let code: u64 = decode::read_int(&mut rd).ok()?;
                put_text(&mut out, "statusCode")?;
                encode::write_uint(&mut out, u16::try_from(code).map_or(500, u64::from)).ok()?;
            }
            1 => {
                text(&mut rd)?;
            }
            2 => {
                put_text(&mut out, "header")?;
                let headers = decode::read_map_len(&mut rd).ok()?;
                encode::write_map_len(&mut out, headers).ok()?;
                for _ in 0..headers {
                    put_text(&mut out, text(&mut rd)?)?;
                    encode::write_array_len(&mut out, 1).ok()?;
                    put_text(&mut out, text(&mut rd)?)?;
                }
            }
            _ => {
                put_text(&mut out, "body")?;
                put_bytes(&mut out, bytes(&mut rd)?)?;
            }
        }
    }
    if !rd.is_empty() {
        return None;
    }
    for (field, name) in FIELDS.iter().enumerate() {
        if !seen.has(field) {
            match field {
                0 => {
                    put_text(&mut out, name)?;
                    encode::write_uint(&mut out, 0).ok()?;
                }
                2 => {
                    put_text(&mut out, name)?;
                    encode::write_map_len(&mut out, 0).ok()?;
                }
                3 => {
                    put_text(&mut out, name)?;
                    put_bytes(&mut out, &[])?;
                }
                _ => {}
            }
        }
    }
    Some(out)
}
