//! Reaching the daemon: where its JSON-RPC is, one call per `governor.*` method, and failed
//! calls turned into operator-facing messages with hints by [`Endpoint::explain`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use tb_config::{Mode, Secret};

use crate::cli::{IntentsArgs, RpcArgs, TokenArgs, DEFAULT_RPC_URL, RPC_TOKEN_ENV, RPC_URL_ENV};
use crate::engine::{Gate, Intent};
use crate::rpc::{
    DecisionSummary, GovernorApiClient, JournalReceipt, SnapshotResult, Status, RATE_LIMITED,
    UNAUTHORIZED, UNKNOWN_EPOCH,
};

/// Shown after an `unauthorized` error.
const TOKEN_HINT: &str = "hint: pass --token or set TB_GOVERNOR_RPC_TOKEN; the daemon refuses \
                          mutating calls when no token is configured";

/// Where and how to reach the daemon, resolved from flags and the environment.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// The JSON-RPC URL: where to connect, and named in every error so the operator can check
    /// `--rpc`.
    pub(super) url: String,
    /// Per-request timeout, so a stuck daemon fails the command instead of hanging it.
    pub(super) timeout: Duration,
    /// Bearer token for mutating calls (never printed).
    pub(super) token: Option<Secret>,
    /// TLS settings for an `https://` URL: CA bundle, client certificate and key.
    pub(super) tls: TlsFiles,
}

/// The TLS files `tb-cli` uses, from flags or from the environment variables The Block's clients
/// read (`TB_RPC_TLS_*`, else `TB_HTTP_TLS_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TlsFiles {
    /// PEM CA bundle; `None` uses the system's roots.
    pub(super) ca: Option<PathBuf>,
    /// PEM client certificate chain.
    pub(super) cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub(super) key: Option<PathBuf>,
    /// Where the files came from, for errors (`--tls-*` or a variable prefix).
    pub(super) origin: String,
}

/// Prefixes of The Block's client TLS variables (`<PREFIX>_CA`, `_CERT`, `_KEY`), in order: the
/// first with any of them set is used.
const TLS_ENV_PREFIXES: [&str; 2] = ["TB_RPC_TLS", "TB_HTTP_TLS"];

impl TlsFiles {
    /// Flags first; with none given, the first prefix of [`TLS_ENV_PREFIXES`] that has any
    /// variable set.
    fn resolve(rpc: &RpcArgs, env: &dyn Fn(&str) -> Option<String>) -> TlsFiles {
        if rpc.tls_ca.is_some() || rpc.tls_cert.is_some() || rpc.tls_key.is_some() {
            return TlsFiles {
                ca: rpc.tls_ca.clone(),
                cert: rpc.tls_cert.clone(),
                key: rpc.tls_key.clone(),
                origin: "--tls-ca/--tls-cert/--tls-key".to_owned(),
            };
        }
        for prefix in TLS_ENV_PREFIXES {
            let get = |suffix: &str| env(&format!("{prefix}_{suffix}")).map(PathBuf::from);
            let files = TlsFiles {
                ca: get("CA"),
                cert: get("CERT"),
                key: get("KEY"),
                origin: format!("{prefix}_CA/_CERT/_KEY"),
            };
            if files.ca.is_some() || files.cert.is_some() || files.key.is_some() {
                return files;
            }
        }
        TlsFiles::default()
    }

    /// The rustls configuration, when any file is set.
    fn config(&self) -> Result<Option<jsonrpsee::http_client::CustomCertStore>> {
        let identity = match (&self.cert, &self.key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            _ => anyhow::bail!(
                "{}: a client certificate needs its key and a key its certificate",
                self.origin
            ),
        };
        if self.ca.is_none() && identity.is_none() {
            return Ok(None);
        }
        let tls = crate::tls::ClientTls {
            ca: self.ca.as_deref(),
            identity,
            server_name: None,
            origin: &self.origin,
        };
        tls.config().map(Some)
    }
}

