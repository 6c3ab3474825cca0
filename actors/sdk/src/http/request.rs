//! [`Request`]: the contract's `HttpRequest` read in place from its MessagePack, in the named
//! form `weft_contracts::encode` writes (a map of `method`, `path`, `queryString`, `header`,
//! `body`, the body as binary). Every part is checked once, when the request is parsed; what
//! the parts lend out are slices of the payload.

/// An HTTP request as the actor receives it, borrowed from the call's payload.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    method: &'a str,
    path: &'a str,
    query_string: &'a str,
    headers: Headers<'a>,
    body: &'a [u8],
}

/// A request's headers, read in place: each name with one or more values.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    /// Names in the map.
    names: u32,
    /// The map's entries, each already checked to be a string and a list of strings.
    entries: &'a [u8],
}

impl<'a> Request<'a> {
    /// Reads `payload` if it is in the named form with a binary body; `None` for anything
    /// else (a malformed payload, or a form only the contract type's decoder reads: the
    /// caller decodes those with it, which also says what is wrong).
    pub fn parse(mut payload: &'a [u8]) -> Option<Self> {
        let fields = rmp::decode::read_map_len(&mut payload).ok()?;
        let (mut method, mut path, mut query_string, mut headers, mut body) =
            (None, None, None, None, None);
        for _ in 0..fields {
            // A name is compared as bytes: one that matches is UTF-8, and one that does not
            // is refused either way.
            let name = read_str_bytes(&mut payload)?;
            let p = &mut payload;
            let twice = match name {
                b"method" => method.replace(read_str(p)?).is_some(),
                b"path" => path.replace(read_str(p)?).is_some(),
                b"queryString" => query_string.replace(read_str(p)?).is_some(),
                b"header" => headers.replace(Headers::parse(p)?).is_some(),
                b"body" => body.replace(read_bin(p)?).is_some(),
                _ => return None,
            };
            if twice {
                return None;
            }
        }
        // Anything after the map is not this form.
        if !payload.is_empty() {
            return None;
        }
        Some(Request {
            method: method.unwrap_or_default(),
            path: path.unwrap_or_default(),
            query_string: query_string.unwrap_or_default(),
            // The contract requires the headers.
            headers: headers?,
            body: body.unwrap_or_default(),
        })
    }

    /// `GET`, `POST`, ...
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The path, without the query string.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The raw query string, without `?` (empty if there is none).
    pub fn query_string(&self) -> &'a str {
        self.query_string
    }

    /// The headers.
    pub fn headers(&self) -> Headers<'a> {
        self.headers
    }

    /// The body.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The owned contract type, for code written against it.
    pub fn to_http_request(&self) -> weft_contracts::httpserver::HttpRequest {
        let mut header = weft_contracts::httpserver::HeaderMap::new();
        for (name, value) in self.headers.iter() {
            header
                .entry(name.to_string())
                .or_default()
                .push(value.to_string());
        }
        weft_contracts::httpserver::HttpRequest {
            method: self.method.into(),
            path: self.path.into(),
            query_string: self.query_string.into(),
            header,
            body: self.body.to_vec(),
        }
    }
}

impl<'a> Headers<'a> {
    /// Reads a map of names to lists of values from the front of `bytes`, checking every
    /// entry, and moves `bytes` past it.
    fn parse(bytes: &mut &'a [u8]) -> Option<Self> {
        let names = rmp::decode::read_map_len(bytes).ok()?;
        let start = *bytes;
        // Each entry takes at least a byte, so a count larger than the bytes left fails
        // here, having read no further than the bytes there are.
        for _ in 0..names {
            read_str(bytes)?;
            for _ in 0..rmp::decode::read_array_len(bytes).ok()? {
                read_str(bytes)?;
            }
        }
        let used = start.len() - bytes.len();
        Some(Headers {
            names,
            entries: start.get(..used)?,
        })
    }

    /// The first value of the header `name`, compared without regard to ASCII case (Weft's
    /// http-server provider sends every name in lower case).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|(each, _)| each.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// Every value of the header `name` (ASCII case ignored), in the order they came.
    pub fn get_all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a str> + 'n
    where
        'a: 'n,
    {
        self.iter()
            .filter(move |(each, _)| each.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// Each `(name, value)`; a name with several values comes once for each.
    pub fn iter(&self) -> HeaderValues<'a> {
        HeaderValues {
            names_left: self.names,
            values_left: 0,
            name: "",
            entries: self.entries,
        }
    }

    /// How many distinct names.
    pub fn len(&self) -> usize {
        self.names as usize
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.names == 0
    }
}

/// The `(name, value)` pairs of [`Headers`], one for each value.
#[derive(Debug, Clone)]
pub struct HeaderValues<'a> {
    names_left: u32,
    values_left: u32,
    name: &'a str,
    entries: &'a [u8],
}

impl<'a> Iterator for HeaderValues<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        // The entries were checked by `Headers::parse`, so the reads below do not fail; if
        // they did, the iteration would end, not panic.
        while self.values_left == 0 {
            if self.names_left == 0 {
                return None;
            }
            self.names_left -= 1;
            self.name = read_str(&mut self.entries)?;
            self.values_left = rmp::decode::read_array_len(&mut self.entries).ok()?;
        }
        self.values_left -= 1;
        Some((self.name, read_str(&mut self.entries)?))
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = HeaderValues<'a>;

    fn into_iter(self) -> HeaderValues<'a> {
        self.iter()
    }
}

