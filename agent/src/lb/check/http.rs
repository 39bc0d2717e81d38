//! The HTTP check: one `GET` over HTTP/1.1 with `Connection: close`, the response read with
//! bounds (headers up to [`MAX_HEAD`], the body up to [`MAX_BODY`]) and parsed with
//! `httparse`.
//!
//! The body is read only when a body regex is given, framed by what the headers say:
//! `Transfer-Encoding: chunked` is decoded (chunk extensions and trailers ignored), else
//! `Content-Length` bytes are read, else everything up to the server's close. The regex sees
//! the first [`MAX_BODY`] bytes of the decoded body (as UTF-8, invalid bytes replaced), so
//! a page that proves itself healthy near its top can be matched without reading all of it.
//! A body cut short of its `Content-Length` or inside a chunk fails the check.
//!
//! The caller bounds the whole exchange with the check's timeout.

use std::net::SocketAddr;

use regex::Regex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{CheckError, Passed};

/// The most bytes of status line and headers read before giving up on a response.
pub(super) const MAX_HEAD: usize = 16 * 1024;
/// The most bytes of body the regex is matched against.
pub(super) const MAX_BODY: usize = 64 * 1024;
/// The most header lines a response may have.
const MAX_HEADERS: usize = 64;
/// How much one read asks for.
const READ_CHUNK: usize = 8 * 1024;

/// One HTTP check to make.
pub(super) struct Request<'a> {
    pub address: SocketAddr,
    pub path: &'a str,
    pub expect_status: u16,
    pub body: Option<&'a Regex>,
}

impl Request<'_> {
    /// The request's bytes. `Host` is the address (bracketed if IPv6) with the port unless it
    /// is 80 (RFC 9110 §7.2: the port may be omitted only when it is the scheme's default).
    fn bytes(&self) -> Vec<u8> {
        let host = match (self.address, self.address.port()) {
            (SocketAddr::V4(a), 80) => a.ip().to_string(),
            (SocketAddr::V6(a), 80) => format!("[{}]", a.ip()),
            (address, _) => address.to_string(),
        };
        format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vipflip\r\nConnection: close\r\n\r\n",
            self.path
        )
        .into_bytes()
    }
}

/// Makes the request and judges the response.
pub(super) async fn check(request: &Request<'_>) -> Result<Passed, CheckError> {
    let mut stream = TcpStream::connect(request.address)
        .await
        .map_err(CheckError::Connect)?;
    stream
        .write_all(&request.bytes())
        .await
        .map_err(CheckError::Send)?;
    let mut response = Response {
        stream,
        buf: Vec::with_capacity(READ_CHUNK),
    };
    let (status, framing) = response.head().await?;
    if status != request.expect_status {
        return Err(CheckError::Status {
            got: status,
            expected: request.expect_status,
        });
    }
    let Some(regex) = request.body else {
        return Ok(Passed::Http { status });
    };
    let body = response.body(framing).await?;
    if regex.is_match(&String::from_utf8_lossy(&body)) {
        Ok(Passed::Http { status })
    } else {
        Err(CheckError::BodyMismatch {
            pattern: regex.as_str().to_owned(),
        })
    }
}

/// How the body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// 1xx, 204 and 304 responses have none.
    Empty,
    Chunked,
    Length(u64),
    UntilClose,
}

/// A response being read: what has arrived so far and the connection for the rest.
struct Response {
    stream: TcpStream,
    /// Received bytes not yet consumed: the head until [`Self::head`] returns, then the body.
    buf: Vec<u8>,
}

