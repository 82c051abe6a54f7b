//! The station frame codec (SPEC section 4), pure: bytes in, [`Request`]
//! out; [`Response`] in, bytes out.
//!
//! Owns: line splitting (CR LF or bare LF), the 1024-byte limit with
//! resynchronisation at the next LF, the XOR checksum, `%20 %2A %25`
//! escaping, verbs, keys and values. Every malformed input is a typed
//! [`FrameError`] that maps to its `ERR code=...` answer.
//! Must not: do IO, know tokio, or apply line rules (that is `line`).

mod codes;
mod decoder;

pub use codes::ErrorCode;
pub use decoder::{Decoded, FrameDecoder, MAX_FRAME};

use std::fmt::Write as _;

/// The verbs of SPEC section 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Hello,
    Ping,
    Status,
    Alloc,
    Bind,
    Result,
    Final,
    Reprint,
    Verify,
    Scrap,
    Ship,
    Replace,
}

impl Verb {
    pub const ALL: [Verb; 12] = [
        Verb::Hello,
        Verb::Ping,
        Verb::Status,
        Verb::Alloc,
        Verb::Bind,
        Verb::Result,
        Verb::Final,
        Verb::Reprint,
        Verb::Verify,
        Verb::Scrap,
        Verb::Ship,
        Verb::Replace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Hello => "HELLO",
            Verb::Ping => "PING",
            Verb::Status => "STATUS",
            Verb::Alloc => "ALLOC",
            Verb::Bind => "BIND",
            Verb::Result => "RESULT",
            Verb::Final => "FINAL",
            Verb::Reprint => "REPRINT",
            Verb::Verify => "VERIFY",
            Verb::Scrap => "SCRAP",
            Verb::Ship => "SHIP",
            Verb::Replace => "REPLACE",
        }
    }

    /// Case-insensitive.
    pub fn parse(s: &str) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// Verbs that change the journal and so may carry `req=`.
    pub fn is_mutating(self) -> bool {
        !matches!(self, Verb::Hello | Verb::Ping | Verb::Status)
    }
}

/// A parsed request: verb and fields in the order sent, keys lower-cased,
/// values unescaped. All text lives in one buffer (two allocations per
/// request, whatever the number of fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub verb: Verb,
    /// Whether the frame carried a (valid) checksum.
    pub checksummed: bool,
    text: String,
    /// (key start, key end = value start, value end) into `text`.
    spans: Vec<(u32, u32, u32)>,
}

impl Request {
    /// Every field in the order sent.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(|&(k, v, e)| {
            (
                &self.text[k as usize..v as usize],
                &self.text[v as usize..e as usize],
            )
        })
    }

    /// The first value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Every value of a repeatable key (e.g. `child`).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields()
            .filter(move |(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// Fields whose key starts with `prefix` (e.g. `m.`), prefix stripped.
    pub fn prefixed<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.fields()
            .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|name| (name, v)))
    }

    /// The idempotency token, if any.
    pub fn req(&self) -> Option<&str> {
        self.get("req")
    }

    /// The request as one canonical frame without `req` and checksum: what
    /// identifies "the same request" when a `req` token is repeated.
    pub fn fingerprint(&self) -> String {
        self.fingerprint_normalised(|_, _| None)
    }

    /// [`Request::fingerprint`] with values rewritten by `norm` (key, value)
    /// where it returns one, so two spellings of one request (a unit ID in
    /// lower case) are the same request.
    pub fn fingerprint_normalised(&self, norm: impl Fn(&str, &str) -> Option<String>) -> String {
        let mut fields: Vec<(&str, std::borrow::Cow<'_, str>)> = self
            .fields()
            .filter(|(k, _)| *k != "req")
            .map(|(k, v)| {
                (
                    k,
                    norm(k, v).map_or(std::borrow::Cow::Borrowed(v), std::borrow::Cow::Owned),
                )
            })
            .collect();
        fields.sort();
        let mut s = self.verb.as_str().to_string();
        for (k, v) in fields {
            s.push(' ');
            s.push_str(k);
            s.push('=');
            escape_into(&mut s, &v);
        }
        s
    }
}

/// Why a frame was refused; each maps to an `ERR` answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame longer than {MAX_FRAME} bytes")]
    TooLong,
    #[error("{0}")]
    Bad(String),
    #[error("{0}")]
    Checksum(String),
    #[error("{0}")]
    BadValue(String),
}

impl FrameError {
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLong => ErrorCode::TooLong,
            FrameError::Bad(_) => ErrorCode::BadFrame,
            FrameError::Checksum(_) => ErrorCode::Checksum,
            FrameError::BadValue(_) => ErrorCode::BadValue,
        }
    }

    pub fn to_response(&self) -> Response {
        Response::err(self.code(), self.to_string())
    }
}

/// XOR of every byte.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}

