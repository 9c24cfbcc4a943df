//! The HTTP front: one port for JSON-RPC (with rate limiting and auth ahead of any params
//! parsing), the status page (`GET /`), `GET /metrics`, `GET /wrappers` and `GET /healthz`.
//!
//! Limits: at most `rpc.max_connections` connections are open at once (one more is answered 503
//! and closed at once); a failing `accept` (EMFILE above all) is retried after a pause that
//! doubles from 10 ms to 1 s, logged once per burst; the per-client rate limiter forgets idle
//! clients ([`limiter`]). With `[rpc.tls]` every connection is TLS; its handshake holds a
//! connection slot and is cut at `rpc.tls.handshake_timeout_ms`. Mutating methods over plain HTTP
//! from a non-loopback address are refused unless `rpc.allow_plain_remote_mutations` is set. Every body is checked before JSON-RPC sees it ([`protocol`]), so that
//! malformed requests get the answers docs/rpc.md lists.

mod limiter;
mod protocol;

use std::future::Future;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use jsonrpsee::core::middleware::{Batch, Notification, RpcServiceBuilder, RpcServiceT};
use jsonrpsee::server::{
    serve_with_graceful_shutdown, stop_channel, BatchRequestConfig, HttpBody, MethodResponse,
    ServerConfig, ServerHandle,
};
use jsonrpsee::types::error::INVALID_PARAMS_CODE;
use jsonrpsee::types::{ErrorObjectOwned, Request};
use jsonrpsee::Methods;
use jsonrpsee::ResponsePayload;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use self::limiter::{Backoff, RateLimiter, Refused, MAX_CLIENTS};
use super::compat;
use super::metrics::{Metrics, RpcLabel};
use super::state::{lock, Live, Shared};
use crate::rpc::{MUTATING_METHODS, RATE_LIMITED, UNAUTHORIZED};
use crate::tls::ServerTls;

/// Who sent a request: put into the request's extensions before JSON-RPC sees it.
#[derive(Debug, Clone)]
struct Client {
    ip: IpAddr,
    /// The `Authorization: Bearer` token, if any.
    bearer: Option<String>,
    /// Whether the request came over TLS: a token sent without it from another host is refused.
    tls: bool,
}

/// RPC middleware: rate limit, then auth for mutating methods, then the params shape, then the
/// method; counts results.
#[derive(Clone)]
struct Guard<S> {
    inner: S,
    shared: Arc<Shared>,
    limiter: Arc<Mutex<RateLimiter>>,
    /// `rpc.allow_plain_remote_mutations`.
    allow_plain_remote: bool,
}

impl<S> Guard<S> {
    fn check(&self, method: &str, client: Option<&Client>) -> Result<(), ErrorObjectOwned> {
        let Live { token, rps } = self.shared.live();
        if let Some(c) = client {
            let verdict = lock(&self.limiter).admit(c.ip, Instant::now(), rps);
            let msg = match verdict {
                Ok(()) => None,
                Err(Refused::OverLimit) => Some(format!(
                    "rate limit exceeded: at most {rps} requests per second per client"
                )),
                Err(Refused::TooManyClients) => Some(format!(
                    "rate limit exceeded: more than {MAX_CLIENTS} clients within one second; \
                     retry in a second"
                )),
            };
            if let Some(msg) = msg {
                return Err(ErrorObjectOwned::owned(RATE_LIMITED, msg, None::<()>));
            }
        }
        if MUTATING_METHODS.contains(&method) {
            if let Some(c) = client.filter(|c| !c.tls && !c.ip.is_loopback()) {
                if !self.allow_plain_remote {
                    let msg = format!(
                        "unauthorized: mutating methods are refused over plain HTTP from a \
                         non-loopback address ({}), so that a token does not cross the network \
                         in clear text; connect over TLS (rpc.tls) or set \
                         rpc.allow_plain_remote_mutations",
                        c.ip
                    );
                    return Err(ErrorObjectOwned::owned(UNAUTHORIZED, msg, None::<()>));
                }
            }
            let given = client.and_then(|c| c.bearer.as_deref());
            let ok = match (&token, given) {
                (Some(t), Some(g)) => {
                    // Compare digests so neither content nor length leaks through timing.
                    let a = blake3::hash(t.expose().as_bytes());
                    let b = blake3::hash(g.as_bytes());
                    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
                }
                _ => false,
            };
            if !ok {
                let msg = if token.is_none() {
                    "unauthorized: no RPC token is configured, so mutating methods are refused"
                } else {
                    "unauthorized: missing or wrong bearer token"
                };
                return Err(ErrorObjectOwned::owned(UNAUTHORIZED, msg, None::<()>));
            }
        }
        Ok(())
    }
}

