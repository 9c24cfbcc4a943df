//! A minimal HTTP/1.1 client on std's `TcpStream`, shared by the end-to-end tests and the daemon
//! load generator (`governor/benches/rpc_load.rs`): no client library's pooling, buffering or
//! request rewriting stands between a test (or a load schedule) and the socket, so the bytes the
//! daemon sees are exactly the ones written here.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// One response: status, headers and body.
#[derive(Debug, Clone)]
pub(crate) struct HttpResponse {
    /// The status code, what most checks look at first.
    pub(crate) status: u16,
    /// Header names (lower case) and values, in order, for checks on single headers.
    pub(crate) headers: Vec<(String, String)>,
    /// The body with any chunked encoding undone (invalid UTF-8 replaced), for text and JSON
    /// checks.
    pub(crate) body: String,
}

impl HttpResponse {
    /// The first header named `name` (lower case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 connection: requests are sent and answered one after the other (keep-alive
/// unless a request or the server says `Connection: close`).
#[derive(Debug)]
pub(crate) struct Conn {
    /// The read half, buffered: responses are parsed line by line.
    reader: BufReader<TcpStream>,
    /// The write half: each request goes out in one write.
    writer: TcpStream,
    /// The `Host` header value: the address connected to.
    host: String,
    /// The request being written, reused so that a load run does not allocate per request.
    out: Vec<u8>,
}

impl Conn {
    /// Connects to `addr` (`host:port`) with Nagle's algorithm off; `timeout` bounds the
    /// connect and every later read and write.
    pub(crate) fn connect(addr: &str, timeout: Duration) -> io::Result<Conn> {
        let sock = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{addr} resolves to nothing"),
            )
        })?;
        let stream = TcpStream::connect_timeout(&sock, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Conn {
            writer: stream.try_clone()?,
            reader: BufReader::with_capacity(64 * 1024, stream),
            host: addr.to_owned(),
            out: Vec::with_capacity(512),
        })
    }

    /// Sends one request (with `Host` and `Content-Length` added to `headers`) and reads its
    /// response. A response the server sends before it has read the whole body (e.g. 413) is
    /// still returned, even though writing the rest of the body failed.
    pub(crate) fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        self.out.clear();
        write!(
            self.out,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        )?;
        for (k, v) in headers {
            write!(self.out, "{k}: {v}\r\n")?;
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
        let sent = self.writer.write_all(&self.out);
        match self.read_response(method == "HEAD") {
            Ok(r) => Ok(r),
            Err(e) => Err(sent.err().unwrap_or(e)),
        }
    }

    /// Reads one response; `no_body` for the answer to a `HEAD`.
    fn read_response(&mut self, no_body: bool) -> io::Result<HttpResponse> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let mut line = String::new();
        self.line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            self.line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let mut response = HttpResponse {
            status,
            headers,
            body: String::new(),
        };
        if !no_body && status != 204 && status != 304 {
            let body = self.read_body(&response)?;
            response.body = String::from_utf8(body)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        }
        Ok(response)
    }

    /// Reads the body `head` (a response without its body yet) announces.
    fn read_body(&mut self, head: &HttpResponse) -> io::Result<Vec<u8>> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let mut body = Vec::new();
        if head
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            let mut line = String::new();
            loop {
                self.line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
                let at = body.len();
                body.resize(at + size, 0);
                self.reader.read_exact(&mut body[at..])?;
                self.line(&mut line)?;
                if size == 0 {
                    return Ok(body);
                }
            }
        }
        match head.header("content-length") {
            Some(v) => {
                let n = v
                    .parse::<usize>()
                    .map_err(|_| bad(format!("bad content-length {v:?}")))?;
                body.resize(n, 0);
                self.reader.read_exact(&mut body)?;
            }
            // Neither length nor chunks: the body ends when the server closes.
            None => {
                self.reader.read_to_end(&mut body)?;
            }
        }
        Ok(body)
    }

    /// Reads one line (with its line end) into `line`; the end of the stream is an error.
    fn line(&mut self, line: &mut String) -> io::Result<()> {
        line.clear();
        if self.reader.read_line(line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}
