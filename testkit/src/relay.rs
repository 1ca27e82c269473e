//! Relay fixtures on loopback: in process (with restart on the same address
//! and database), or the `alcove relay` binary as a child process.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The fixture's relay has its rate limits off: the suites that use it
/// flood on purpose (a thousand-message backlog, a drained prekey supply)
/// to test sync, not the limits (`cli/tests/abuse_net.rs` tests those).
pub fn unlimited(mut c: alcove_relay::RelayConfig) -> alcove_relay::RelayConfig {
    c.rate_limits = alcove_relay::rate_limits::RateLimitConfig::off();
    c
}

/// A relay running in this process on 127.0.0.1 with a SQLite file.
pub struct Relay {
    pub handle: Option<alcove_relay::RelayHandle>,
    pub db: PathBuf,
    pub addr: SocketAddr,
}

impl Relay {
    /// Starts on 127.0.0.1:0 with the database `dir/relay.db`.
    pub async fn start(dir: &Path) -> Relay {
        let db = dir.join("relay.db");
        Self::start_at(db, "127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_at(db: PathBuf, bind: SocketAddr) -> Relay {
        Self::start_with(unlimited(alcove_relay::RelayConfig::new(bind, db))).await
    }

    /// Starts with `config` as given (its bind address and database).
    pub async fn start_with(config: alcove_relay::RelayConfig) -> Relay {
        let db = config
            .storage
            .sqlite_path()
            .expect("test relays run on an SQLite file")
            .to_path_buf();
        let handle = alcove_relay::start(config, alcove_relay::default_push_sender().unwrap())
            .await
            .unwrap();
        let addr = handle.local_addr();
        Relay {
            handle: Some(handle),
            db,
            addr,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A fresh invite from this relay's database.
    pub fn invite(&self) -> String {
        alcove_relay::create_invite(&self.db, None).unwrap()
    }

    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }

    /// Restart on the same address and database file.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut last = None;
        // The old socket may linger briefly: bounded retries, 5 s at most.
        for _ in 0..50 {
            match alcove_relay::start(
                unlimited(alcove_relay::RelayConfig::new(self.addr, self.db.clone())),
                alcove_relay::default_push_sender().unwrap(),
            )
            .await
            {
                Ok(h) => {
                    self.handle = Some(h);
                    return;
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("relay did not restart: {last:?}");
    }
}

/// An `alcove relay` process, killed on drop. Every line it logs is kept
/// (and its pipe drained, so it never blocks).
pub struct RelayProcess {
    child: std::process::Child,
    pub url: String,
    pub db: PathBuf,
    pub log: Arc<Mutex<Vec<u8>>>,
}

impl RelayProcess {
    /// Runs `<bin> relay <args>` (which must bind 127.0.0.1:0 and use the
    /// database `db`) with `ALCOVE_LOG=<log_level>`, and waits for the
    /// address it listens on. `bin` is the caller's
    /// `env!("CARGO_BIN_EXE_alcove")`.
    pub fn spawn<I, A>(bin: &str, args: I, db: PathBuf, log_level: &str) -> RelayProcess
    where
        I: IntoIterator<Item = A>,
        A: AsRef<OsStr>,
    {
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("relay").args(args);
        Self::spawn_command(cmd, db, log_level)
    }

    /// Runs `cmd`, which must end up running `alcove relay` (e.g. through a
    /// shell that sets limits first), as [`RelayProcess::spawn`] does.
    pub fn spawn_command(
        mut cmd: std::process::Command,
        db: PathBuf,
        log_level: &str,
    ) -> RelayProcess {
        use std::io::{BufRead, BufReader};
        let mut child = cmd
            .env("ALCOVE_LOG", log_level)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = |log: &Mutex<Vec<u8>>, line: &str| {
            let mut l = log.lock().unwrap();
            l.extend(line.as_bytes());
            l.push(b'\n');
        };
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("relay exited before listening")
                .unwrap();
            keep(&log, &line);
            if let Some(rest) = line.strip_prefix("alcove relay listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep(&sink, &line);
            }
        });
        RelayProcess {
            child,
            url: format!("http://{addr}"),
            db,
            log,
        }
    }

    /// A fresh invite from this relay's database.
    pub fn invite(&self) -> String {
        alcove_relay::create_invite(&self.db, None).unwrap()
    }

    /// The relay's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the relay logged so far.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
