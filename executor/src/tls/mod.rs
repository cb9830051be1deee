//! The admin server's https: OpenWhisk's PKCS12 keystore turned into a rustls server
//! configuration ([`load_acceptor`]), with client certificates pinned to that keystore
//! ([`PinnedClientCerts`]).
//!
//! OpenWhisk's deployment gives its invoker one keystore (`CONFIG_whisk_invoker_https_keystorePath`,
//! made by its `genssl.sh`): a key and a self-signed certificate. The invoker serves with that key
//! and, with `clientAuth=true`, demands a client certificate; the deployment's own health check
//! presents the very same certificate and key. So "trusted" here means *byte-identical to a
//! certificate of the keystore*, which is also the only sensible reading of a keystore that holds
//! no CA.
//!
//! Why a verifier of our own rather than rustls' WebPKI one: `genssl.sh` makes its certificate with
//! `openssl x509 -req -signkey`, which (OpenSSL 3 included) writes an X.509 **v1** certificate
//! without extensions, and WebPKI refuses to parse v1 certificates as end entities. Pinning needs no
//! path building anyway: the certificate is compared byte for byte, and the handshake signature is
//! checked with the public key taken from the pinned certificate (parsed with `x509-parser`,
//! verified with the ring provider's algorithms through `rustls-webpki`'s raw public key type).
//! The server's own certificate is handed to rustls the same way, without WebPKI parsing it.
//!
//! The modules: this one reads the keystore and builds the server's configuration; [`pin`] holds
//! the pinning verifier; [`client`] is the client side of the same pinning (what OpenWhisk's
//! Ansible `/ping` does with curl: present the keystore's certificate, trust only its
//! certificates), used by the tests and by anyone probing a node from Rust.
//!
//! Everything runs on ring: no OpenSSL, no aws-lc. The keystore is read when the server starts;
//! every failure is a [`TlsError`] naming the keystore's path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer,
};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoClientAuth, ServerConfig};
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use tokio_rustls::TlsAcceptor;

pub mod client;
pub mod pin;

pub use pin::PinnedClientCerts;

/// The only keystore flavor read (`CONFIG_whisk_invoker_https_keystoreFlavor`): OpenWhisk's
/// deployment makes PKCS12 keystores; JKS is Java's own format.
pub const KEYSTORE_FLAVOR_PKCS12: &str = "PKCS12";

/// Largest keystore file read: a key and a short chain take a few kB, so anything past this is not
/// a keystore, and the bound keeps a wrong path (a log file, a device) from being read whole.
pub const MAX_KEYSTORE_BYTES: u64 = 1024 * 1024;

