//! The transcript for the chart: one self-contained, printable HTML page,
//! every text escaped.

use crate::conversations::{Message, MessageKind};

use super::Parties;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn time(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

pub(super) fn transcript(
    parties: &Parties,
    messages: &[Message],
    range: Option<(u64, u64)>,
    now: u64,
) -> String {
    let mut rows = String::new();
    for m in messages {
        let who = match (m.kind, m.outgoing) {
            (MessageKind::Notice, _) => "Notice (this device)",
            (_, true) => parties.own.as_str(),
            (_, false) => parties.peer.as_str(),
        };
        rows.push_str(&format!(
            "<tr><td class=t>{}</td><td class=w>{}</td><td>{}</td></tr>\n",
            time(m.sent_at),
            escape(who),
            escape(&m.body)
        ));
    }
    let period = match range {
        Some((from, to)) => format!("{} to {}", time(from), time(to)),
        None => "the whole conversation".into(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\n<title>Secure messages: {peer}</title>\n<style>body{{font:11pt/1.4 Georgia,serif;margin:2em}}table{{border-collapse:collapse;width:100%}}td{{border-bottom:1px solid #ccc;padding:.3em .5em;vertical-align:top}}.t{{white-space:nowrap;color:#444}}.w{{white-space:nowrap;font-weight:bold}}@media print{{body{{margin:0}}}}</style>\n</head><body>\n<h1>Secure messages</h1>\n<p>Between {own} and {peer}; {period}. {n} messages. Exported {at} from an Alcove device; the manifest beside this file lists its SHA-256, signed by the exporting device.</p>\n<table>\n{rows}</table>\n</body></html>\n",
        own = escape(&parties.own),
        peer = escape(&parties.peer),
        n = messages.len(),
        at = time(now),
    )
}