/// A MessagePack string from the front of `bytes` (checked to be UTF-8).
fn read_str<'a>(bytes: &mut &'a [u8]) -> Option<&'a str> {
    let (text, rest) = rmp::decode::read_str_from_slice(*bytes).ok()?;
    *bytes = rest;
    Some(text)
}

/// The bytes of a MessagePack string from the front of `bytes`, not checked to be UTF-8.
fn read_str_bytes<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = rmp::decode::read_str_len(bytes).ok()?;
    take(bytes, len)
}

/// MessagePack binary from the front of `bytes`.
fn read_bin<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = rmp::decode::read_bin_len(bytes).ok()?;
    take(bytes, len)
}

/// The first `len` bytes of `bytes`, which moves past them; `None` if there are fewer.
fn take<'a>(bytes: &mut &'a [u8], len: u32) -> Option<&'a [u8]> {
    let (taken, rest) = bytes.split_at_checked(usize::try_from(len).ok()?)?;
    *bytes = rest;
    Some(taken)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use weft_contracts::httpserver::HttpRequest;

    fn sample() -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/notes/a".into(),
            query_string: "x=1&y=2".into(),
            header: [
                ("host".to_string(), vec!["example.com".to_string()]),
                (
                    "accept".to_string(),
                    vec!["text/plain".to_string(), "text/html".to_string()],
                ),
            ]
            .into(),
            body: b"the body".to_vec(),
        }
    }

    #[test]
    fn the_named_form_reads_in_place_as_the_contract_type_reads_it() {
        let request = sample();
        let bytes = weft_contracts::encode(&request).unwrap();
        let view = Request::parse(&bytes).expect("the named form");
        assert_eq!(view.method(), "POST");
        assert_eq!(view.path(), "/notes/a");
        assert_eq!(view.query_string(), "x=1&y=2");
        assert_eq!(view.body(), b"the body");
        assert_eq!(view.headers().len(), 2);
        assert_eq!(view.headers().get("Host"), Some("example.com"));
        assert_eq!(view.headers().get("accept"), Some("text/plain"));
        assert_eq!(
            view.headers().get_all("ACCEPT").collect::<Vec<_>>(),
            ["text/plain", "text/html"]
        );
        assert_eq!(view.headers().get("cookie"), None);
        assert_eq!(view.headers().iter().count(), 3);
        assert_eq!(view.to_http_request(), request);
    }

    #[test]
    fn missing_parts_are_empty_but_the_headers_are_required() {
        let bytes = weft_contracts::encode(&serde_json::json!({"header": {}})).unwrap();
        let view = Request::parse(&bytes).expect("only the headers");
        assert_eq!((view.method(), view.path(), view.body()), ("", "", &[][..]));
        assert!(view.headers().is_empty());
        let no_headers = weft_contracts::encode(&serde_json::json!({"method": "GET"})).unwrap();
        assert!(Request::parse(&no_headers).is_none());
    }

    #[test]
    fn other_forms_and_malformed_payloads_are_left_to_the_decoder() {
        let request = sample();
        // Positional (an array), a body as a list of numbers, an unknown field, a field
        // twice, bytes after the map: the contract type's decoder decides each.
        let positional = rmp_serde::to_vec(&request).unwrap();
        let numbers = weft_contracts::encode(
            &serde_json::json!({"method": "GET", "header": {}, "body": [1, 2]}),
        )
        .unwrap();
        let unknown =
            weft_contracts::encode(&serde_json::json!({"header": {}, "extra": 1})).unwrap();
        let mut twice = vec![0x83];
        for _ in 0..2 {
            rmp::encode::write_str(&mut twice, "method").unwrap();
            rmp::encode::write_str(&mut twice, "GET").unwrap();
        }
        rmp::encode::write_str(&mut twice, "header").unwrap();
        twice.push(0x80);
        let mut trailing = weft_contracts::encode(&request).unwrap();
        trailing.push(0xc0);
        for bytes in [&positional, &numbers, &unknown, &twice, &trailing] {
            assert!(Request::parse(bytes).is_none(), "{bytes:?}");
        }
        // Truncated anywhere, or a count larger than the bytes: refused, without a panic.
        let whole = weft_contracts::encode(&request).unwrap();
        for end in 0..whole.len() {
            assert!(Request::parse(&whole[..end]).is_none(), "cut at {end}");
        }
        let huge = [0xdf, 0xff, 0xff, 0xff, 0xff];
        assert!(Request::parse(&huge).is_none());
        let mut huge_headers = vec![0x81];
        rmp::encode::write_str(&mut huge_headers, "header").unwrap();
        huge_headers.extend([0xdf, 0xff, 0xff, 0xff, 0xff]);
        assert!(Request::parse(&huge_headers).is_none());
    }

    #[test]
    fn a_string_that_is_not_utf8_is_refused() {
        let mut bytes = vec![0x82];
        rmp::encode::write_str(&mut bytes, "header").unwrap();
        bytes.push(0x80);
        rmp::encode::write_str(&mut bytes, "path").unwrap();
        bytes.extend([0xa2, 0xff, 0xfe]);
        assert!(Request::parse(&bytes).is_none());
    }
}
