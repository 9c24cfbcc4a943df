//! The HTTP front: one port for JSON-RPC (with auth and rate limiting ahead of any params
//! parsing), `GET /metrics` and `GET /healthz`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonrpsee::core::middleware::{Batch, Notification, RpcServiceBuilder, RpcServiceT};
use jsonrpsee::server::{
    serve_with_graceful_shutdown, stop_channel, BatchRequestConfig, HttpBody, MethodResponse,
    ServerConfig, ServerHandle,
};
use jsonrpsee::types::{ErrorObjectOwned, Request};
use jsonrpsee::Methods;
use jsonrpsee::ResponsePayload;
use prometheus_client::encoding::text::encode;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use super::compat;
use super::metrics::{Metrics, RpcLabel};
use super::state::{lock, read, Shared};
use crate::rpc::{MUTATING_METHODS, RATE_LIMITED, UNAUTHORIZED};

/// Who sent a request: put into the request's extensions before JSON-RPC sees it.
#[derive(Debug, Clone)]
struct Client {
    ip: IpAddr,
    /// The `Authorization: Bearer` token, if any.
    bearer: Option<String>,
}

/// Per-client request times of the last second.
type Windows = Arc<Mutex<HashMap<IpAddr, VecDeque<Instant>>>>;

/// RPC middleware: rate limit, then auth for mutating methods, then the method; counts results.
#[derive(Clone)]
struct Guard<S> {
    inner: S,
    shared: Arc<Shared>,
    windows: Windows,
}

impl<S> Guard<S> {
    fn check(&self, method: &str, client: Option<&Client>) -> Result<(), ErrorObjectOwned> {
        let (token, rps) = {
            let live = read(&self.shared.live);
            (live.token.clone(), live.rps)
        };
        if let Some(c) = client {
            let now = Instant::now();
            let mut windows = lock(&self.windows);
            let w = windows.entry(c.ip).or_default();
            while w
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                w.pop_front();
            }
            if w.len() >= rps as usize {
                return Err(ErrorObjectOwned::owned(
                    RATE_LIMITED,
                    format!("rate limit exceeded: at most {rps} requests per second per client"),
                    None::<()>,
                ));
            }
            w.push_back(now);
        }
        if MUTATING_METHODS.contains(&method) {
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
        let verdict = self.check(&method, req.extensions().get::<Client>());
        // Array params: The Block's contract-cli dialect on its two methods, refused elsewhere.
        let positional = req
            .params()
            .as_str()
            .filter(|p| p.starts_with('[') && crate::rpc::METHODS.contains(&method.as_str()))
            .map(str::to_owned);
        let dialect = positional.is_some() && compat::DIALECT_METHODS.contains(&method.as_str());
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
    use http_body_util::BodyExt;
    if resp.extensions().get::<compat::Dialect>().is_none() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes().to_vec(),
        Err(e) => {
            tracing::debug!("reading a contract-cli response failed: {e}");
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
fn wrappers(
    registry: &prometheus_client::registry::Registry,
    shared: &Shared,
) -> http::Response<HttpBody> {
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

/// Binds `listen` and serves until the returned handle is stopped. Returns the bound address.
pub async fn serve(
    listen: &str,
    module: Methods,
    shared: Arc<Shared>,
    max_body_bytes: u32,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {listen} (rpc.listen / TB_GOVERNOR_RPC_LISTEN): {e}")
    })?;
    let addr = listener.local_addr()?;
    let (stop_handle, server_handle) = stop_channel();
    let windows: Windows = Arc::default();
    let config = ServerConfig::builder()
        .max_request_body_size(max_body_bytes)
        .set_batch_request_config(BatchRequestConfig::Disabled)
        .http_only()
        .build();
    let guard_shared = shared.clone();
    let rpc_middleware = RpcServiceBuilder::new().layer_fn(move |inner| Guard {
        inner,
        shared: guard_shared.clone(),
        windows: windows.clone(),
    });
    let builder = jsonrpsee::server::Server::builder()
        .set_config(config)
        .set_rpc_middleware(rpc_middleware)
        .to_service_builder();
    let registry = Arc::new(Metrics::registry(&shared.metrics));
    let state = shared.clone();
    tokio::spawn(async move {
        loop {
            let (sock, remote) = tokio::select! {
                res = listener.accept() => match res {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!("accept failed: {e}");
                        continue;
                    }
                },
                () = stop_handle.clone().shutdown() => break,
            };
            let svc_builder = builder.clone();
            let module = module.clone();
            let stop = stop_handle.clone();
            let registry = registry.clone();
            let state = state.clone();
            let svc = tower::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                let mut rpc = svc_builder.clone().build(module.clone(), stop.clone());
                let registry = registry.clone();
                let state = state.clone();
                async move {
                    if req.method() == http::Method::GET {
                        let resp = match req.uri().path() {
                            "/metrics" => {
                                let mut text = String::new();
                                match encode(&mut text, &registry) {
                                    Ok(()) => plain(200, "text/plain; version=0.0.4; charset=utf-8", super::metrics::prometheus_text(&text)),
                                    Err(e) => plain(500, "text/plain", format!("encoding metrics failed: {e}\n")),
                                }
                            }
                            "/healthz" => plain(200, "text/plain", "ok\n".to_owned()),
                            "/wrappers" => wrappers(&registry, &state),
                            _ => plain(404, "text/plain", "not found: JSON-RPC is POST /, metrics GET /metrics, health GET /healthz, metrics summary GET /wrappers\n".to_owned()),
                        };
                        return Ok::<_, anyhow::Error>(resp);
                    }
                    let bearer = req
                        .headers()
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .map(str::to_owned);
                    req.extensions_mut().insert(Client {
                        ip: remote.ip(),
                        bearer,
                    });
                    let resp = tower::Service::call(&mut rpc, req)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    Ok(complete_envelope(resp).await)
                }
            });
            let stopped = stop_handle.clone().shutdown();
            tokio::spawn(async move {
                if let Err(e) = serve_with_graceful_shutdown(sock, svc, stopped).await {
                    tracing::debug!("connection ended: {e}");
                }
            });
        }
    });
    Ok((addr, server_handle))
}