impl Endpoint {
    /// Resolves `--rpc` (else `$TB_GOVERNOR_RPC_URL`, else the default) and, when `token` is
    /// given, `--token` (else `$TB_GOVERNOR_RPC_TOKEN`).
    pub(super) fn from_args(rpc: &RpcArgs, token: Option<&TokenArgs>) -> Endpoint {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let url = resolve_url(rpc.rpc.as_deref(), env(RPC_URL_ENV));
        let tls = TlsFiles::resolve(rpc, &env);
        let token = token.and_then(|t| {
            t.token
                .clone()
                .or_else(|| env(RPC_TOKEN_ENV).map(Secret::new))
        });
        Endpoint {
            url,
            timeout: Duration::from_secs(rpc.timeout),
            token,
            tls,
        }
    }

    /// An HTTP client for this endpoint, carrying `Authorization: Bearer …` when there is a
    /// token. Call inside the runtime.
    pub(super) fn client(&self) -> Result<HttpClient> {
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            // The error must not echo the value: it is a secret.
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    anyhow!("the RPC token contains characters an HTTP header cannot carry")
                })?;
            value.set_sensitive(true);
            headers.insert("authorization", value);
        }
        let mut builder = HttpClientBuilder::default()
            .request_timeout(self.timeout)
            .set_headers(headers);
        if let Some(config) = self.tls.config()? {
            builder = builder.with_custom_cert_store(config);
        }
        builder.build(&self.url).map_err(|err| {
            anyhow!(
                "invalid --rpc URL {:?}: {err} (expected e.g. {DEFAULT_RPC_URL})",
                self.url
            )
        })
    }

    /// Turns a failed call of `method` into an operator-facing error with a hint.
    pub(super) fn explain(&self, method: &str, err: ClientError) -> anyhow::Error {
        let url = &self.url;
        match err {
            ClientError::Call(obj) => {
                let server = server_said(obj.code(), obj.message(), obj.data().map(|d| d.get()));
                match obj.code() {
                    UNAUTHORIZED => anyhow!("{}", self.unauthorized(method, &server)),
                    RATE_LIMITED => anyhow!(
                        "rate limited: the governor at {url} refused {method} ({server}); \
                         retry in a second"
                    ),
                    UNKNOWN_EPOCH => anyhow!(
                        "unknown epoch: {server} (hint: `tb-cli governor decisions` lists the \
                         closed epochs)"
                    ),
                    -32601 => anyhow!(
                        "the governor at {url} does not know {method} ({server}); is tb-cli \
                         newer than the daemon?"
                    ),
                    -32602 => anyhow!("the governor rejected the parameters of {method}: {server}"),
                    _ => anyhow!("{method} failed: {server}"),
                }
            }
            ClientError::RequestTimeout => anyhow!(
                "the governor at {url} did not answer {method} within {} s (is it overloaded or \
                 stuck? retry, or raise --timeout)",
                self.timeout.as_secs()
            ),
            ClientError::ParseError(err) => anyhow::Error::new(err).context(format!(
                "the governor at {url} sent a {method} result tb-cli cannot read (are tb-cli and \
                 tb-governor the same version? check --rpc)"
            )),
            ClientError::Transport(err) => {
                use jsonrpsee::http_client::transport::Error as TransportError;
                if let Some(TransportError::Rejected { status_code }) = err.downcast_ref() {
                    let status = *status_code;
                    return match status {
                        401 | 403 => {
                            anyhow!("{}", self.unauthorized(method, &format!("HTTP {status}")))
                        }
                        429 => anyhow!(
                            "rate limited: the governor at {url} refused {method} (HTTP 429); \
                             retry in a second"
                        ),
                        _ => anyhow!(
                            "the server at {url} answered {method} with HTTP {status} (is --rpc \
                             the governor's RPC address?)"
                        ),
                    };
                }
                let what = if is_connection_refused(&*err) {
                    "connection refused"
                } else {
                    "request failed"
                };
                anyhow::Error::from_boxed(err).context(format!(
                    "cannot reach the governor at {url}: {what} (is `tb-governor run` running? \
                     check --rpc)"
                ))
            }
            other => anyhow::Error::new(other)
                .context(format!("{method} to the governor at {url} failed")),
        }
    }

    fn unauthorized(&self, method: &str, server: &str) -> String {
        let given = if self.token.is_some() {
            "the token was not accepted"
        } else {
            "no token was given"
        };
        format!("unauthorized: the governor refused {method}: {given} ({server}) ({TOKEN_HINT})")
    }
}

