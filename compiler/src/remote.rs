//! A small blocking HTTP/1.1 client for `tensorwasm remote`: deploy, list, inspect, delete,
//! invoke and run bundles on a `tensorwasmd`.
//!
//! Plain HTTP only, as the daemon serves it (on loopback by default); one request per
//! connection (`Connection: close`). Responses are read whole, up to [`MAX_RESPONSE_BYTES`],
//! with `Content-Length`, chunked or read-to-close bodies. A non-2xx answer becomes a
//! [`RemoteError::Refused`] carrying the daemon's stable error code and message.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Most bytes of a response (head and body) the client reads.
pub const MAX_RESPONSE_BYTES: u64 = 256 << 20;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL cannot be used.
    #[error("invalid daemon URL `{url}`: {why}")]
    Url { url: String, why: String },
    /// Connecting, sending or receiving failed.
    #[error("cannot reach tensorwasmd at {addr}: {why}")]
    Io { addr: String, why: String },
    /// The answer is not HTTP/1.1 the client can read.
    #[error("bad response from tensorwasmd at {addr}: {why}")]
    Protocol { addr: String, why: String },
    /// The daemon answered with an error status.
    #[error("tensorwasmd refused ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

/// A daemon's address and the caller's token.
#[derive(Debug, Clone)]
pub struct Client {
    /// `host:port` as given, for the `Host` header and messages.
    authority: String,
    /// Path prefix before `/v1` (empty, or e.g. `/tw` behind a proxy), without a trailing `/`.
    prefix: String,
    token: Option<String>,
    timeout: Duration,
    /// Largest response read, head included ([`MAX_RESPONSE_BYTES`] unless changed).
    max_response: u64,
}

/// A response: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The daemon's `host:port`, for messages.
    addr: String,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, RemoteError> {
        serde_json::from_slice(&self.body).map_err(|e| RemoteError::Protocol {
            addr: self.addr.clone(),
            why: format!("the body is not JSON: {e}"),
        })
    }
}

