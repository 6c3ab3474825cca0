//! [`Response`]: an HTTP answer written as the contract's `HttpResponse` MessagePack, in the
//! named form `weft_contracts::encode` writes, into one buffer sized once. No map of the
//! headers is built: values given under the same name are written as that name's list.

use std::borrow::Cow;

/// An HTTP answer: a status, headers and a body, any of them borrowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response<'a> {
    status: u16,
    headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    body: Cow<'a, [u8]>,
}

impl<'a> Response<'a> {
    /// An answer with `status`, no headers and no body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Cow::Borrowed(&[]),
        }
    }

    /// Adds the header `name: value` (a name given again adds a value to it).
    pub fn header(mut self, name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Cow<'a, [u8]>>) -> Self {
        self.body = body.into();
        self
    }

    /// Appends the MessagePack the provider reads to `out`.
    pub(crate) fn encode_into(
        &self,
        out: &mut Vec<u8>,
    ) -> Result<(), rmp::encode::ValueWriteError> {
        // The body, each header with room for its markers, and the fields' names and
        // markers (under 64 bytes).
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len() + 20)
            .sum();
        out.reserve(self.body.len() + headers + 64);
        rmp::encode::write_map_len(out, 3)?;
        rmp::encode::write_str(out, "statusCode")?;
        rmp::encode::write_uint(out, u64::from(self.status))?;
        rmp::encode::write_str(out, "header")?;
        // A name's first header writes its whole list; later ones are skipped.
        let headers = &self.headers;
        let same = |n: &str, name: &str| crate::same::same(n.as_bytes(), name.as_bytes());
        let first = |i: usize, name: &str| !headers.iter().take(i).any(|(n, _)| same(n, name));
        let names = (headers.iter().enumerate())
            .filter(|(i, (name, _))| first(*i, name))
            .count();
        rmp::encode::write_map_len(out, len_u32(names)?)?;
        for (i, header) in headers.iter().enumerate() {
            let name = &header.0;
            if !first(i, name) {
                continue;
            }
            // Its own value, then those of later headers of the same name.
            let values = || {
                let later = headers.iter().skip(i + 1).filter(|(n, _)| same(n, name));
                std::iter::once(header).chain(later)
            };
            rmp::encode::write_str(out, name)?;
            rmp::encode::write_array_len(out, len_u32(values().count())?)?;
            for (_, value) in values() {
                rmp::encode::write_str(out, value)?;
            }
        }
        rmp::encode::write_str(out, "body")?;
        rmp::encode::write_bin(out, &self.body)?;
        Ok(())
    }
}

fn len_u32(len: usize) -> Result<u32, rmp::encode::ValueWriteError> {
    u32::try_from(len).map_err(|_| {
        rmp::encode::ValueWriteError::InvalidDataWrite(std::io::Error::other(
            "more than u32::MAX headers",
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use weft_contracts::httpserver::HttpResponse;

    impl Response<'_> {
        fn encode(&self) -> Vec<u8> {
            let mut out = vec![0xc0];
            self.encode_into(&mut out).unwrap();
            // Appended after what the buffer held.
            assert_eq!(out.remove(0), 0xc0);
            out
        }
    }

    #[test]
    fn reads_back_as_the_contract_type() {
        let value = format!("{}", 14);
        let answer = Response::new(201)
            .header("content-type", "text/plain")
            .header("set-cookie", "a=1")
            .header("content-length", value)
            .header("set-cookie", "b=2")
            .body(&b"Hello, world!\n"[..]);
        let read: HttpResponse = weft_contracts::decode(&answer.encode()).unwrap();
        assert_eq!(read.status_code, 201);
        assert_eq!(read.body, b"Hello, world!\n");
        assert_eq!(read.header.len(), 3);
        assert_eq!(read.header["content-type"], ["text/plain"]);
        assert_eq!(read.header["set-cookie"], ["a=1", "b=2"]);
        assert_eq!(read.header["content-length"], ["14"]);
    }

    #[test]
    fn the_same_answer_as_the_owned_type_encodes() {
        let owned = super::super::response(200, "text/plain", "Hello, world!\n");
        let borrowed = Response::new(200)
            .header("content-type", "text/plain")
            .body("Hello, world!\n".as_bytes());
        assert_eq!(borrowed.encode(), weft_contracts::encode(&owned).unwrap());
        let empty: HttpResponse = weft_contracts::decode(&Response::new(404).encode()).unwrap();
        assert_eq!(
            empty,
            HttpResponse {
                status_code: 404,
                ..HttpResponse::default()
            }
        );
    }
}
