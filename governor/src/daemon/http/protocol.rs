//! The checks a request body passes before it reaches JSON-RPC, so that every malformed body
//! gets the JSON-RPC 2.0 answer docs/rpc.md lists: not UTF-8 or not JSON is `-32700` (HTTP 400);
//! JSON that is not a request object (`{}`, `null`, a bad `id`, no `method`, a `jsonrpc` other
//! than `"2.0"`) is `-32600` (HTTP 200). An `id` must be a string, a whole number in
//! `0..=u64::MAX` or null (what the server can echo); any other id is `-32600` with id null.
//! Arrays pass through (batches are refused by the server with `-32005`).

use std::collections::BTreeMap;

use jsonrpsee::types::error::{
    INVALID_REQUEST_CODE, INVALID_REQUEST_MSG, PARSE_ERROR_CODE, PARSE_ERROR_MSG,
};
use jsonrpsee::types::{ErrorObjectOwned, Id, Response, ResponsePayload};
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

/// A body answered here, without reaching JSON-RPC.
#[derive(Debug)]
pub(super) struct Refusal {
    /// HTTP status: 400 for a parse error, 200 for an invalid request.
    pub(super) status: u16,
    /// The JSON-RPC error response.
    pub(super) body: String,
}

/// `Ok` when `body` is a single JSON-RPC 2.0 request or notification (or an array, which the
/// server refuses as a batch); otherwise the answer to send.
pub(super) fn check(body: &[u8]) -> Result<(), Refusal> {
    let text = std::str::from_utf8(body).map_err(|e| {
        parse_error(format!(
            "the body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let start = text.trim_start_matches([' ', '\t', '\n', '\r']);
    match start.bytes().next() {
        None => Err(parse_error("the body is empty".to_owned())),
        Some(b'{') => check_object(text),
        Some(b'[') => json(text).map(|_| ()),
        Some(_) => {
            json(text)?;
            Err(invalid(
                Id::Null,
                format!(
                    "a request is a JSON object, not {}",
                    kind(start.as_bytes()[0])
                ),
            ))
        }
    }
}

/// Validates `text` as one JSON value.
fn json(text: &str) -> Result<IgnoredAny, Refusal> {
    serde_json::from_str::<IgnoredAny>(text).map_err(|e| parse_error(e.to_string()))
}

fn check_object(text: &str) -> Result<(), Refusal> {
    let members: BTreeMap<String, &RawValue> =
        serde_json::from_str(text).map_err(|e| parse_error(e.to_string()))?;
    let id = match members.get("id") {
        // A notification.
        None => Id::Null,
        Some(raw) => serde_json::from_str::<Id<'_>>(raw.get()).map_err(|_| {
            invalid(
                Id::Null,
                format!(
                    "id must be a string, a whole number in 0..=18446744073709551615 or null, \
                     not {}",
                    id_kind(raw.get())
                ),
            )
        })?,
    };
    let version = members
        .get("jsonrpc")
        .and_then(|v| serde_json::from_str::<String>(v.get()).ok());
    if version.as_deref() != Some("2.0") {
        return Err(invalid(id, "jsonrpc must be \"2.0\"".to_owned()));
    }
    let method = members
        .get("method")
        .and_then(|m| serde_json::from_str::<String>(m.get()).ok());
    if method.is_none() {
        return Err(invalid(id, "method must be a string".to_owned()));
    }
    Ok(())
}

/// What a JSON value starting with `first` is, for messages.
fn kind(first: u8) -> &'static str {
    match first {
        b'{' => "an object",
        b'[' => "an array",
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => "a number",
    }
}

/// What an unusable id is, for messages.
fn id_kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'-') => "a negative number",
        Some(b'0'..=b'9') if raw.contains(['.', 'e', 'E']) => {
            "a number with a fraction or an exponent"
        }
        Some(b'0'..=b'9') => "a number above 18446744073709551615",
        Some(&b) => kind(b),
        None => "empty",
    }
}