impl Client {
    /// A client for `url` (`http://HOST[:PORT][/PREFIX]`, port 80 by default).
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Client, RemoteError> {
        let bad = |why: &str| RemoteError::Url {
            url: url.to_string(),
            why: why.to_string(),
        };
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(bad(
                    "https is not supported: tensorwasmd serves plain HTTP, on loopback by \
                     default; reach a remote daemon through an SSH tunnel to its loopback port",
                ));
            }
            Some((scheme, _)) => return Err(bad(&format!("unknown scheme `{scheme}`"))),
            None => return Err(bad("expected http://HOST[:PORT]")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("expected http://HOST[:PORT] (no user info)"));
        }
        if path.contains(['?', '#']) {
            return Err(bad("a query or fragment has no meaning here"));
        }
        if let Some(t) = &token
            && (t.is_empty() || t.bytes().any(|b| b.is_ascii_control() || b == b' '))
        {
            return Err(RemoteError::Url {
                url: url.to_string(),
                why: "the token is empty or holds spaces or control characters".into(),
            });
        }
        Ok(Client {
            authority: authority.to_string(),
            prefix: path.trim_end_matches('/').to_string(),
            token,
            timeout,
            max_response: MAX_RESPONSE_BYTES,
        })
    }

    /// The same client reading responses of at most `bytes` bytes, head included.
    pub fn with_max_response(mut self, bytes: u64) -> Client {
        self.max_response = bytes;
        self
    }

    fn io(&self, why: impl std::fmt::Display) -> RemoteError {
        RemoteError::Io {
            addr: self.authority.clone(),
            why: why.to_string(),
        }
    }

    fn protocol(&self, why: impl Into<String>) -> RemoteError {
        RemoteError::Protocol {
            addr: self.authority.clone(),
            why: why.into(),
        }
    }

    /// Sends `method path` with `body` (and its content type) and returns the answer, whatever
    /// its status.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Response, RemoteError> {
        let with_port = if self
            .authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && !self.authority.ends_with(']')
        {
            self.authority.clone()
        } else {
            format!("{}:80", self.authority)
        };
        let addrs: Vec<_> = with_port
            .to_socket_addrs()
            .map_err(|e| self.io(format!("cannot resolve: {e}")))?
            .collect();
        let mut last = None;
        let mut stream = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, self.timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let mut stream = stream
            .ok_or_else(|| self.io(last.map_or("no address".to_string(), |e| e.to_string())))?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(|e| self.io(e))?;

        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: tensorwasm/{}\r\n",
            self.prefix,
            self.authority,
            env!("CARGO_PKG_VERSION")
        );
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let payload = body.map_or(&[][..], |(_, b)| b);
        if let Some((ty, b)) = body {
            head.push_str(&format!(
                "Content-Type: {ty}\r\nContent-Length: {}\r\n",
                b.len()
            ));
        } else if method != "GET" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(payload))
            .and_then(|()| stream.flush())
            .map_err(|e| self.io(format!("sending the request: {e}")))?;

        let mut raw = Vec::new();
        (&mut stream)
            .take(self.max_response + 1)
            .read_to_end(&mut raw)
            .map_err(|e| self.io(format!("reading the response: {e}")))?;
        if raw.len() as u64 > self.max_response {
            return Err(self.protocol(format!("response larger than {} bytes", self.max_response)));
        }
        self.parse(&raw)
    }

    /// Parses a whole HTTP/1.1 response.
    fn parse(&self, raw: &[u8]) -> Result<Response, RemoteError> {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| self.protocol("the connection closed before the response head ended"))?;
        let head = std::str::from_utf8(&raw[..end])
            .map_err(|_| self.protocol("the response head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| self.protocol(format!("bad status line `{status_line}`")))?;
        let mut length = None;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                return Err(self.protocol(format!("bad header line `{line}`")));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| self.protocol(format!("bad Content-Length `{value}`")))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        let rest = &raw[end + 4..];
        let body = if chunked {
            self.dechunk(rest)?
        } else if let Some(n) = length {
            rest.get(..n)
                .ok_or_else(|| {
                    self.protocol(format!("the body ended after {} of {n} bytes", rest.len()))
                })?
                .to_vec()
        } else {
            rest.to_vec()
        };
        Ok(Response {
            status,
            body,
            addr: self.authority.clone(),
        })
    }

    fn dechunk(&self, mut rest: &[u8]) -> Result<Vec<u8>, RemoteError> {
        let mut body = Vec::new();
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| self.protocol("a chunk size line has no end"))?;
            let size_text = std::str::from_utf8(&rest[..eol]).unwrap_or("");
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| self.protocol(format!("bad chunk size `{size_text}`")))?;
            rest = &rest[eol + 2..];
            if size == 0 {
                return Ok(body);
            }
            let chunk = rest
                .get(..size)
                .ok_or_else(|| self.protocol("the body ended inside a chunk"))?;
            body.extend_from_slice(chunk);
            rest = rest.get(size + 2..).unwrap_or_default();
        }
    }

    /// [`Client::send`], turning a non-2xx answer into [`RemoteError::Refused`].
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Response, RemoteError> {
        let r = self.send(method, path, body)?;
        if (200..300).contains(&r.status) {
            return Ok(r);
        }
        let parsed: Option<(String, String)> = serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| {
                let e = v.get("error")?;
                Some((
                    e.get("code")?.as_str()?.to_string(),
                    e.get("message")?.as_str()?.to_string(),
                ))
            });
        let (code, message) = parsed.unwrap_or_else(|| {
            (
                "http-error".to_string(),
                String::from_utf8_lossy(&r.body)
                    .trim()
                    .chars()
                    .take(500)
                    .collect(),
            )
        });
        Err(RemoteError::Refused {
            status: r.status,
            code,
            message,
        })
    }
}

