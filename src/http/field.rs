//! The syntax of header fields (RFC 9110 §5.1, §5.5), for what the server
//! writes: a response's headers, and the names and values configuration
//! puts into them.

/// Whether `name` is a token: a valid field name or method.
pub fn is_token(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` may be written as a field value: no CR, LF or NUL,
/// which would end the field (or the head) early.
pub fn is_safe_value(value: &[u8]) -> bool {
    !value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
}

/// Whether the comma-separated list `value` (a `Vary`, a
/// `Cache-Control`) has `token` among its members, in any case.
pub fn list_has(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|member| member.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_values() {
        assert!(is_token(b"X-Request-Id"));
        assert!(is_token(b"GET"));
        assert!(!is_token(b""));
        assert!(!is_token(b"X Bad"));
        assert!(!is_token(b"a:b"));
        assert!(is_safe_value(b"default-src 'self'"));
        assert!(is_safe_value(b""));
        for bad in [&b"a\rb"[..], b"a\nb", b"a\0b"] {
            assert!(!is_safe_value(bad));
        }
        assert!(list_has(b"Origin, accept-encoding", b"Accept-Encoding"));
        assert!(list_has(b"no-transform", b"no-transform"));
        assert!(!list_has(b"no-transformer, max-age=1", b"no-transform"));
    }
}