/// Params are named: an object, or left out (`null` counts as left out). Anything else is
/// `-32602` before the method parses it.
fn named_params(req: &Request<'_>) -> Result<(), ErrorObjectOwned> {
    let params = req.params();
    let Some(raw) = params.as_str() else {
        return Ok(());
    };
    let kind = match raw.trim_start().bytes().next() {
        Some(b'{') => return Ok(()),
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        _ => "a number",
    };
    Err(ErrorObjectOwned::owned(
        INVALID_PARAMS_CODE,
        format!("params must be an object of named params (or left out), not {kind}"),
        None::<()>,
    ))
}

fn count(metrics: &Metrics, method: &str, resp: &MethodResponse) {
    let code = resp.as_error_code().unwrap_or(0).to_string();
    // Unknown methods are counted under one label so clients cannot grow the series set.
    let method = if crate::rpc::METHODS.contains(&method) {
        method.to_owned()
    } else {
        "other".to_owned()
    };
    metrics
        .governor_rpc_requests
        .get_or_create(&RpcLabel { method, code })
        .inc();
}

impl<S> RpcServiceT for Guard<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let method = req.method_name().to_owned();
        // Array params: The Block's contract-cli dialect on its two methods; refused elsewhere
        // (`named_params`).
        let positional = req
            .params()
            .as_str()
            .filter(|p| {
                p.trim_start().starts_with('[')
                    && compat::DIALECT_METHODS.contains(&method.as_str())
            })
            .map(str::to_owned);
        let dialect = positional.is_some();
        let verdict = self
            .check(&method, req.extensions().get::<Client>())
            .and_then(|()| if dialect { Ok(()) } else { named_params(&req) });
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        async move {
            let mut resp = match (verdict, positional) {
                (Err(e), _) => MethodResponse::error(req.id().into_owned(), e),
                (Ok(()), Some(params)) => match compat::call(&shared, &method, &params) {
                    Ok(v) => MethodResponse::response(
                        req.id().into_owned(),
                        ResponsePayload::success(v),
                        MAX_RESPONSE_BYTES,
                    ),
                    Err(e) => MethodResponse::error(req.id().into_owned(), e),
                },
                (Ok(()), None) => inner.call(req).await,
            };
            if dialect {
                resp.extensions_mut().insert(compat::Dialect);
            }
            count(&shared.metrics, &method, &resp);
            resp
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        // Batches are disabled in the server config; this is never reached.
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(n)
    }
}

/// Largest JSON-RPC response built here (jsonrpsee's default for its own).
const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// Completes the envelope of a response marked [`compat::Dialect`]: The Block's contract-cli
/// requires both `result` and `error`, so the missing one is added as `null` (the rest of the
/// body is kept byte for byte). Any other response is returned untouched.
async fn complete_envelope(resp: http::Response<HttpBody>) -> http::Response<HttpBody> {
    if resp.extensions().get::<compat::Dialect>().is_none() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes().to_vec(),
        Err(e) => {
            tracing::debug!(error = %e, "reading a contract-cli response failed");
            return plain(500, "text/plain", "internal error\n".to_owned());
        }
    };
    let members = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes);
    let missing = match &members {
        Ok(m) if m.contains_key("result") && !m.contains_key("error") => Some("error"),
        Ok(m) if m.contains_key("error") && !m.contains_key("result") => Some("result"),
        _ => None,
    };
    let body = match (missing, bytes.last()) {
        (Some(member), Some(b'}')) => {
            let mut out = bytes[..bytes.len() - 1].to_vec();
            out.extend_from_slice(format!(",\"{member}\":null}}").as_bytes());
            out
        }
        _ => bytes,
    };
    parts.headers.remove(http::header::CONTENT_LENGTH);
    http::Response::from_parts(parts, HttpBody::from(body))
}

fn plain(status: u16, content_type: &str, body: String) -> http::Response<HttpBody> {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(HttpBody::from(body))
        .unwrap_or_else(|_| http::Response::new(HttpBody::from(String::new())))
}

/// `GET /wrappers`: the canonical metrics summary, its blake3 in the body and a header.
fn wrappers(registry: &Registry, shared: &Shared) -> http::Response<HttpBody> {
    match super::wrappers::summary(registry, shared) {
        Ok(summary) => {
            let (body, hash) = super::wrappers::render(&summary);
            http::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .header(super::wrappers::HASH_HEADER, hash)
                .body(HttpBody::from(body))
                .unwrap_or_else(|_| http::Response::new(HttpBody::from(String::new())))
        }
        Err(e) => plain(500, "text/plain", format!("{e}\n")),
    }
}

