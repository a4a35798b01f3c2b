//! Certificates and their keys, read from PEM files: the full chain, a key
//! that belongs to its first certificate, and the choice of certificate for
//! a name a client asks for (SNI). Everything that can be wrong with the
//! files is said as `FILE: what is wrong`. Never logs or prints key
//! material.

use pingora::tls::sign::CertifiedKey;
use pingora::tls::{CertificateDer, CryptoProvider, PrivateKeyDer, ServerName};
use rustls_pki_types::pem::{self, PemObject};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where one certificate chain and its key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One file and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertError {
    pub file: PathBuf,
    pub what: String,
    /// The problem is in the key file (else the certificate file).
    pub in_key: bool,
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.what)
    }
}

/// A chain and its key, ready for handshakes.
pub struct LoadedCert {
    pub files: CertFiles,
    pub key: Arc<CertifiedKey>,
}

/// The certificates a TLS listener offers, in configuration order; never
/// empty. The first is the default.
pub struct CertSet(Vec<LoadedCert>);

impl fmt::Debug for CertSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|c| c.files.cert.display().to_string()))
            .finish()
    }
}

impl CertSet {
    /// The set of `loaded`, in order; `None` when empty.
    pub fn new(loaded: Vec<LoadedCert>) -> Option<CertSet> {
        (!loaded.is_empty()).then_some(CertSet(loaded))
    }

    /// The certificate for `sni`: the first whose names cover it, else the
    /// first of all (clients that send no name, or one nobody covers).
    pub fn choose(&self, sni: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        let name = sni.and_then(|s| ServerName::try_from(s).ok());
        let covering = name.and_then(|name| {
            self.0
                .iter()
                .find(|c| covers(&c.key, &name))
                .map(|c| &c.key)
        });
        covering.or_else(|| self.0.first().map(|c| &c.key))
    }