impl Response {
    /// Reads and parses the status line and headers; leaves what follows them in `buf`.
    async fn head(&mut self) -> Result<(u16, Framing), CheckError> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = parsed.code.unwrap_or_default();
                    let framing = framing(status, parsed.headers)?;
                    self.buf.drain(..len);
                    return Ok((status, framing));
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Err(CheckError::BadResponse(e.to_string())),
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(CheckError::BadResponse(format!(
                    "headers longer than {} KiB",
                    MAX_HEAD / 1024
                )));
            }
            if self.fill().await? == 0 {
                return Err(bad(if self.buf.is_empty() {
                    "closed without a response"
                } else {
                    "closed inside the headers"
                }));
            }
        }
    }

    /// Reads the body (its first [`MAX_BODY`] bytes).
    async fn body(&mut self, framing: Framing) -> Result<Vec<u8>, CheckError> {
        match framing {
            Framing::Empty => Ok(Vec::new()),
            Framing::Length(length) => {
                let want = usize::try_from(length).unwrap_or(usize::MAX).min(MAX_BODY);
                while self.buf.len() < want {
                    if self.fill().await? == 0 {
                        return Err(CheckError::BadResponse(format!(
                            "closed after {} of {length} body bytes",
                            self.buf.len()
                        )));
                    }
                }
                self.buf.truncate(want);
                Ok(std::mem::take(&mut self.buf))
            }
            Framing::UntilClose => {
                while self.buf.len() < MAX_BODY && self.fill().await? > 0 {}
                self.buf.truncate(MAX_BODY);
                Ok(std::mem::take(&mut self.buf))
            }
            Framing::Chunked => self.chunked().await,
        }
    }

    /// Decodes a chunked body (RFC 9112 §7.1) until the last chunk or [`MAX_BODY`] bytes.
    async fn chunked(&mut self) -> Result<Vec<u8>, CheckError> {
        let mut body = Vec::new();
        loop {
            let (consumed, size) = match httparse::parse_chunk_size(&self.buf) {
                Ok(httparse::Status::Complete(found)) => found,
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() >= MAX_HEAD {
                        return Err(bad("chunk size line too long"));
                    }
                    if self.fill().await? == 0 {
                        return Err(bad("closed inside a chunk size line"));
                    }
                    continue;
                }
                Err(httparse::InvalidChunkSize) => return Err(bad("invalid chunk size")),
            };
            if size == 0 {
                return Ok(body); // The last chunk; trailers are not read.
            }
            self.buf.drain(..consumed);
            let room = MAX_BODY - body.len();
            let take = usize::try_from(size).map_or(room, |size| size.min(room));
            self.fill_to(take, "closed inside a chunk").await?;
            body.extend(self.buf.drain(..take));
            if body.len() == MAX_BODY {
                return Ok(body);
            }
            // `take` was the whole chunk (the body has room left): its CRLF follows.
            self.fill_to(2, "closed inside a chunk").await?;
            if self.buf[..2] != *b"\r\n" {
                return Err(bad("chunk not followed by CRLF"));
            }
            self.buf.drain(..2);
        }
    }

    /// Reads until `buf` holds at least `len` bytes; a close before that is `BadResponse(why)`.
    async fn fill_to(&mut self, len: usize, why: &'static str) -> Result<(), CheckError> {
        while self.buf.len() < len {
            if self.fill().await? == 0 {
                return Err(bad(why));
            }
        }
        Ok(())
    }

    /// One read (of at least [`READ_CHUNK`] bytes of room) appended to `buf`; 0 at the end of the stream.
    async fn fill(&mut self) -> Result<usize, CheckError> {
        self.buf.reserve(READ_CHUNK);
        self.stream
            .read_buf(&mut self.buf)
            .await
            .map_err(CheckError::Receive)
    }
}

/// The body's framing from the status and headers (RFC 9112 §6.3, in its order).
fn framing(status: u16, headers: &[httparse::Header<'_>]) -> Result<Framing, CheckError> {
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::Empty);
    }
    let mut length = None;
    for header in headers {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked is the last coding whenever it is used at all (RFC 9112 §6.1).
            let value = String::from_utf8_lossy(header.value);
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            if last.eq_ignore_ascii_case("chunked") {
                return Ok(Framing::Chunked);
            }
            return Ok(Framing::UntilClose);
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            let value: u64 = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| bad("invalid Content-Length"))?;
            if length.is_some_and(|l| l != value) {
                return Err(bad("conflicting Content-Length headers"));
            }
            length = Some(value);
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

fn bad(why: &str) -> CheckError {
    CheckError::BadResponse(why.to_owned())
}