/// 405 with the `Allow` header RFC 9110 asks for.
fn not_allowed(allow: &str) -> http::Response<HttpBody> {
    http::Response::builder()
        .status(405)
        .header("content-type", "text/plain")
        .header("allow", allow)
        .body(HttpBody::from(format!(
            "method not allowed: this path answers {allow}\n"
        )))
        .unwrap_or_else(|_| http::Response::new(HttpBody::from(String::new())))
}

/// Answers a connection over `rpc.max_connections` with a 503 and closes it, without waiting.
/// Whatever the client already sent is read first, so that closing a connection whose request
/// has arrived does not reset it before the client reads the answer.
fn refuse_busy(sock: TcpStream, max_connections: u32) {
    let Ok(mut sock) = sock.into_std() else {
        return;
    };
    let mut scratch = [0u8; 8192];
    let _ = sock.read(&mut scratch);
    let body = format!(
        "busy: {max_connections} connections are open (rpc.max_connections); retry shortly\n"
    );
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(format!("{head}{body}").as_bytes());
}

/// What every connection's requests share.
struct Front<B> {
    builder: B,
    module: Methods,
    stop: jsonrpsee::server::StopHandle,
    registry: Registry,
    max_body_bytes: u32,
    /// What the status page and the scrape-time gauges read.
    shared: Arc<Shared>,
}

/// The `Content-Length` of a request, when it has one that parses.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Routes one request: `/metrics`, `/wrappers` and `/healthz` (GET or HEAD), JSON-RPC (POST on
/// any other path), and the HTTP errors in between.
async fn route<L>(
    front: &Front<jsonrpsee::server::TowerServiceBuilder<L, tower::layer::util::Identity>>,
    req: http::Request<hyper::body::Incoming>,
    remote: SocketAddr,
    tls: bool,
) -> anyhow::Result<http::Response<HttpBody>>
where
    L: tower::Layer<jsonrpsee::server::middleware::rpc::RpcService> + Clone + Send + Sync + 'static,
    L::Service: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + 'static,
{
    let method = req.method();
    let readable = method == http::Method::GET || method == http::Method::HEAD;
    match req.uri().path() {
        "/" if method == http::Method::GET => return Ok(super::page::respond(&front.shared)),
        "/metrics" if readable => {
            front.shared.metrics.refresh(&front.shared);
            let mut text = String::new();
            return Ok(match encode(&mut text, &front.registry) {
                Ok(()) => plain(
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    super::metrics::prometheus_text(&text),
                ),
                Err(e) => plain(500, "text/plain", format!("encoding metrics failed: {e}\n")),
            });
        }
        "/healthz" if readable => return Ok(plain(200, "text/plain", "ok\n".to_owned())),
        "/wrappers" if readable => {
            front.shared.metrics.refresh(&front.shared);
            return Ok(wrappers(&front.registry, &front.shared));
        }
        "/metrics" | "/healthz" | "/wrappers" => return Ok(not_allowed("GET, HEAD")),
        _ if readable => {
            return Ok(plain(
                404,
                "text/plain",
                "not found: JSON-RPC is POST /, the status page GET /, metrics GET /metrics, \
                 health GET /healthz, metrics summary GET /wrappers\n"
                    .to_owned(),
            ))
        }
        _ if method != http::Method::POST => return Ok(not_allowed("POST")),
        _ => {}
    }
    if !jsonrpsee::server::http::content_type_is_json(&req) {
        return Ok(jsonrpsee::server::http::response::unsupported_content_type());
    }
    let max = front.max_body_bytes;
    if content_length(req.headers()).is_some_and(|n| n > u64::from(max)) {
        return Ok(jsonrpsee::server::http::response::too_large(max));
    }
    let (mut parts, body) = req.into_parts();
    let body = match Limited::new(body, max as usize).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Ok(jsonrpsee::server::http::response::too_large(max))
        }
        Err(e) => anyhow::bail!("reading the request body failed: {e}"),
    };
    if let Err(refusal) = protocol::check(&body) {
        return Ok(plain(
            refusal.status,
            "application/json; charset=utf-8",
            refusal.body,
        ));
    }
    let bearer = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    parts.extensions.insert(Client {
        ip: remote.ip(),
        bearer,
        tls,
    });
    let req = http::Request::from_parts(parts, Full::new(body));
    let mut rpc = front
        .builder
        .clone()
        .build(front.module.clone(), front.stop.clone());
    let resp = tower::Service::call(&mut rpc, req)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(complete_envelope(resp).await)
}