/// Keys that may appear more than once in a frame.
fn repeatable(key: &str) -> bool {
    key == "child"
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Undoes `%20 %2A %25`; any other `%` sequence is an error.
pub fn unescape(v: &str) -> Result<String, FrameError> {
    let mut out = String::with_capacity(v.len());
    unescape_into(&mut out, v)?;
    Ok(out)
}

/// [`unescape`], appending to `out`.
fn unescape_into(out: &mut String, v: &str) -> Result<(), FrameError> {
    let mut rest = v;
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        let esc = rest.get(p..p + 3).unwrap_or(&rest[p..]);
        match esc.as_bytes() {
            b"%20" => out.push(' '),
            b"%2A" | b"%2a" => out.push('*'),
            b"%25" => out.push('%'),
            _ => {
                return Err(FrameError::BadValue(format!(
                    "bad escape {esc:?} in {v:?}: only %20 (space), %2A (*) and %25 (%) are escapes"
                )))
            }
        }
        rest = &rest[(p + 3).min(rest.len())..];
    }
    out.push_str(rest);
    Ok(())
}

/// Writes a value with SP, `*` and `%` escaped. Other control characters
/// cannot travel in a frame and are replaced by `?`.
pub fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '*' => out.push_str("%2A"),
            '%' => out.push_str("%25"),
            c if c.is_ascii_graphic() => out.push(c),
            _ => out.push('?'),
        }
    }
}

/// Parses one frame's content (without its CR LF / LF).
/// `checksum_required` refuses frames without a valid checksum.
pub fn parse(line: &[u8], checksum_required: bool) -> Result<Request, FrameError> {
    if line.len() + 1 > MAX_FRAME {
        return Err(FrameError::TooLong);
    }
    // A branch-free fold (vectorised) for the common case; find the
    // offending byte only when there is one.
    let unprintable = line
        .iter()
        .fold(false, |acc, b| acc | !(0x20..0x7f).contains(b));
    if let Some(pos) = unprintable
        .then(|| line.iter().position(|b| !(0x20..0x7f).contains(b)))
        .flatten()
    {
        return Err(FrameError::Bad(format!(
            "byte 0x{:02X} at position {} is not printable ASCII",
            line[pos],
            pos + 1
        )));
    }
    // Printable ASCII only, so this is valid UTF-8.
    let text = std::str::from_utf8(line).map_err(|_| FrameError::Bad("not ASCII".into()))?;
    let (body, checksummed) = match line.iter().rposition(|b| *b == b'*') {
        Some(star) => {
            let hh = &text[star + 1..];
            let given = (hh.len() == 2)
                .then(|| u8::from_str_radix(hh, 16).ok())
                .flatten()
                .ok_or_else(|| {
                    FrameError::Checksum(format!("{hh:?} after '*' is not two hex digits"))
                })?;
            let body = &text[..star];
            let want = checksum(body.as_bytes());
            if given != want {
                return Err(FrameError::Checksum(format!(
                    "checksum *{given:02X} does not match the frame (expected *{want:02X})"
                )));
            }
            (body, true)
        }
        None if checksum_required => {
            return Err(FrameError::Checksum(
                "this station must send a checksum (*HH, XOR of every byte before '*')".into(),
            ))
        }
        None => (text, false),
    };
    // Printable ASCII only from here: work on bytes, one pass.
    let mut parts = body.split(' ').filter(|p| !p.is_empty());
    let verb_text = parts
        .next()
        .ok_or_else(|| FrameError::Bad("empty frame".into()))?;
    let verb = Verb::parse(verb_text).ok_or_else(|| {
        FrameError::Bad(format!(
            "unknown verb {:?}",
            verb_text.chars().take(32).collect::<String>()
        ))
    })?;
    let mut text = String::with_capacity(body.len());
    let mut spans: Vec<(u32, u32, u32)> = Vec::with_capacity(8);
    for part in parts {
        let bytes = part.as_bytes();
        let eq = bytes
            .iter()
            .position(|b| *b == b'=')
            .ok_or_else(|| FrameError::Bad(format!("{part:?} is not key=value")))?;
        let (k, v) = (&part[..eq], &part[eq + 1..]);
        if !valid_key(k) {
            return Err(FrameError::Bad(format!(
                "{k:?} is not a key (letters, digits, . _ -)"
            )));
        }
        if v.is_empty() {
            return Err(FrameError::BadValue(format!("{k}= has no value")));
        }
        let start = text.len();
        if k.bytes().any(|b| b.is_ascii_uppercase()) {
            text.push_str(&k.to_ascii_lowercase());
        } else {
            text.push_str(k);
        }
        let mid = text.len();
        let key = &text[start..mid];
        if !repeatable(key)
            && spans
                .iter()
                .any(|&(a, b, _)| &text[a as usize..b as usize] == key)
        {
            return Err(FrameError::Bad(format!("{key}= appears twice")));
        }
        if key == "req" && v.len() > 64 {
            return Err(FrameError::BadValue(
                "req= is longer than 64 characters".into(),
            ));
        }
        if v.as_bytes().contains(&b'%') {
            unescape_into(&mut text, v)?;
        } else {
            text.push_str(v);
        }
        // A frame is at most 1024 bytes, so offsets fit in u32.
        spans.push((start as u32, mid as u32, text.len() as u32));
    }
    Ok(Request {
        verb,
        checksummed,
        text,
        spans,
    })
}