fn parse_error(data: String) -> Refusal {
    refusal(400, Id::Null, PARSE_ERROR_CODE, PARSE_ERROR_MSG, data)
}

fn invalid(id: Id<'_>, data: String) -> Refusal {
    refusal(200, id, INVALID_REQUEST_CODE, INVALID_REQUEST_MSG, data)
}

fn refusal(status: u16, id: Id<'_>, code: i32, message: &str, data: String) -> Refusal {
    let error = ErrorObjectOwned::owned(code, message, Some(data));
    let body = serde_json::to_string(&Response::new(ResponsePayload::<()>::error(error), id))
        .unwrap_or_else(|_| {
            format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{{\"code\":{code},\"message\":\"{message}\"}}}}"
            )
        });
    Refusal { status, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &[u8]) -> Option<(u16, serde_json::Value)> {
        check(body)
            .err()
            .map(|r| (r.status, serde_json::from_str(&r.body).unwrap()))
    }

    fn code_and_id(body: &[u8]) -> Option<(u16, i64, serde_json::Value)> {
        answer(body).map(|(status, v)| {
            (
                status,
                v["error"]["code"].as_i64().unwrap(),
                v["id"].clone(),
            )
        })
    }

    #[test]
    fn requests_pass() {
        for ok in [
            r#"{"jsonrpc":"2.0","id":1,"method":"governor.status"}"#,
            r#" {"jsonrpc":"2.0","id":"a\"b","method":"x","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1],"extra":true}"#,
            r#"[]"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"x"}]"#,
        ] {
            assert!(check(ok.as_bytes()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn malformed_bodies_are_parse_errors() {
        for bad in [
            &b""[..],
            b" \r\n\t",
            b"hello",
            b"{\"jsonrpc\":\"2.0\",",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"} x",
            b"\xff\xfe",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"gov\xffernor.status\"}",
            b"[1,",
        ] {
            assert_eq!(
                code_and_id(bad),
                Some((400, -32700, serde_json::Value::Null)),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let (_, v) = answer(b"\xff").unwrap();
        assert_eq!(v["error"]["message"], "Parse error");
        assert!(v["error"]["data"].as_str().unwrap().contains("not UTF-8"));
    }

    #[test]
    fn json_that_is_no_request_is_invalid() {
        let null = serde_json::Value::Null;
        for (bad, id) in [
            ("{}", null.clone()),
            ("null", null.clone()),
            ("42", null.clone()),
            ("\"x\"", null.clone()),
            (
                r#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#,
                null.clone(),
            ),
            (r#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#, null.clone()),
            (r#"{"jsonrpc":"2.0","id":true,"method":"x"}"#, null.clone()),
            (r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#, null.clone()),
            (r#"{"jsonrpc":"2.0","id":1.0,"method":"x"}"#, null.clone()),
            (r#"{"jsonrpc":"2.0","id":1e3,"method":"x"}"#, null.clone()),
            (r#"{"jsonrpc":"2.0","id":-1,"method":"x"}"#, null.clone()),
            (
                r#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"x"}"#,
                null.clone(),
            ),
            (r#"{"id":1,"method":"x"}"#, 1.into()),
            (r#"{"jsonrpc":"1.0","id":"a","method":"x"}"#, "a".into()),
            (r#"{"jsonrpc":2.0,"id":1,"method":"x"}"#, 1.into()),
            (r#"{"jsonrpc":"2.0","id":1}"#, 1.into()),
            (r#"{"jsonrpc":"2.0","id":1,"method":5}"#, 1.into()),
            (r#"{"jsonrpc":"2.0","method":null}"#, null.clone()),
        ] {
            assert_eq!(
                code_and_id(bad.as_bytes()),
                Some((200, -32600, id)),
                "{bad}"
            );
        }
        let (_, v) = answer(br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#).unwrap();
        assert_eq!(v["error"]["message"], "Invalid request");
        assert!(
            v["error"]["data"]
                .as_str()
                .unwrap()
                .contains("not a number with a fraction or an exponent"),
            "{v}"
        );
    }
}