/// `--rpc` if given, else the environment's URL, else [`DEFAULT_RPC_URL`].
fn resolve_url(flag: Option<&str>, env: Option<String>) -> String {
    flag.map(str::to_owned)
        .or(env)
        .unwrap_or_else(|| DEFAULT_RPC_URL.to_owned())
}

fn server_said(code: i32, message: &str, data: Option<&str>) -> String {
    match data {
        Some(data) => format!("server said: {message} [{data}], code {code}"),
        None => format!("server said: {message}, code {code}"),
    }
}

/// Whether an I/O "connection refused" is somewhere in the error's source chain.
fn is_connection_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        current = e.source();
    }
    false
}

/// Calls `governor.status`.
pub(super) async fn fetch_status(endpoint: &Endpoint) -> Result<Status> {
    let client = endpoint.client()?;
    client
        .status()
        .await
        .map_err(|e| endpoint.explain("governor.status", e))
}

/// Calls `governor.intents` with the command's filters.
pub(super) async fn fetch_intents(endpoint: &Endpoint, args: &IntentsArgs) -> Result<Vec<Intent>> {
    let client = endpoint.client()?;
    let result = client
        .intents(args.gate, args.state, args.limit, args.before_epoch)
        .await
        .map_err(|e| endpoint.explain("governor.intents", e))?;
    Ok(result.intents)
}

/// Calls `governor.decisions`.
pub(super) async fn fetch_decisions(
    endpoint: &Endpoint,
    from_epoch: Option<u64>,
    limit: Option<u32>,
) -> Result<Vec<DecisionSummary>> {
    let client = endpoint.client()?;
    let result = client
        .decisions(from_epoch, limit)
        .await
        .map_err(|e| endpoint.explain("governor.decisions", e))?;
    Ok(result.decisions)
}

/// Calls `governor.snapshot`.
pub(super) async fn fetch_snapshot(endpoint: &Endpoint, epoch: u64) -> Result<SnapshotResult> {
    let client = endpoint.client()?;
    client
        .snapshot(epoch)
        .await
        .map_err(|e| endpoint.explain("governor.snapshot", e))
}

/// Calls `governor.submit_exit`.
pub(super) async fn submit_exit(
    endpoint: &Endpoint,
    gate: Gate,
    reason: &str,
    operator: &str,
) -> Result<JournalReceipt> {
    let client = endpoint.client()?;
    client
        .submit_exit(gate, reason.to_owned(), operator.to_owned())
        .await
        .map_err(|e| endpoint.explain("governor.submit_exit", e))
}

/// Calls `governor.set_mode`.
pub(super) async fn set_mode(
    endpoint: &Endpoint,
    mode: Mode,
    reason: &str,
    operator: &str,
) -> Result<JournalReceipt> {
    let client = endpoint.client()?;
    client
        .set_mode(mode, reason.to_owned(), operator.to_owned())
        .await
        .map_err(|e| endpoint.explain("governor.set_mode", e))
}

