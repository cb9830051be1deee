//! The client side of the admin server's pinning: a rustls client configuration that presents a
//! keystore's certificate and trusts a server only when it shows one of the keystore's
//! certificates. It is what OpenWhisk's Ansible health check does with its `/ping` request (the
//! invoker's own keystore on both ends), as a [`rustls::ClientConfig`].

use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, ResolvesClientCert};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;

use super::pin::{Pins, pinned_signature_checks};
use super::{ALPN_HTTP1, Keystore, TlsError, provider};

/// Trusts a server whose certificate is pinned (no name or date check: see
/// [`super::PinnedClientCerts`] on why a pin is the whole trust).
#[derive(Debug)]
struct PinnedServerCert(Pins);

impl ServerCertVerifier for PinnedServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    pinned_signature_checks!();
}

/// Always presents one certificate (rustls' own resolver would parse it with WebPKI, which
/// refuses v1 certificates).
#[derive(Debug)]
struct Present(Arc<CertifiedKey>);

impl ResolvesClientCert for Present {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A client that trusts the servers showing one of `trusted`'s certificates and, when `identity`
/// is given, presents its key and certificate. http/1.1 by ALPN; TLS 1.2 and 1.3, or only
/// `versions` when given.
pub fn client_config(
    trusted: &Keystore,
    identity: Option<&Keystore>,
    versions: Option<&[&'static rustls::SupportedProtocolVersion]>,
) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let pins = trusted.pins(&provider)?;
    let rustls_error = |source| TlsError::Rustls {
        path: trusted.path.clone(),
        source,
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider));
    let builder = match versions {
        Some(versions) => builder.with_protocol_versions(versions),
        None => builder.with_safe_default_protocol_versions(),
    }
    .map_err(rustls_error)?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(PinnedServerCert(pins)));
    let mut config = match identity {
        Some(identity) => builder.with_client_cert_resolver(Arc::new(Present(Arc::new(
            identity.certified_key(&provider)?,
        )))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(config)
}
