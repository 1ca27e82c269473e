//! Test certificate authorities and TLS relay processes for the TLS
//! suites: a CA issues certificates for a host with chosen dates, and a
//! relay serves one (with the CA in its chain) on loopback.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use alcove_testkit::relay::RelayProcess;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The SHA-256 of the CA certificate (DER): the card's pin of the CA.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(self.issuer.der().as_ref()).into()
    }

    /// A relay certificate for `hosts`, valid until the end of `until_year`,
    /// and its key (PEM).
    pub fn issue(&self, hosts: &[&str], until_year: i32) -> (String, String) {
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(until_year, 12, 31);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Writes `chain` and `key` under `dir` and starts `alcove relay` serving
/// them on 127.0.0.1; returns it and its `https://localhost:PORT` URL.
pub fn start_relay(bin: &str, dir: &Path, chain: &str, key: &str) -> (RelayProcess, String) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("cert.pem"), chain).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        "[relay]\nbind = \"127.0.0.1:0\"\ndb = \"relay.db\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
    )
    .unwrap();
    let relay = RelayProcess::spawn(
        bin,
        [std::ffi::OsStr::new("--config"), config.as_os_str()],
        dir.join("relay.db"),
        "warn",
    );
    let port = relay
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    (relay, format!("https://localhost:{port}"))
}

/// The files of an account: nothing may be left after a refused enrolment.
pub fn db_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm", "-journal", ".keycheck"]
        .iter()
        .map(|s| {
            let mut p = db.as_os_str().to_owned();
            p.push(s);
            PathBuf::from(p)
        })
        .filter(|p| p.exists())
        .collect()
}
