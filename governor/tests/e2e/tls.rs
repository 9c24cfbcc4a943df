//! TLS on the listener, against the real daemon, with certificates made here (rcgen): the right
//! CA is accepted and a wrong one refused, mutual TLS refuses a client without a certificate, a
//! stalled handshake is cut at its time limit while holding a connection slot, a certificate
//! rotated on disk is served after SIGHUP, a bad file refuses the start or the reload with the
//! file named; and mutating methods over plain HTTP from a non-loopback address are refused.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::support::{http_request, run, simulate, wait_until, Config, Daemon, DEADLINE};

/// A CA made for one test.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate and its key, as DER and PEM.
struct Leaf {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
    key_der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf for `localhost`, for a server (`client = false`) or a client.
    fn leaf(&self, name: &str, client: bool) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        roots
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting `ca`, presenting `identity` if given.
fn client(ca: &Ca, identity: Option<&Leaf>) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(ca.roots());
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
            )
            .unwrap(),
    };
    Arc::new(config)
}

/// `GET path` over TLS: the served leaf certificate and the response text, or the error.
fn get(addr: &str, config: Arc<ClientConfig>, path: &str) -> Result<(Vec<u8>, String), String> {
    let sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut tls = StreamOwned::new(conn, sock);
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        // A server that closes without close_notify after answering: the answer counts.
        Err(e) if e.kind() == ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let leaf = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&out).into_owned();
    if text.starts_with("HTTP/1.1 ") {
        Ok((leaf, text))
    } else {
        Err(format!("no HTTP answer: {text:?}"))
    }
}

/// A data dir with a one-epoch chain, the server's certificate files and a config with
/// `[rpc] rpc_extra` then `[rpc.tls]` with `tls_extra`.
struct Fixture {
    dir: PathBuf,
    config: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Fixture {
    fn new(server: &Leaf, rpc_extra: &str, tls_extra: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        simulate(&dir, "healthy", 1, 20);
        write_leaf(&dir, server);
        let config = Config::new(&dir, 20)
            .chain(&dir.join("sim/chain"))
            .rpc_extra(&format!(
                "{rpc_extra}\n[rpc.tls]\ncert = \"server.crt\"\nkey = \"server.key\"\n{tls_extra}"
            ))
            .write(&dir.join("gov.toml"));
        Fixture {
            dir,
            config,
            _tmp: tmp,
        }
    }

    fn start(&self) -> Daemon {
        Daemon::start(&self.config, &self.dir.join("stderr.log"))
    }
}

fn write_leaf(dir: &Path, leaf: &Leaf) {
    std::fs::write(dir.join("server.crt"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), &leaf.key_pem).unwrap();
}

#[test]
fn handshake_succeeds_with_the_right_ca_and_fails_with_a_wrong_one() {
    let ca = Ca::new("governor test CA");
    let other = Ca::new("some other CA");
    let server = ca.leaf("governor", false);
    let fx = Fixture::new(&server, "", "");
    let d = fx.start();
    assert!(d.url.starts_with("https://"), "{}", d.url);

    let (leaf, text) = get(&d.addr, client(&ca, None), "/healthz").unwrap();
    assert_eq!(leaf, server.der.to_vec());
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("ok\n"),
        "{text}"
    );
    let (_, metrics) = get(&d.addr, client(&ca, None), "/metrics").unwrap();
    assert!(metrics.contains("governor_"), "{metrics}");

