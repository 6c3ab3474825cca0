//! Byte-string equality for the guest's hot path (the operation's name, a response's header
//! names), compared eight bytes at a time.
//!
//! Why not `==`: a slice comparison compiles to a call of `memcmp`, and wasm has no
//! instruction for it, only compiler-builtins' loop of one byte a turn; in a served hello
//! those calls were the largest single item of the guest's time (`perf` of bench (m)).

/// Whether `a` and `b` hold the same bytes.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let (a_rest, b_rest) = (a_words.remainder(), b_words.remainder());
    a_words.zip(b_words).all(|(x, y)| word(x) == word(y))
        && a_rest.iter().zip(b_rest).all(|(x, y)| x == y)
}

/// Eight bytes as one integer (one load in wasm).
fn word(bytes: &[u8]) -> u64 {
    // `chunks_exact(8)` gives only eight-byte chunks: the default is never taken.
    u64::from_le_bytes(bytes.try_into().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn equal_only_for_the_same_bytes_at_every_length() {
        let text = b"HandleRequest: content-type, set-cookie";
        for len in 0..text.len() {
            let a = &text[..len];
            // A copy: the same bytes elsewhere in memory.
            let copy = a.to_vec();
            assert!(same(a, &copy), "{len}");
            assert!(!same(a, &text[..len + 1]), "lengths differ at {len}");
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert!(!same(a, &b), "byte {at} of {len} differs");
            }
        }
    }
}
