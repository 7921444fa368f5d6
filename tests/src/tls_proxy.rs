//! TLS to the broker, for tests: certificates made by the test ([`TestPki`]: a CA, a broker certificate for
//! 127.0.0.1, a client certificate) and a TLS-terminating proxy ([`TlsProxy`]) in front of a broker that speaks
//! only plaintext (Tansu 0.6.0's own TLS options do not combine with the rest), with the broker advertising
//! the proxy's address so that every connection of a client goes through it. With `mutual` the proxy asks
//! for a client certificate signed by the CA and refuses connections without one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A CA and the certificates it signed, the client's also as PEM files.
pub struct TestPki {
    /// Holds the PEM files.
    dir: tempfile::TempDir,
    /// The CA's certificate.
    ca: CertificateDer<'static>,
    /// The broker's (the proxy's) certificate, for `127.0.0.1` and `localhost`.
    server_cert: CertificateDer<'static>,
    /// The broker's private key, PKCS#8.
    server_key: Vec<u8>,
}

impl TestPki {
    /// A fresh CA, a broker certificate and a client certificate, written as PEM files.
    pub fn new() -> anyhow::Result<Self> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "courier test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let server_key = KeyPair::generate()?;
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        server.distinguished_name.push(DnType::CommonName, "courier test broker");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &ca)?;

        let client_key = KeyPair::generate()?;
        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client.distinguished_name.push(DnType::CommonName, "courier test client");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &ca)?;

        let dir = tempfile::Builder::new().prefix("courier-pki-").tempdir()?;
        let ca_cert: &rcgen::Certificate = ca.as_ref();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem())?;
        std::fs::write(dir.path().join("client.pem"), client_cert.pem())?;
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem())?;
        Ok(Self {
            dir,
            ca: ca_cert.der().clone(),
            server_cert: server_cert.der().clone(),
            server_key: server_key.serialize_der(),
        })
    }

    /// The CA's certificate, PEM (for `kafka.tls.ca_location`).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The client's certificate, PEM (for `kafka.tls.certificate_location`).
    pub fn client_cert_path(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    /// The client's private key, PEM (for `kafka.tls.key_location`).
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }

    /// Where the PEM files are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A TLS-terminating TCP proxy on a loopback port: bound by [`TlsProxy::bind`] (so the broker can advertise
/// its port), forwarding once [`TlsProxy::forward_to`] names the broker. Stops when dropped.
pub struct TlsProxy {
    /// The proxy's port on 127.0.0.1.
    pub port: u16,
    /// The bound listener, until forwarding starts.
    listener: Option<TcpListener>,
    /// The TLS server side.
    acceptor: TlsAcceptor,
    /// The accept loop.
    task: Option<JoinHandle<()>>,
}

impl TlsProxy {
    /// Binds a free port with the broker certificate of `pki`; with `mutual`, clients must present a certificate
    /// signed by its CA.
    pub async fn bind(pki: &TestPki, mutual: bool) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            ServerConfig::builder_with_provider(Arc::clone(&provider)).with_safe_default_protocol_versions()?;
        let builder = if mutual {
            let mut roots = RootCertStore::empty();
            roots.add(pki.ca.clone())?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.clone()));
        let config = builder.with_single_cert(vec![pki.server_cert.clone()], key)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        Ok(Self { port, listener: Some(listener), acceptor: TlsAcceptor::from(Arc::new(config)), task: None })
    }

    /// Starts forwarding every connection, once its TLS handshake succeeded, to `upstream` (`host:port`).
    pub fn forward_to(&mut self, upstream: &str) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let (acceptor, upstream) = (self.acceptor.clone(), upstream.to_owned());
        self.task = Some(tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                tokio::spawn(async move {
                    let mut tls = match acceptor.accept(client).await {
                        Ok(tls) => tls,
                        Err(error) => {
                            tracing::info!(%error, "TLS proxy: handshake refused");
                            return;
                        }
                    };
                    let Ok(mut broker) = TcpStream::connect(&upstream).await else {
                        tracing::info!(%upstream, "TLS proxy: the broker does not answer");
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
                });
            }
        }));
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