/// Calls `governor.ack_peer`.
pub(super) async fn ack_peer(
    endpoint: &Endpoint,
    peer: &str,
    reason: &str,
    operator: &str,
) -> Result<JournalReceipt> {
    let client = endpoint.client()?;
    client
        .ack_peer(peer.to_owned(), reason.to_owned(), operator.to_owned())
        .await
        .map_err(|e| endpoint.explain("governor.ack_peer", e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use jsonrpsee::core::{async_trait, RpcResult};
    use jsonrpsee::types::ErrorObjectOwned;

    use super::super::block_on;
    use super::super::fixtures::{intent, snapshot_result, status};
    use super::*;
    use crate::engine::IntentState;
    use crate::rpc::{DecisionsResult, GovernorApiServer, IntentsResult};

    #[test]
    fn url_resolution() {
        assert_eq!(resolve_url(None, None), DEFAULT_RPC_URL);
        assert_eq!(resolve_url(None, Some("http://h:1".into())), "http://h:1");
        assert_eq!(
            resolve_url(Some("http://f:2"), Some("http://h:1".into())),
            "http://f:2"
        );
    }

    #[test]
    fn tls_files_come_from_flags_else_the_first_prefix_with_a_variable() {
        let args = |ca: Option<&str>| RpcArgs {
            rpc: None,
            json: false,
            timeout: 10,
            tls_ca: ca.map(PathBuf::from),
            tls_cert: None,
            tls_key: None,
        };
        let env = |name: &str| match name {
            "TB_RPC_TLS_CERT" => Some("rpc.crt".to_owned()),
            "TB_HTTP_TLS_CA" => Some("http-ca.crt".to_owned()),
            _ => None,
        };
        let flags = TlsFiles::resolve(&args(Some("flag-ca.crt")), &env);
        assert_eq!(flags.ca, Some(PathBuf::from("flag-ca.crt")));
        assert_eq!(flags.cert, None);
        let from_env = TlsFiles::resolve(&args(None), &env);
        assert_eq!(from_env.cert, Some(PathBuf::from("rpc.crt")));
        assert_eq!(from_env.ca, None, "TB_HTTP_TLS_* is not mixed in");
        let e = from_env.config().unwrap_err().to_string();
        assert!(
            e.contains("TB_RPC_TLS") && e.contains("needs its key"),
            "{e}"
        );
        assert_eq!(
            TlsFiles::resolve(&args(None), &|_: &str| None),
            TlsFiles::default()
        );
        let fallback = TlsFiles::resolve(&args(None), &|n: &str| {
            (n == "TB_HTTP_TLS_CA").then(|| "http-ca.crt".to_owned())
        });
        assert_eq!(fallback.ca, Some(PathBuf::from("http-ca.crt")));
    }

    // --- Against a real jsonrpsee server ------------------------------------------------------

    struct Mock;

    fn err(code: i32, message: &str) -> ErrorObjectOwned {
        ErrorObjectOwned::owned(code, message.to_owned(), None::<()>)
    }

    #[async_trait]
    impl GovernorApiServer for Mock {
        async fn status(&self) -> RpcResult<Status> {
            Ok(status())
        }
        async fn intents(
            &self,
            gate: Option<Gate>,
            state: Option<IntentState>,
            limit: Option<u32>,
            before_epoch: Option<u64>,
        ) -> RpcResult<IntentsResult> {
            // Echo the filters back through the intent so the test can see them.
            let mut i = intent(gate.unwrap_or(Gate::Economics), before_epoch.unwrap_or(1));
            i.state = state.unwrap_or(IntentState::Applied);
            i.reason = format!("limit {limit:?}");
            Ok(IntentsResult { intents: vec![i] })
        }
        async fn decisions(
            &self,
            _from_epoch: Option<u64>,
            _limit: Option<u32>,
        ) -> RpcResult<DecisionsResult> {
            Err(err(RATE_LIMITED, "too many requests"))
        }
        async fn snapshot(&self, epoch: u64) -> RpcResult<SnapshotResult> {
            if epoch == 3 {
                Ok(snapshot_result())
            } else {
                Err(err(UNKNOWN_EPOCH, "no decision for epoch 99"))
            }
        }
        async fn submit_exit(
            &self,
            _gate: Gate,
            _reason: String,
            _operator: String,
        ) -> RpcResult<JournalReceipt> {
            Err(err(UNAUTHORIZED, "unauthorized"))
        }
        async fn set_mode(
            &self,
            _mode: Mode,
            _reason: String,
            _operator: String,
        ) -> RpcResult<JournalReceipt> {
            Ok(JournalReceipt {
                seq: 7,
                effective_epoch: 12,
            })
        }
        async fn ack_peer(
            &self,
            _peer: String,
            _reason: String,
            _operator: String,
        ) -> RpcResult<JournalReceipt> {
            Err(err(UNAUTHORIZED, "unauthorized"))
        }
    }

    fn endpoint(url: String, token: Option<&str>) -> Endpoint {
        Endpoint {
            url,
            timeout: Duration::from_secs(5),
            token: token.map(Secret::new),
            tls: TlsFiles::default(),
        }
    }

    #[test]
    fn calls_a_server_and_explains_its_errors() {
        block_on(async {
            let server = jsonrpsee::server::Server::builder()
                .build("127.0.0.1:0")
                .await
                .unwrap();
            let url = format!("http://{}", server.local_addr().unwrap());
            let handle = server.start(Mock.into_rpc());
            let ep = endpoint(url.clone(), None);

            assert_eq!(fetch_status(&ep).await.unwrap(), status());

            let args = IntentsArgs {
                gate: Some(Gate::Storage),
                state: Some(IntentState::Superseded),
                limit: Some(5),
                before_epoch: Some(8),
                rpc: RpcArgs {
                    rpc: None,
                    json: false,
                    timeout: 5,
                    tls_ca: None,
                    tls_cert: None,
                    tls_key: None,
                },
            };
            let got = fetch_intents(&ep, &args).await.unwrap();
            assert_eq!(got[0].gate, Gate::Storage);
            assert_eq!(got[0].state, IntentState::Superseded);
            assert_eq!(got[0].created_epoch, 8);
            assert_eq!(got[0].reason, "limit Some(5)");

            assert_eq!(fetch_snapshot(&ep, 3).await.unwrap(), snapshot_result());
            let e = fetch_snapshot(&ep, 99).await.unwrap_err().to_string();
            assert!(e.starts_with("unknown epoch"), "{e}");

            let e = fetch_decisions(&ep, None, None)
                .await
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("rate limited") && e.contains("retry in a second"),
                "{e}"
            );

            let e = submit_exit(&ep, Gate::Compute, "r", "o")
                .await
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("unauthorized"), "{e}");
            assert!(e.contains("no token was given"), "{e}");
            assert!(
                e.contains("hint: pass --token or set TB_GOVERNOR_RPC_TOKEN"),
                "{e}"
            );

            let secret = "s3cr3t-token-value";
            let ep_tok = endpoint(url.clone(), Some(secret));
            let e = submit_exit(&ep_tok, Gate::Compute, "r", "o")
                .await
                .unwrap_err();
            let shown = format!("{e:?} {e:#}");
            assert!(shown.contains("the token was not accepted"), "{shown}");
            assert!(!shown.contains(secret), "the token must never be printed");
            assert!(!format!("{ep_tok:?}").contains(secret));

            let receipt = set_mode(&ep_tok, Mode::Apply, "r", "o").await.unwrap();
            assert_eq!(receipt.seq, 7);

            handle.stop().unwrap();
        })
        .unwrap();
    }

    #[test]
    fn connection_refused_names_the_url() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}");
        let e = block_on(fetch_status(&endpoint(url.clone(), None)))
            .unwrap()
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("cannot reach the governor at {url}")),
            "{msg}"
        );
        assert!(msg.contains("connection refused"), "{e:#}");
        assert!(msg.contains("tb-governor run"), "{msg}");
    }

    #[test]
    fn a_bad_url_is_explained() {
        let e = endpoint("not a url".to_owned(), None).client().unwrap_err();
        assert!(e.to_string().contains("invalid --rpc URL"), "{e}");
    }
}