/// The protocol the admin server speaks inside TLS, offered by ALPN.
pub(crate) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why the keystore cannot serve https. Every variant names the keystore's path.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read the https keystore {path}: {source}")]
    Read {
        /// The keystore.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than any keystore ([`MAX_KEYSTORE_BYTES`]).
    #[error(
        "the https keystore {path} is {size} bytes, more than any keystore ({MAX_KEYSTORE_BYTES})"
    )]
    TooLarge {
        /// The keystore.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file is not a PKCS12 keystore.
    #[error("the https keystore {path} is not a PKCS12 keystore: {reason}")]
    NotPkcs12 {
        /// The keystore.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The password does not open the keystore (its integrity check fails).
    #[error(
        "wrong password for the https keystore {path} (CONFIG_whisk_invoker_https_keystorePassword)"
    )]
    WrongPassword {
        /// The keystore.
        path: PathBuf,
    },
    /// The keystore is protected with a scheme the parser does not implement.
    #[error("the https keystore {path} uses an unsupported protection scheme: {reason}")]
    Unsupported {
        /// The keystore.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The keystore holds no private key with its certificate.
    #[error("the https keystore {path} holds no private key with a certificate")]
    NoKey {
        /// The keystore.
        path: PathBuf,
    },
    /// A certificate of the keystore cannot be parsed.
    #[error("the https keystore {path} holds a certificate that cannot be parsed: {reason}")]
    Certificate {
        /// The keystore.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The private key is not the key of the first certificate.
    #[error("the https keystore {path}: the private key does not match its certificate")]
    KeyMismatch {
        /// The keystore.
        path: PathBuf,
    },
    /// rustls refused the key or the configuration.
    #[error("the https keystore {path} cannot be used by TLS: {source}")]
    Rustls {
        /// The keystore.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
}

/// What the server needs of a keystore: its key, the key's certificate chain (end entity first),
/// and every certificate it holds (the pinned client certificates).
#[derive(Debug)]
pub struct Keystore {
    /// Where it was read from, for errors.
    pub path: PathBuf,
    /// The private key, PKCS#8.
    pub key: PrivateKeyDer<'static>,
    /// The key's chain, end entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Every certificate of the keystore: the chain and trusted certificate entries.
    pub certificates: Vec<CertificateDer<'static>>,
}

impl Keystore {
    /// Parses the PKCS12 `bytes` (read from `path`) with `password`. Reads OpenSSL 3's default
    /// protection (PBES2 with AES-256-CBC and PBKDF2-HMAC-SHA256, SHA-256 MAC) and the legacy one
    /// (RC2 / 3DES with SHA-1, `openssl pkcs12 -legacy` and OpenSSL 1.x).
    pub fn from_pkcs12(path: &Path, bytes: &[u8], password: &str) -> Result<Self, TlsError> {
        let path = path.to_path_buf();
        let store = KeyStore::from_pkcs12(bytes, password, Pkcs12ImportPolicy::Strict)
            .map_err(|error| classify(&path, error))?;
        let Some((_alias, chain)) = store.private_key_chain() else {
            return Err(TlsError::NoKey { path });
        };
        if chain.certs().is_empty() {
            return Err(TlsError::NoKey { path });
        }
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
        let chain_der: Vec<CertificateDer<'static>> = chain
            .certs()
            .iter()
            .map(|cert| CertificateDer::from(cert.as_der().to_vec()))
            .collect();
        let mut certificates = Vec::new();
        for (_alias, entry) in store.entries() {
            let certs: Vec<&[u8]> = match entry {
                KeyStoreEntry::PrivateKeyChain(chain) => {
                    chain.certs().iter().map(|cert| cert.as_der()).collect()
                }
                KeyStoreEntry::Certificate(cert) => vec![cert.as_der()],
                KeyStoreEntry::Secret(_) => Vec::new(),
            };
            for der in certs {
                if !certificates
                    .iter()
                    .any(|c: &CertificateDer<'_>| c.as_ref() == der)
                {
                    certificates.push(CertificateDer::from(der.to_vec()));
                }
            }
        }
        Ok(Self {
            path,
            key,
            chain: chain_der,
            certificates,
        })
    }

    /// Reads and parses the keystore at `path` (on a blocking thread: it is a file read and a
    /// key derivation of a few thousand rounds).
    pub async fn read(path: &Path, password: &str) -> Result<Self, TlsError> {
        let path = path.to_path_buf();
        let password = password.to_string();
        let task_path = path.clone();
        tokio::task::spawn_blocking(move || {
            let bytes = read_bounded(&task_path)?;
            Self::from_pkcs12(&task_path, &bytes, &password)
        })
        .await
        .unwrap_or_else(|join| {
            Err(TlsError::Read {
                path,
                source: std::io::Error::other(join.to_string()),
            })
        })
    }
}

/// Reads at most [`MAX_KEYSTORE_BYTES`] of `path`.
fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read as _;
    let read_error = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_KEYSTORE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    let size = bytes.len() as u64;
    if size > MAX_KEYSTORE_BYTES {
        return Err(TlsError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    Ok(bytes)
}

/// Sorts the parser's error into ours.
fn classify(path: &Path, error: p12_keystore::error::Error) -> TlsError {
    use p12_keystore::error::Error as P12;
    let path = path.to_path_buf();
    let reason = error.to_string();
    match error {
        P12::MacError(_) => TlsError::WrongPassword { path },
        // With PBES2 an integrity-less keystore shows a wrong password only as bad padding.
        P12::UnpadError => TlsError::WrongPassword { path },
        P12::UnsupportedEncryptionScheme | P12::UnsupportedMacAlgorithm => {
            TlsError::Unsupported { path, reason }
        }
        P12::X509Error(_) | P12::UnsupportedCertificateType => {
            TlsError::Certificate { path, reason }
        }
        _ => TlsError::NotPkcs12 { path, reason },
    }
}

/// The crypto every https piece uses: ring's.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The DER SubjectPublicKeyInfo and the DER subject name of a certificate.
pub(crate) fn spki_and_subject(
    path: &Path,
    cert: &CertificateDer<'_>,
) -> Result<(SubjectPublicKeyInfoDer<'static>, Vec<u8>), TlsError> {
    let (_rest, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|error| {
        TlsError::Certificate {
            path: path.to_path_buf(),
            reason: error.to_string(),
        }
    })?;
    let spki = SubjectPublicKeyInfoDer::from(parsed.public_key().raw.to_vec());
    Ok((spki, parsed.subject().as_raw().to_vec()))
}

impl Keystore {
    /// The keystore's certificates pinned ([`pin::Pins`]), their handshake signatures checked with
    /// `provider`'s algorithms: what both ends of the pinning trust.
    pub fn pins(&self, provider: &CryptoProvider) -> Result<pin::Pins, TlsError> {
        pin::Pins::new(
            &self.path,
            &self.certificates,
            provider.signature_verification_algorithms,
        )
    }

    /// The key with its chain, as rustls signs with it, after checking that the key is the end
    /// entity certificate's. rustls' own check (`CertifiedKey::from_der`) parses the certificate
    /// with WebPKI, which refuses `genssl.sh`'s v1 certificates, so it is done here on the public
    /// key `x509-parser` reads.
    pub fn certified_key(&self, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
        let path = &self.path;
        let signing_key: Arc<dyn SigningKey> = provider
            .key_provider
            .load_private_key(self.key.clone_key())
            .map_err(|source| TlsError::Rustls {
                path: path.clone(),
                source,
            })?;
        let end_entity = self
            .chain
            .first()
            .ok_or_else(|| TlsError::NoKey { path: path.clone() })?;
        let (cert_spki, _) = spki_and_subject(path, end_entity)?;
        if let Some(key_spki) = signing_key.public_key()
            && key_spki.as_ref() != cert_spki.as_ref()
        {
            return Err(TlsError::KeyMismatch { path: path.clone() });
        }
        Ok(CertifiedKey::new(self.chain.clone(), signing_key))
    }
}

/// The server's configuration for `keystore`: its key and chain, http/1.1 by ALPN, TLS 1.2 and
/// 1.3; with `client_auth`, a client certificate is required and must be one of the keystore's
/// ([`PinnedClientCerts`]).
pub fn server_config(keystore: &Keystore, client_auth: bool) -> Result<ServerConfig, TlsError> {
    let path = &keystore.path;
    let provider = provider();
    let certified = keystore.certified_key(&provider)?;
    let verifier: Arc<dyn ClientCertVerifier> = if client_auth {
        Arc::new(PinnedClientCerts::new(keystore.pins(&provider)?))
    } else {
        Arc::new(NoClientAuth)
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            path: path.clone(),
            source,
        })?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(config)
}

/// Reads the keystore at `path` and builds the acceptor of [`server_config`].
pub async fn load_acceptor(
    path: &Path,
    password: &str,
    client_auth: bool,
) -> Result<TlsAcceptor, TlsError> {
    let keystore = Keystore::read(path, password).await?;
    Ok(TlsAcceptor::from(Arc::new(server_config(
        &keystore,
        client_auth,
    )?)))
}

#[cfg(test)]
mod tests;
