//! The demo's reminder bot: the practice enrols its bot, the therapist
//! introduces it, the bot imports an .ics feed, reminds the client end to
//! end, the client taps Confirm, and the therapist sees the answer.

use std::path::Path;
use std::time::{Duration, Instant};

use alcove_core::reminders::ReminderChoice;
use alcove_core::{Client, MessageKind};
use alcove_reminders::{bot::now_ms, Bot, BotConfig};

use crate::tools::{new_key_file, BoxError};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

pub async fn run(
    dir: &Path,
    relay_db: &Path,
    url: &str,
    therapist: &Client,
    client: &Client,
) -> Result<(), BoxError> {
    println!("\n-- the practice's reminder bot --");
    let dir = dir.join("bot");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    new_key_file(&dir.join("bot.key"))?;
    // The appointment: 47 hours from now in New York, so the two-day
    // reminder is already due. The calendar's summary stays in the
    // calendar: the bot never reads it.
    let tz = chrono_tz::America::New_York;
    let start = (chrono::Utc::now() + chrono::Duration::hours(47)).with_timezone(&tz);
    std::fs::write(
        dir.join("appointments.ics"),
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Harbor Counseling//EN\r\nBEGIN:VEVENT\r\nUID:demo-1@harbor\r\nDTSTAMP:20261201T000000Z\r\nDTSTART;TZID=America/New_York:{}\r\nDURATION:PT50M\r\nSUMMARY:Session\r\nORGANIZER:mailto:rivera@harbor.example\r\nATTENDEE:mailto:client@harbor.example\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            start.format("%Y%m%dT%H0000")
        ),
    )?;
    std::fs::write(
        dir.join("clients.csv"),
        format!(
            "uri,account,time_zone\nmailto:client@harbor.example,{},America/New_York\nmailto:rivera@harbor.example,{},\n",
            client.account_id(),
            therapist.account_id()
        ),
    )?;
    std::fs::write(
        dir.join("bot.toml"),
        format!(
            "relay = \"{url}\"\ndatabase = \"bot.db\"\nkey_file = \"bot.key\"\npractice_name = \"Harbor Counseling\"\nfeed = \"appointments.ics\"\nclients = \"clients.csv\"\nstatus_file = \"status.json\"\noffsets = [\"2d\", \"2h\"]\ndefault_time_zone = \"America/New_York\"\n"
        ),
    )?;
    let config = BotConfig::load(&dir.join("bot.toml"))?;
    let invite = alcove_relay::create_role_invite(relay_db, alcove_relay::Role::Bot, None)?;
    let mut bot = Bot::enroll(config, &invite).await?;
    let (bot_id, bot_key) = bot.identity()?;
    println!("bot        enrolled with a bot invite; the therapist introduces it to clients");
    therapist.with_account(|a| a.introduce_bot(&bot_id, &bot_key))?;
    therapist.flush_outbox(None).await?;
    client.sync(soon()).await?;

    let round = bot.round(now_ms()).await?;
    let imported = round.import.unwrap_or_default();
    println!(
        "bot        imported the .ics feed ({} appointment), sent {} reminder",
        imported.added, round.tick.sent
    );
    let report = client.sync(soon()).await?;
    let row = report
        .events
        .iter()
        .find_map(|e| match e {
            alcove_core::SyncEvent::ReminderReceived { message_row, .. } => Some(*message_row),
            _ => None,
        })
        .ok_or("the client got no reminder")?;
    let body = client
        .with_account(|a| a.message(row))?
        .ok_or("reminder not stored")?
        .body;
    let view = client
        .with_account(|a| a.reminder(row))?
        .ok_or("not a reminder")?;
    let buttons: Vec<&str> = view.choices.iter().map(|c| c.label()).collect();
    println!("client     reminder, end to end from the bot its therapist introduced:");
    println!("             \"{body}\"");
    println!("             buttons: [{}]", buttons.join("] ["));
    client
        .reply_to_reminder(row, ReminderChoice::Confirm)
        .await?
        .ok_or("reply not sent")?;
    println!("client     taps [Confirm]");
    let round = bot.round(now_ms()).await?;
    println!(
        "bot        heard {} answer; acknowledged it and told the therapist",
        round.replies.applied
    );
    client.sync(soon()).await?;
    if let Some(ack) = client
        .with_account(|a| a.messages(view.conversation, None, 1))?
        .into_iter()
        .find(|m| m.kind == MessageKind::AppointmentUpdate)
    {
        println!("client     sees: \"{}\"", ack.body);
    }
    therapist.sync(soon()).await?;
    let with_client = therapist.conversation_with(client.account_id())?;
    let seen = therapist
        .with_account(|a| a.messages(with_client, None, 5))?
        .into_iter()
        .find(|m| m.kind == MessageKind::AppointmentUpdate)
        .ok_or("the therapist did not see the answer")?;
    println!(
        "therapist  sees, in the client's conversation: \"{}\"",
        seen.body
    );
    let status = std::fs::read_to_string(dir.join("status.json"))?;
    if !status.contains("\"confirm\"") {
        return Err("the status file does not show the confirmation".into());
    }
    println!(
        "practice   status file {} says: confirmed",
        dir.join("status.json").display()
    );
    Ok(())
}
