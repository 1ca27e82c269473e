//! `alcove`: run the relay, issue invites, run the reminder bot, run the demo.
#![forbid(unsafe_code)]

mod bot;
mod demo;
mod demo_bot;
mod tools;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "alcove",
    version,
    about = "Alcove: secure texting for therapy practices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay (SQLite file by default), or issue invites.
    Relay(RelayArgs),
    /// The practice's appointment-reminder bot.
    Bot(bot::BotArgs),
    /// Exports for the clinical record: `alcove export verify DIR` checks
    /// an export's signed manifest and every file.
    Export {
        #[command(subcommand)]
        action: ExportAction,
    },
    /// The demo: relay + therapist + client + bot on loopback, everything under DIR.
    Demo {
        #[arg(long, default_value = "./demo-data")]
        data_dir: PathBuf,
    },
    /// Sync one account once (for operators and tests; prints counts only).
    #[command(hide = true)]
    Sync(tools::SyncArgs),
    /// Enrol one account by invite (for tests).
    #[command(hide = true)]
    Enroll(tools::EnrollArgs),
}

#[derive(Subcommand)]
enum ExportAction {
    /// Check DIR's manifest signature and every file's SHA-256.
    Verify { dir: PathBuf },
}

#[derive(clap::Args)]
struct RelayArgs {
    #[command(subcommand)]
    action: Option<RelayAction>,
    /// Configuration file (TOML, see relay/CONFIG.md); flags given here
    /// override its [relay] keys.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The relay's SQLite database file [default: alcove-relay.db].
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8787]. Plain HTTP is
    /// allowed only on loopback.
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// TLS certificate chain (PEM); required off loopback.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RelayAction {
    /// Issue one-time invite tokens (printed one per line).
    Invite {
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// The role of the accounts the invites register: `client`,
        /// `therapist` (may mint client invites from the app) or `bot`.
        #[arg(long, default_value = "client")]
        role: alcove_relay::Role,
        /// Days until the invites expire (1..=365).
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=365))]
        ttl_days: u32,
        /// Hours until the invites expire (1..=8760), instead of --ttl-days.
        #[arg(long, conflicts_with = "ttl_days", value_parser = clap::value_parser!(u32).range(1..=8760))]
        expires_in_hours: Option<u32>,
    },
    /// Change an existing account's role (say, a therapist who enrolled
    /// before roles existed): `alcove relay set-role ACCOUNT --role therapist`.
    SetRole {
        /// The account's opaque id (as the therapist's app shows it).
        account: String,
        #[arg(long)]
        role: alcove_relay::Role,
    },
    /// Revoke one device of an account (a lost phone): its keys and queued
    /// mail go now; on its next contact the device wipes itself.
    /// `alcove relay revoke ACCOUNT --device N`.
    Revoke {
        /// The account's opaque id (as the therapist's app shows it).
        account: String,
        /// The device id to revoke (1 is the device enrolled by invite).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        device: u32,
    },
    /// Copy an SQLite relay database into an empty PostgreSQL database
    /// (accounts, devices, prekeys, invites, queued mail, push
    /// registrations), then run the relay with `[storage] postgres`.
    /// Stop the relay first. A target that holds data is refused.
    MigrateToPostgres {
        /// The SQLite relay database.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL URL (postgres://user:password@host/db). Better
        /// from the environment than the command line, where other users
        /// can see it.
        #[arg(long, env = "ALCOVE_RELAY_POSTGRES_URL", hide_env_values = true)]
        to: String,
    },
    /// Print the sealed-sender trust root public key (hex; creates the
    /// relay's keys if it never ran). Clients pin it at enrolment; a
    /// practice can print it on invite cards to compare.
    Keys,
}

/// Logs on stderr at `ALCOVE_LOG` (default `warn`), behind the core's
/// privacy filter: libsignal's lines name accounts and never pass.
fn init_tracing() {
    alcove_core::logging::install_for_process("ALCOVE_LOG");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Relay(args) => tools::relay(args).await,
        Command::Bot(args) => bot::bot(args).await,
        Command::Export {
            action: ExportAction::Verify { dir },
        } => tools::verify_export(&dir),
        Command::Demo { data_dir } => demo::run(&data_dir).await,
        Command::Sync(args) => tools::sync(args).await,
        Command::Enroll(args) => tools::enroll(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alcove: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    /// An invite is base64url: one in 64 begins with '-', and must still be
    /// taken as the value of `--invite`, not as an unknown option.
    #[test]
    fn invites_beginning_with_a_hyphen_are_values() {
        let cli = Cli::try_parse_from(["alcove", "bot", "enroll", "--invite", "-Iq3xZ"])
            .expect("the bot takes a hyphen-led invite");
        assert!(matches!(cli.command, Command::Bot(_)));
        let cli = Cli::try_parse_from([
            "alcove",
            "enroll",
            "--db",
            "a.db",
            "--key-file",
            "k",
            "--relay",
            "http://127.0.0.1:1",
            "--invite",
            "-Iq3xZ",
        ])
        .expect("enroll takes a hyphen-led invite");
        assert!(matches!(cli.command, Command::Enroll(_)));
    }
}