/// An answer: `OK key=value ...*HH` or `ERR code=E_... msg=...*HH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Ok(Vec<(String, String)>),
    /// `extra` carries machine-readable detail, e.g. `missing=a,b` with `E_ROUTE`.
    Err {
        code: ErrorCode,
        extra: Vec<(String, String)>,
        msg: String,
    },
}

impl Response {
    pub fn ok() -> Response {
        Response::Ok(Vec::new())
    }

    pub fn ok_with<K: Into<String>, V: Into<String>>(
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Response {
        Response::Ok(
            fields
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    pub fn err(code: ErrorCode, msg: impl Into<String>) -> Response {
        Response::Err {
            code,
            extra: Vec::new(),
            msg: msg.into(),
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Response::Ok(_))
    }

    /// A field of an `OK`, or `code`/`msg` of an `ERR`.
    pub fn get(&self, key: &str) -> Option<&str> {
        match self {
            Response::Ok(f) => f.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()),
            Response::Err { code, extra, msg } => match key {
                "code" => Some(code.as_str()),
                "msg" => Some(msg.as_str()),
                k => extra.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str()),
            },
        }
    }

    /// The frame without checksum or line end.
    pub fn body(&self) -> String {
        let mut s = String::with_capacity(64);
        match self {
            Response::Ok(fields) => {
                s.push_str("OK");
                for (k, v) in fields {
                    let _ = write!(s, " {k}=");
                    escape_into(&mut s, v);
                }
            }
            Response::Err { code, extra, msg } => {
                let _ = write!(s, "ERR code={}", code.as_str());
                for (k, v) in extra {
                    let _ = write!(s, " {k}=");
                    escape_into(&mut s, v);
                }
                if !msg.is_empty() {
                    s.push_str(" msg=");
                    escape_into(&mut s, msg);
                }
            }
        }
        s
    }

    /// The bytes sent: body, `*HH`, CR LF.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = self.body();
        let sum = checksum(s.as_bytes());
        let _ = write!(s, "*{sum:02X}\r\n");
        s.into_bytes()
    }

    /// Parses an answer (the station side). Unknown `E_` codes are kept as `E_UNKNOWN`.
    pub fn parse(line: &[u8]) -> Result<Response, FrameError> {
        let text = std::str::from_utf8(line)
            .map_err(|_| FrameError::Bad("answer is not ASCII".into()))?
            .trim_end_matches(['\r', '\n']);
        let star = text
            .rfind('*')
            .ok_or_else(|| FrameError::Checksum("answer without checksum".into()))?;
        let body = &text[..star];
        let given = u8::from_str_radix(&text[star + 1..], 16)
            .map_err(|_| FrameError::Checksum("bad checksum digits".into()))?;
        if given != checksum(body.as_bytes()) {
            return Err(FrameError::Checksum("answer checksum mismatch".into()));
        }
        let mut parts = body.split(' ').filter(|p| !p.is_empty());
        let head = parts.next().unwrap_or("");
        let mut fields = Vec::new();
        for p in parts {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| FrameError::Bad(format!("{p:?} is not key=value")))?;
            fields.push((k.to_string(), unescape(v)?));
        }
        match head {
            "OK" => Ok(Response::Ok(fields)),
            "ERR" => {
                let get = |key: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                };
                let code = get("code")
                    .map(|c| ErrorCode::parse(&c))
                    .unwrap_or(ErrorCode::Unknown);
                let msg = get("msg").unwrap_or_default();
                let extra = fields
                    .into_iter()
                    .filter(|(k, _)| k != "code" && k != "msg")
                    .collect();
                Ok(Response::Err { code, extra, msg })
            }
            other => Err(FrameError::Bad(format!("answer starts with {other:?}"))),
        }
    }
}

/// Builds a request frame (the station side): fields escaped, checksum, CR LF.
pub fn encode_request(verb: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut s = verb.to_string();
    for (k, v) in fields {
        s.push(' ');
        s.push_str(k);
        s.push('=');
        escape_into(&mut s, v);
    }
    let sum = checksum(s.as_bytes());
    let _ = write!(s, "*{sum:02X}\r\n");
    s.into_bytes()
}

#[cfg(test)]
mod tests;
