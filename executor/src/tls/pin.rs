//! Trust by pinning: a peer is trusted when its certificate is byte for byte one of a given set,
//! and its handshake signature verifies with that certificate's public key.
//!
//! [`Pins`] is the check itself; [`PinnedClientCerts`] is the server's client-certificate
//! verifier built on it, and [`super::client`] the client's server-certificate verifier.

use std::path::Path;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::{TlsError, spki_and_subject};

/// One pinned certificate: its DER and its public key.
#[derive(Debug)]
struct Pinned {
    der: Vec<u8>,
    spki: SubjectPublicKeyInfoDer<'static>,
}

/// A set of pinned certificates and the signature algorithms their handshake signatures may use.
#[derive(Debug)]
pub struct Pins {
    pinned: Vec<Pinned>,
    subjects: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pins {
    /// Pins `certificates` (from the keystore at `path`, for errors); signatures are checked with
    /// `algorithms`. An empty set is refused: it would trust nobody, silently.
    pub fn new(
        path: &Path,
        certificates: &[CertificateDer<'_>],
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Result<Self, TlsError> {
        let mut pinned = Vec::new();
        let mut subjects = Vec::new();
        for cert in certificates {
            let (spki, subject) = spki_and_subject(path, cert)?;
            pinned.push(Pinned {
                der: cert.as_ref().to_vec(),
                spki,
            });
            subjects.push(DistinguishedName::from(subject));
        }
        if pinned.is_empty() {
            return Err(TlsError::NoKey {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            pinned,
            subjects,
            algorithms,
        })
    }

    /// The pinned certificates' subjects (the server's hint to clients).
    pub fn subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }

    fn pinned(&self, cert: &CertificateDer<'_>) -> Result<&Pinned, rustls::Error> {
        self.pinned
            .iter()
            .find(|pinned| pinned.der == cert.as_ref())
            .ok_or(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
    }

    /// Whether `cert` is one of the pinned certificates.
    pub fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        self.pinned(cert).map(|_| ())
    }

    /// A TLS 1.2 handshake signature by `cert`'s key.
    pub fn verify_tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let pinned = self.pinned(cert)?;
        let key = webpki::RawPublicKeyEntity::try_from(&pinned.spki).map_err(bad_signature)?;
        // In TLS 1.2 an ECDSA scheme does not name its curve, so every algorithm of the scheme
        // is tried; the key's own algorithm identifier rules out the others.
        let algorithms = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algorithms)| *algorithms)
            .ok_or(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ))?;
        for algorithm in algorithms {
            match key.verify_signature(*algorithm, message, dss.signature()) {
                Ok(()) => return Ok(HandshakeSignatureValid::assertion()),
                Err(webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_)) => {}
                Err(error) => return Err(bad_signature(error)),
            }
        }
        Err(rustls::Error::InvalidCertificate(
            CertificateError::BadSignature,
        ))
    }

    /// A TLS 1.3 handshake signature by `cert`'s key.
    pub fn verify_tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let pinned = self.pinned(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &pinned.spki,
            dss,
            &self.algorithms,
        )
    }

    /// The signature schemes the algorithms cover.
    pub fn schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The three signature methods of a verifier built on [`Pins`] (its field `.0`): rustls declares
/// them alike on its server-certificate and client-certificate verifier traits, and both sides of
/// the pinning answer them the same way, from the pinned certificate's key.
macro_rules! pinned_signature_checks {
    () => {
        pinned_signature_checks!(@handshake verify_tls12_signature, verify_tls12);
        pinned_signature_checks!(@handshake verify_tls13_signature, verify_tls13);

        fn supported_verify_schemes(&self) -> Vec<::rustls::SignatureScheme> {
            self.0.schemes()
        }
    };
    // One TLS version's handshake-signature method, answered by the `Pins` check of that version.
    (@handshake $method:ident, $check:ident) => {
        fn $method(
            &self,
            message: &[u8],
            cert: &::rustls::pki_types::CertificateDer<'_>,
            dss: &::rustls::DigitallySignedStruct,
        ) -> Result<::rustls::client::danger::HandshakeSignatureValid, ::rustls::Error> {
            self.0.$check(message, cert, dss)
        }
    };
}
pub(crate) use pinned_signature_checks;

/// Any signature failure as rustls' one error for it.
fn bad_signature(_: webpki::Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::BadSignature)
}

/// A client certificate verifier that accepts exactly the given certificates ([`Pins`]).
///
/// This is how OpenWhisk's invoker reads the same setting: its keystore is its truststore too.
///
/// Validity dates are not checked: a pinned certificate is the operator's own, placed in the
/// keystore by the operator, so trust comes from the pin (the exact bytes), not from a CA's
/// statement about a period. `genssl.sh` makes 365-day certificates; a date check would shut the
/// deployment's own health check out a year after the keys were made while protecting nothing a
/// pin does not (a leaked key is as usable the day before its certificate lapses).
#[derive(Debug)]
pub struct PinnedClientCerts(Pins);

impl PinnedClientCerts {
    /// The verifier that accepts exactly `pins`.
    pub fn new(pins: Pins) -> Self {
        Self(pins)
    }
}

impl ClientCertVerifier for PinnedClientCerts {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // No date check: see the type's documentation.
        self.0.check(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    pinned_signature_checks!();
}