/// Binds `listen` (`rpc.listen`): the last start-up check that can fail, done before the daemon
/// writes anything.
pub async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {listen} (rpc.listen / TB_GOVERNOR_RPC_LISTEN): {e}")
    })
}

/// How the listener talks to clients, besides its limits.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// `[rpc.tls]`: when set, every connection is TLS, its handshake cut at the time limit.
    pub tls: Option<Arc<ServerTls>>,
    /// `rpc.allow_plain_remote_mutations`.
    pub allow_plain_remote_mutations: bool,
}

/// Serves on `listener` until the returned handle is stopped, with at most `max_connections`
/// connections open at once (a TLS handshake holds one). Returns the bound address.
pub async fn serve(
    listener: TcpListener,
    module: Methods,
    shared: Arc<Shared>,
    max_body_bytes: u32,
    max_connections: u32,
    transport: Transport,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let addr = listener.local_addr()?;
    let (stop_handle, server_handle) = stop_channel();
    let limiter = Arc::new(Mutex::new(RateLimiter::new(MAX_CLIENTS)));
    let config = ServerConfig::builder()
        .max_request_body_size(max_body_bytes)
        .set_batch_request_config(BatchRequestConfig::Disabled)
        .http_only()
        .build();
    let guard_shared = shared.clone();
    let rpc_middleware = RpcServiceBuilder::new().layer_fn(move |inner| Guard {
        inner,
        shared: guard_shared.clone(),
        limiter: limiter.clone(),
        allow_plain_remote: transport.allow_plain_remote_mutations,
    });
    let builder = jsonrpsee::server::Server::builder()
        .set_config(config)
        .set_rpc_middleware(rpc_middleware)
        .to_service_builder();
    let front = Arc::new(Front {
        builder,
        module,
        stop: stop_handle.clone(),
        registry: Metrics::registry(&shared.metrics),
        max_body_bytes,
        shared: shared.clone(),
    });
    let slots = Arc::new(Semaphore::new(
        usize::try_from(max_connections)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS),
    ));
    tokio::spawn(async move {
        let mut backoff = Backoff::default();
        loop {
            let accepted = tokio::select! {
                res = listener.accept() => res,
                () = stop_handle.clone().shutdown() => break,
            };
            let (sock, remote) = match accepted {
                Ok(s) => {
                    let failures = backoff.succeeded();
                    if failures > 0 {
                        tracing::info!(failures, "accepting connections again");
                    }
                    s
                }
                Err(e) => {
                    let (pause, first) = backoff.failed();
                    if first {
                        tracing::warn!(
                            error = %e,
                            "accepting a connection failed; retrying after a pause that doubles \
                             from 10 ms to 1 s until it works (too many open files? lower \
                             rpc.max_connections or raise the open-files limit)"
                        );
                    } else {
                        tracing::debug!(error = %e, ?pause, "accept failed again");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(pause) => continue,
                        () = stop_handle.clone().shutdown() => break,
                    }
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                shared.metrics.governor_http_connections_refused.inc();
                tracing::debug!(%remote, max_connections, "connection refused: too many open");
                refuse_busy(sock, max_connections);
                continue;
            };
            let front = front.clone();
            let secure = transport.tls.is_some();
            let svc = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let front = front.clone();
                async move { route(&front, req, remote, secure).await }
            });
            let stopped = stop_handle.clone().shutdown();
            let tls = transport.tls.clone();
            tokio::spawn(async move {
                let served = match tls {
                    None => serve_with_graceful_shutdown(sock, svc, stopped).await,
                    Some(tls) => {
                        let handshake = tls.acceptor().accept(sock);
                        match tokio::time::timeout(tls.handshake_timeout, handshake).await {
                            Ok(Ok(stream)) => {
                                serve_with_graceful_shutdown(stream, svc, stopped).await
                            }
                            Ok(Err(e)) => Err(format!("TLS handshake failed: {e}").into()),
                            Err(_) => Err(format!(
                                "TLS handshake not done after {:?} (rpc.tls.handshake_timeout_ms)",
                                tls.handshake_timeout
                            )
                            .into()),
                        }
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(%remote, error = %e, "connection ended");
                }
                drop(slot);
            });
        }
    });
    Ok((addr, server_handle))
}