    let err = get(&d.addr, client(&other, None), "/healthz").unwrap_err();
    assert!(
        err.contains("UnknownIssuer") || err.contains("certificate"),
        "{err}"
    );
    // The port speaks only TLS: a plain HTTP request gets no HTTP answer.
    let plain = http_request(&d.addr, "GET", "/healthz", &[], b"");
    assert!(
        plain.as_ref().map_or(true, |r| r.status != 200),
        "plain HTTP was answered: {plain:?}"
    );
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate() {
    let ca = Ca::new("governor test CA");
    let clients = Ca::new("clients CA");
    let server = ca.leaf("governor", false);
    let fx = Fixture::new(&server, "", "client_ca = \"clients.crt\"");
    std::fs::write(fx.dir.join("clients.crt"), clients.pem()).unwrap();
    let d = fx.start();

    let err = get(&d.addr, client(&ca, None), "/healthz").unwrap_err();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let stranger = Ca::new("stranger CA").leaf("stranger", true);
    assert!(get(&d.addr, client(&ca, Some(&stranger)), "/healthz").is_err());
    let known = clients.leaf("operator", true);
    let (_, text) = get(&d.addr, client(&ca, Some(&known)), "/healthz").unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[test]
fn a_stalled_handshake_holds_a_slot_until_its_time_limit() {
    let ca = Ca::new("governor test CA");
    let server = ca.leaf("governor", false);
    let fx = Fixture::new(&server, "max_connections = 1", "handshake_timeout_ms = 700");
    let d = fx.start();

    // A client that connects and never sends its hello holds the only slot...
    let mut stalled = TcpStream::connect(&d.addr).unwrap();
    stalled.set_read_timeout(Some(DEADLINE)).unwrap();
    let started = Instant::now();
    // ...so a second connection is answered 503 in plain text, the way the cap always answers.
    let busy = http_request(&d.addr, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(busy.status, 503, "{busy:?}");
    // The stalled one is closed at the time limit, not before and not never.
    let mut buf = [0u8; 16];
    let read = stalled.read(&mut buf);
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() != ErrorKind::WouldBlock),
        "{read:?}"
    );
    assert!(
        waited >= Duration::from_millis(500),
        "closed after {waited:?}"
    );
    assert!(waited < DEADLINE, "not closed within {DEADLINE:?}");
    // The slot is free again.
    wait_until(
        "the slot to be free",
        DEADLINE,
        || get(&d.addr, client(&ca, None), "/healthz").ok(),
        || d.stderr(),
    );
}

#[test]
fn a_rotated_certificate_is_served_after_sighup_and_a_bad_one_is_refused() {
    let ca = Ca::new("governor test CA");
    let first = ca.leaf("governor-2025", false);
    let second = ca.leaf("governor-2026", false);
    let fx = Fixture::new(&first, "", "");
    let mut d = fx.start();
    let pid = d.pid();
    let served = || {
        get(&d.addr, client(&ca, None), "/healthz")
            .ok()
            .map(|(l, _)| l)
    };
    assert_eq!(served(), Some(first.der.to_vec()));

    write_leaf(&fx.dir, &second);
    d.signal("HUP");
    wait_until(
        "the rotated certificate to be served",
        DEADLINE,
        || served().filter(|l| *l == second.der.to_vec()),
        || d.stderr(),
    );

    // A broken file refuses the reload, names the file, and the certificate served stays.
    std::fs::write(fx.dir.join("server.crt"), "not a certificate\n").unwrap();
    d.signal("HUP");
    wait_until(
        "the refused reload to be logged",
        DEADLINE,
        || d.stderr().contains("server.crt").then_some(()),
        || d.stderr(),
    );
    assert_eq!(served(), Some(second.der.to_vec()));
    assert!(d.alive());
    assert_eq!(d.pid(), pid);
}

#[test]
fn a_bad_certificate_file_refuses_the_start_naming_it() {
    let ca = Ca::new("governor test CA");
    let server = ca.leaf("governor", false);
    let fx = Fixture::new(&server, "", "");
    std::fs::remove_file(fx.dir.join("server.key")).unwrap();
    let r = run(
        "tb-governor",
        &["run", "--config", fx.config.to_str().unwrap()],
        &fx.dir,
        &[],
    );
    assert_ne!(r.code, Some(0));
    assert!(
        r.stderr.contains("rpc.tls.key") && r.stderr.contains("server.key"),
        "{}",
        r.stderr
    );
}

/// A non-loopback address of this machine: the source address of a route to a documentation
/// address (nothing is sent).
fn non_loopback_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn a_token_over_plain_http_from_a_non_loopback_address_is_refused() {
    // The daemon listens on every address and the client connects to this machine's own
    // non-loopback address, so the daemon sees a non-loopback peer (127.0.0.2 would not do:
    // all of 127.0.0.0/8 is loopback).
    let Some(ip) = non_loopback_address() else {
        panic!("this test needs a non-loopback IPv4 address on the machine");
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    simulate(dir, "healthy", 1, 20);
    let config = Config::new(dir, 20)
        .chain(&dir.join("sim/chain"))
        .rpc_extra("token = \"sesame\"")
        .write(&dir.join("gov.toml"));
    let d = Daemon::start_with_env(
        &config,
        &dir.join("stderr.log"),
        &[("TB_GOVERNOR_RPC_LISTEN", "0.0.0.0:0")],
    );
    let port = d.addr.rsplit_once(':').unwrap().1;
    let call = |addr: &str| {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"governor.ack_peer","params":{"url":"http://nowhere:1"}}"#;
        http_request(
            addr,
            "POST",
            "/",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer sesame"),
            ],
            body.as_bytes(),
        )
        .unwrap()
        .json()
    };
    let remote = call(&format!("{ip}:{port}"));
    let msg = remote["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("plain HTTP"), "{remote}");
    // The same call from loopback passes the check (and is judged on its merits).
    let local = call(&format!("127.0.0.1:{port}"));
    let msg = local["error"]["message"].as_str().unwrap_or_default();
    assert!(!msg.contains("plain HTTP"), "{local}");
    // Reads are not affected.
    let status = http_request(&format!("{ip}:{port}"), "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(status.status, 200);
}

#[test]
fn tb_cli_speaks_https_with_flags_and_the_block_s_variables() {
    let ca = Ca::new("governor test CA");
    let clients = Ca::new("clients CA");
    let server = ca.leaf("governor", false);
    let fx = Fixture::new(&server, "", "client_ca = \"clients.crt\"");
    std::fs::write(fx.dir.join("clients.crt"), clients.pem()).unwrap();
    std::fs::write(fx.dir.join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(fx.dir.join("wrong-ca.crt"), Ca::new("other").pem()).unwrap();
    let operator = clients.leaf("operator", true);
    std::fs::write(fx.dir.join("op.crt"), &operator.cert_pem).unwrap();
    std::fs::write(fx.dir.join("op.key"), &operator.key_pem).unwrap();
    let d = fx.start();
    let port = d.addr.rsplit_once(':').unwrap().1;
    let url = format!("https://localhost:{port}");
    let status = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["governor", "status", "--json", "--rpc", &url];
        args.extend_from_slice(extra);
        run("tb-cli", &args, &fx.dir, env)
    };

    let r = status(
        &[
            "--tls-ca",
            "ca.crt",
            "--tls-cert",
            "op.crt",
            "--tls-key",
            "op.key",
        ],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("last_closed_epoch"), "{}", r.stdout);

    let block_env = [
        ("TB_RPC_TLS_CA", "ca.crt"),
        ("TB_RPC_TLS_CERT", "op.crt"),
        ("TB_RPC_TLS_KEY", "op.key"),
    ];
    let r = status(&[], &block_env);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let http_env = [
        ("TB_HTTP_TLS_CA", "ca.crt"),
        ("TB_HTTP_TLS_CERT", "op.crt"),
        ("TB_HTTP_TLS_KEY", "op.key"),
    ];
    assert_eq!(status(&[], &http_env).code, Some(0));

    // Without a client certificate, or trusting the wrong CA, the call fails.
    assert_ne!(status(&["--tls-ca", "ca.crt"], &[]).code, Some(0));
    let wrong = [
        ("TB_RPC_TLS_CA", "wrong-ca.crt"),
        ("TB_RPC_TLS_CERT", "op.crt"),
        ("TB_RPC_TLS_KEY", "op.key"),
    ];
    assert_ne!(status(&[], &wrong).code, Some(0));
    // A certificate without its key is refused before connecting, naming the variables.
    let r = status(&[], &[("TB_RPC_TLS_CERT", "op.crt")]);
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("TB_RPC_TLS"), "{}", r.stderr);
}

#[test]
fn a_peer_over_https_is_compared_with_its_ca_client_certificate_and_pinned_name() {
    let ca = Ca::new("fleet ca");
    // b serves TLS with a certificate for "localhost" and requires a client certificate.
    let b_fx = Fixture::new(&ca.leaf("b", false), "", "client_ca = \"ca.crt\"");
    std::fs::write(b_fx.dir.join("ca.crt"), ca.pem()).unwrap();
    let b = b_fx.start();
    assert!(b.url.starts_with("https://127.0.0.1:"), "{}", b.url);

    // a polls b over https://127.0.0.1:…, which is not the certificate's name: the pinned
    // server name makes it acceptable; a's client certificate satisfies b's mutual TLS.
    let dir = &b_fx.dir;
    let a_leaf = ca.leaf("a", true);
    std::fs::write(dir.join("a.crt"), &a_leaf.cert_pem).unwrap();
    std::fs::write(dir.join("a.key"), &a_leaf.key_pem).unwrap();
    let other = Ca::new("some other ca");
    std::fs::write(dir.join("other.crt"), other.pem()).unwrap();
    let peer_config = |name: &str, ca_file: &str, server_name: &str| {
        Config::new(dir, 20)
            .chain(&dir.join("sim/chain"))
            .data(&dir.join(format!("data-{name}")))
            .rpc_extra(&format!(
                "[peers]\nurls = [{url:?}]\npoll_ms = 200\n\
                 [peers.tls.{url:?}]\nca = {ca_file:?}\ncert = \"a.crt\"\nkey = \"a.key\"\n\
                 server_name = {server_name:?}",
                url = b.url
            ))
            .write(&dir.join(format!("{name}.toml")))
    };
    let a = Daemon::start(&peer_config("a", "ca.crt", "localhost"), &dir.join("a.log"));
    let st = a.wait_status("a to agree with b over TLS", |s| {
        s["peers"][0]["state"] == "agree" && s["peers"][0]["agreed_through"] == 0
    });
    assert_eq!(st["peers"][0]["url"], b.url.as_str());

    // The wrong CA, or a name the certificate does not carry: unreachable, never agree.
    for (name, ca_file, server_name) in [
        ("w1", "other.crt", "localhost"),
        ("w2", "ca.crt", "elsewhere"),
    ] {
        let w = Daemon::start(
            &peer_config(name, ca_file, server_name),
            &dir.join(format!("{name}.log")),
        );
        let st = w.wait_status("the peer to be unreachable", |s| {
            s["peers"][0]["state"] == "unreachable"
        });
        let error = st["peers"][0]["error"].as_str().unwrap();
        assert!(error.contains("governor.status"), "{name}: {error}");
        assert!(st["peers"][0]["agreed_through"].is_null(), "{name}: {st:#}");
    }
}
