//! `alcove bot`: the practice's reminder bot (see reminders/README.md).
//! Output names no client: counts, the bot's own identity, and the
//! practice's calendar UIDs in `list`.

use std::path::PathBuf;

use alcove_reminders::appointments::{self, Incoming};
use alcove_reminders::{bot::now_ms, schedule, status, Bot, BotConfig};
use chrono_tz::Tz;

use crate::tools::BoxError;

#[derive(clap::Args)]
pub struct BotArgs {
    #[command(subcommand)]
    action: BotAction,
    /// The bot's configuration file (see reminders/README.md).
    #[arg(long, global = true, default_value = "bot.toml")]
    config: PathBuf,
}

#[derive(clap::Subcommand)]
enum BotAction {
    /// Enrol the bot's account with a practice invite (`alcove relay
    /// invite --role bot`), then print its identity.
    Enroll {
        /// Invites are base64url and may begin with '-'.
        #[arg(long, allow_hyphen_values = true)]
        invite: String,
    },
    /// Print the bot's account id and identity key (hex), for the
    /// therapist's app to introduce it to clients.
    Identity,
    /// Run until SIGINT or SIGTERM: import the feed, send reminders,
    /// handle replies.
    Run {
        /// One round, then exit (prints its counts).
        #[arg(long)]
        once: bool,
    },
    /// Import the feed now, even if unchanged.
    Import,
    /// Add (or move) an appointment: `--at 2027-03-15T09:00 --tz
    /// America/New_York`.
    Add {
        /// The practice's id for it (unique; the same id again moves it).
        #[arg(long)]
        id: String,
        /// The client's Alcove account id.
        #[arg(long)]
        client: String,
        /// The therapist's account id, to hear the client's answer.
        #[arg(long)]
        therapist: Option<String>,
        /// Local date and time, `YYYY-MM-DDTHH:MM`.
        #[arg(long)]
        at: String,
        /// IANA zone of `--at` and of the reminder's text [default: the
        /// config's default_time_zone].
        #[arg(long)]
        tz: Option<String>,
    },
    /// Cancel an appointment (and tell the client if a reminder went).
    Cancel {
        #[arg(long)]
        id: String,
        /// For one occurrence of a recurring feed event: its original
        /// start in ms, as `list` shows it.
        #[arg(long, default_value_t = 0)]
        occurrence: i64,
    },
    /// List appointments with their state, answer and reminders.
    List {
        /// As JSON (the status file's format).
        #[arg(long)]
        json: bool,
    },
}

pub async fn bot(args: BotArgs) -> Result<(), BoxError> {
    let config = BotConfig::load(&args.config)?;
    if let BotAction::Enroll { invite } = &args.action {
        let bot = Bot::enroll(config, invite).await?;
        return print_identity(&bot);
    }
    let mut bot = Bot::open(config)?;
    let now = now_ms();
    match args.action {
        // Enrolment returned above.
        BotAction::Enroll { .. } | BotAction::Identity => print_identity(&bot),
        BotAction::Run { once: true } => {
            let r = bot.round(now).await?;
            println!(
                "sent {} skipped {} superseded {} deferred {} replies {} refused {} relay {}",
                r.tick.sent,
                r.tick.skipped,
                r.tick.superseded,
                r.tick.deferred,
                r.replies.applied + r.replies.repeated,
                r.replies.refused,
                if r.relay_reached { "up" } else { "down" }
            );
            Ok(())
        }
        BotAction::Run { once: false } => Ok(bot.run(shutdown_signal()).await?),
        BotAction::Import => {
            let r = bot.import_feed(now, true)?.unwrap_or_default();
            println!(
                "added {} moved {} cancelled {} unchanged {} skipped {} unmapped {}",
                r.added, r.moved, r.cancelled, r.unchanged, r.skipped, r.unmapped
            );
            Ok(())
        }
        BotAction::Add {
            id,
            client,
            therapist,
            at,
            tz,
        } => {
            let tz: Tz = match tz {
                Some(t) => t.parse().map_err(|_| "unknown time zone")?,
                None => bot.config().default_time_zone,
            };
            let naive = chrono::NaiveDateTime::parse_from_str(&at, "%Y-%m-%dT%H:%M")
                .map_err(|_| "--at wants YYYY-MM-DDTHH:MM")?;
            let starts = schedule::resolve_local(tz, naive)
                .ok_or("that local time does not exist")?
                .timestamp_millis();
            if starts <= now {
                return Err("that time has passed".into());
            }
            let config = bot.config().clone();
            let change = bot.engine(|a| {
                appointments::add(
                    a,
                    &config,
                    Incoming {
                        uid: id,
                        occurrence: 0,
                        client,
                        therapist,
                        starts_at: starts,
                        time_zone: tz,
                        cancelled: false,
                        source: "cli",
                    },
                    now,
                )
            })?;
            println!("{change:?}");
            Ok(())
        }
        BotAction::Cancel { id, occurrence } => {
            let config = bot.config().clone();
            let change =
                bot.engine(|a| appointments::cancel_by_id(a, &config, &id, occurrence, now))?;
            println!("{change:?}");
            Ok(())
        }
        BotAction::List { json } => {
            let all = bot.engine(|a| status::statuses(a))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for s in all {
                    let reminders: Vec<String> = s
                        .reminders
                        .iter()
                        .map(|r| format!("{}:{}", r.offset, r.state))
                        .collect();
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        s.uid,
                        s.occurrence,
                        s.starts_at,
                        s.state,
                        s.reply.unwrap_or("-"),
                        reminders.join(",")
                    );
                }
            }
            Ok(())
        }
    }
}

fn print_identity(bot: &Bot) -> Result<(), BoxError> {
    let (account, key) = bot.identity()?;
    println!("account {account}");
    println!("identity_key {}", hex::encode(key));
    Ok(())
}

/// SIGINT or SIGTERM (what systemd and container runtimes send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
