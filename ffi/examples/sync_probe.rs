//! One push-wake sync through the FFI facade, in a process that holds
//! nothing else: what the library costs a phone's process, without the
//! `alcove` CLI's relay, bot and demo code around it. Prints the report and
//! this process's peak resident memory (Linux `VmHWM`). Used by
//! `cli/benches/sync.rs`; build it with
//! `cargo build --release -p alcove-ffi --example sync_probe`.
//!
//! usage: sync_probe <db> <key-file (hex)> <relay-url>

use std::process::ExitCode;

use alcove_ffi::AlcoveClient;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, key_file, relay] = &args[..] else {
        eprintln!("usage: sync_probe <db> <key-file> <relay-url>");
        return ExitCode::from(2);
    };
    let key = match std::fs::read_to_string(key_file)
        .map_err(|e| e.to_string())
        .and_then(|t| hex::decode(t.trim()).map_err(|e| e.to_string()))
    {
        Ok(k) => k,
        Err(e) => {
            eprintln!("sync_probe: key file: {e}");
            return ExitCode::FAILURE;
        }
    };
    // As on a phone: UniFFI polls the future from the app's executor and
    // enters one small tokio runtime for it.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sync_probe: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = AlcoveClient::open(db.clone(), key, relay.clone())
        .and_then(|client| rt.block_on(client.sync(60_000)));
    match result {
        Ok(report) => {
            println!(
                "received={} failed={} more={} peak_rss_kib={}",
                report.received,
                report.failed,
                report.more,
                peak_rss_kib()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sync_probe: {e}");
            ExitCode::FAILURE
        }
    }
}