    /// The certificates themselves (first of each chain), to tell whether
    /// a reload changed them.
    pub fn leaves(&self) -> Vec<&[u8]> {
        self.0
            .iter()
            .filter_map(|c| c.key.cert.first().map(|d| d.as_ref()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether the chain's first certificate is valid for `name` (its subject
/// alternative names, wildcards as browsers read them).
fn covers(key: &CertifiedKey, name: &ServerName<'_>) -> bool {
    key.cert
        .first()
        .and_then(|leaf| webpki::EndEntityCert::try_from(leaf).ok())
        .is_some_and(|leaf| leaf.verify_is_valid_for_subject_name(name).is_ok())
}

fn read(file: &Path, in_key: bool) -> Result<Vec<u8>, CertError> {
    std::fs::read(file).map_err(|e| CertError {
        file: file.to_path_buf(),
        what: format!("cannot read the file: {e}"),
        in_key,
    })
}

/// Reads, parses and checks one chain and key.
pub fn load_pair(files: &CertFiles) -> Result<LoadedCert, CertError> {
    let cert_err = |what: String| CertError {
        file: files.cert.clone(),
        what,
        in_key: false,
    };
    let key_err = |what: String| CertError {
        file: files.key.clone(),
        what,
        in_key: true,
    };

    let pem_bytes = read(&files.cert, false)?;
    let chain = CertificateDer::pem_slice_iter(&pem_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(format!("not a PEM certificate chain ({e})")))?;
    let Some(leaf) = chain.first() else {
        return Err(cert_err(
            "no certificate in the file (expected the full chain in PEM, \"-----BEGIN CERTIFICATE-----\")".into(),
        ));
    };
    if let Err(e) = webpki::EndEntityCert::try_from(leaf) {
        return Err(cert_err(format!(
            "the first certificate cannot be read ({e:?})"
        )));
    }

    let key_bytes = read(&files.key, true)?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        key_err(match e {
            pem::Error::NoItemsFound => {
                "no private key in the file (expected PEM, \"-----BEGIN PRIVATE KEY-----\")".into()
            }
            other => format!("not a PEM private key ({other})"),
        })
    })?;

    pingora::tls::install_default_crypto_provider();
    let provider = CryptoProvider::get_default()
        .ok_or_else(|| key_err("no TLS crypto provider is available in this build".into()))?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_err(format!("the private key cannot be used ({e})")))?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(key_err(format!(
                "this key does not belong to the certificate in {}",
                files.cert.display()
            )));
        }
        // The key type cannot say its public half: nothing to compare.
        Err(rustls::Error::InconsistentKeys(_)) => {}
        Err(e) => return Err(cert_err(format!("the certificate cannot be used ({e})"))),
    }
    Ok(LoadedCert {
        files: files.clone(),
        key: Arc::new(certified),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pair {
        cert: String,
        key: String,
    }

    fn self_signed(names: &[&str]) -> Pair {
        let c = rcgen::generate_simple_self_signed(
            names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        Pair {
            cert: c.cert.pem(),
            key: c.signing_key.serialize_pem(),
        }
    }

    fn write(dir: &Path, name: &str, p: &Pair) -> CertFiles {
        let files = CertFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, &p.cert).unwrap();
        std::fs::write(&files.key, &p.key).unwrap();
        files
    }

    fn leaf(k: &CertifiedKey) -> &[u8] {
        k.cert[0].as_ref()
    }

    #[test]
    fn sni_picks_the_first_certificate_covering_the_name_else_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let pairs = [
            self_signed(&["app.example"]),
            self_signed(&["*.other.example", "other.example"]),
            self_signed(&["www.other.example"]),
        ];
        let loaded: Vec<_> = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| load_pair(&write(dir.path(), &i.to_string(), p)).unwrap())
            .collect();
        let set = CertSet::new(loaded).unwrap();
        let ders: Vec<Vec<u8>> = set.leaves().iter().map(|d| d.to_vec()).collect();
        let pick = |sni: Option<&str>| leaf(set.choose(sni).unwrap()).to_vec();
        assert_eq!(pick(Some("app.example")), ders[0]);
        assert_eq!(pick(Some("other.example")), ders[1]);
        // the wildcard comes first in the file, so it wins
        assert_eq!(pick(Some("www.other.example")), ders[1]);
        assert_eq!(pick(Some("a.b.other.example")), ders[0]);
        assert_eq!(pick(Some("unknown.example")), ders[0]);
        assert_eq!(pick(None), ders[0]);
        assert_eq!(pick(Some("127.0.0.1")), ders[0]);
        assert!(CertSet::new(Vec::new()).is_none());
    }

    #[test]
    fn every_broken_file_is_named_with_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let good = self_signed(&["app.example"]);
        let other = self_signed(&["app.example"]);
        let case = |name: &str, cert: &str, key: &str| {
            let files = write(
                dir.path(),
                name,
                &Pair {
                    cert: cert.into(),
                    key: key.into(),
                },
            );
            let e = match load_pair(&files) {
                Ok(_) => panic!("{name}: loaded"),
                Err(e) => e,
            };
            let file = if e.in_key { &files.key } else { &files.cert };
            assert_eq!(e.file, *file, "{name}");
            assert!(e.to_string().starts_with(&format!("{}: ", file.display())));
            (e.in_key, e.what)
        };
        let (in_key, what) = case("empty", "", &good.key);
        assert!(
            !in_key && what.starts_with("no certificate in the file"),
            "{what}"
        );
        let (in_key, what) = case(
            "garbled",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            &good.key,
        );
        assert!(
            !in_key && what.starts_with("not a PEM certificate chain"),
            "{what}"
        );
        let (in_key, what) = case("keyless", &good.cert, "");
        assert!(
            in_key && what.starts_with("no private key in the file"),
            "{what}"
        );
        let (in_key, what) = case("swapped", &good.cert, &good.cert);
        assert!(
            in_key && what.starts_with("no private key in the file"),
            "{what}"
        );
        let (in_key, what) = case("stranger", &good.cert, &other.key);
        assert!(
            in_key && what.starts_with("this key does not belong to the certificate in "),
            "{what}"
        );

        let missing = CertFiles {
            cert: dir.path().join("nowhere.crt"),
            key: dir.path().join("nowhere.key"),
        };
        let e = load_pair(&missing).err().unwrap();
        assert!(
            !e.in_key && e.what.starts_with("cannot read the file"),
            "{e}"
        );

        assert!(load_pair(&write(dir.path(), "good", &good)).is_ok());
    }
}