/// Percent-encodes a path segment (bundle and export names), dots included, so that no name
/// (`..`, `a/b`) can change the path the request goes to.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new("http://127.0.0.1:7878", None, Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn urls_are_checked() {
        let c = Client::new(
            "http://h:1/tw/",
            Some("t0k3n".into()),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!((c.authority.as_str(), c.prefix.as_str()), ("h:1", "/tw"));
        for bad in [
            "https://h",
            "ftp://h",
            "h:7878",
            "http://",
            "http://u@h",
            "http://h/?q",
        ] {
            assert!(
                Client::new(bad, None, Duration::from_secs(1)).is_err(),
                "{bad}"
            );
        }
        assert!(Client::new("http://h", Some("a b".into()), Duration::from_secs(1)).is_err());
        assert!(Client::new("http://h", Some("a\r\nX: y".into()), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn responses_parse_with_length_chunks_or_close() {
        let c = client();
        let r = c
            .parse(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}extra")
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"{}"[..]));
        let r = c
            .parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(r.body, b"abcde");
        let r = c.parse(b"HTTP/1.0 404 Not Found\r\n\r\ngone").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"gone"[..]));
        for bad in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"SMTP 200\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\nabc",
        ] {
            assert!(c.parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn segments_cannot_escape_the_path() {
        assert_eq!(segment("arith"), "arith");
        assert_eq!(segment("../x"), "%2E%2E%2Fx");
        assert_eq!(segment("a b?c#d"), "a%20b%3Fc%23d");
    }

    /// A one-connection server on loopback that reads the request head, waits `delay`, and
    /// answers `reply`; returns its URL.
    fn serve_once(reply: Vec<u8>, delay: Duration) -> String {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            std::thread::sleep(delay);
            let _ = reader.get_mut().write_all(&reply);
        });
        url
    }

    #[test]
    fn odd_answers_are_clear_errors() {
        let t = Duration::from_secs(5);
        // A 2xx whose body is not JSON: the call succeeds, reading it as JSON says why.
        let url = serve_once(
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello".to_vec(),
            Duration::ZERO,
        );
        let r = Client::new(&url, None, t)
            .unwrap()
            .call("GET", "/v1/bundles", None);
        let e = r.unwrap().json().unwrap_err().to_string();
        assert!(e.contains("the body is not JSON"), "{e}");
        assert!(e.contains(url.trim_start_matches("http://")), "{e}");
        // An error status without the daemon's JSON error: the text itself, code http-error.
        let url = serve_once(
            b"HTTP/1.1 502 Bad Gateway\r\n\r\nupstream down\n".to_vec(),
            Duration::ZERO,
        );
        let e = Client::new(&url, None, t)
            .unwrap()
            .call("GET", "/healthz", None)
            .unwrap_err();
        assert!(
            matches!(&e, RemoteError::Refused { status: 502, code, message }
                if code == "http-error" && message == "upstream down"),
            "{e}"
        );
        // A response over the cap: refused, whatever follows.
        let mut big = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        big.resize(4096, b'x');
        let url = serve_once(big, Duration::ZERO);
        let e = Client::new(&url, None, t)
            .unwrap()
            .with_max_response(1024)
            .call("GET", "/v1/bundles", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("response larger than 1024 bytes"), "{e}");
        // A daemon that never answers: the read times out.
        let url = serve_once(Vec::new(), Duration::from_secs(5));
        let e = Client::new(&url, None, Duration::from_millis(300))
            .unwrap()
            .call("GET", "/healthz", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("reading the response"), "{e}");
    }

    #[test]
    fn an_unreachable_daemon_is_a_clear_error() {
        // Port 1 on loopback: nothing listens there.
        let c = Client::new("http://127.0.0.1:1", None, Duration::from_secs(2)).unwrap();
        let e = c.call("GET", "/healthz", None).unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot reach tensorwasmd at 127.0.0.1:1"),
            "{e}"
        );
    }
}
