//! Whom an appointment is for: the practice's `uri,account,time_zone` CSV.
//!
//! Each row maps an ATTENDEE/ORGANIZER URI (`mailto:jane@example.org`) to an
//! Alcove account id and, optionally, the client's IANA zone (empty: use the
//! event's). An attendee written `alcove:ACCOUNTID` needs no row. Schemes and
//! mailto addresses compare case-insensitively. Errors name the line, never
//! its content.

use std::collections::HashMap;

use chrono_tz::Tz;

use crate::ics::normalise_uri;

/// Mapping files larger than this are refused.
pub const MAX_MAPPING_BYTES: usize = 4 * 1024 * 1024;
/// Rows accepted.
pub const MAX_MAPPING_ROWS: usize = 100_000;
const ALCOVE_SCHEME: &str = "alcove:";

/// Why a mapping file was refused. `line` is 1-based, the header is line 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    #[error("mapping file is larger than {MAX_MAPPING_BYTES} bytes")]
    TooLarge,
    #[error("mapping file has more than {MAX_MAPPING_ROWS} rows")]
    TooManyRows,
    #[error("mapping file must start with the header uri,account,time_zone")]
    MissingHeader,
    #[error("mapping file line {line}: not a row of three fields")]
    Malformed { line: u64 },
    #[error("mapping file line {line}: the uri is not a URI")]
    BadUri { line: u64 },
    #[error("mapping file line {line}: the account id is not valid")]
    BadAccount { line: u64 },
    #[error("mapping file line {line}: the time zone is not an IANA zone")]
    BadTimeZone { line: u64 },
    #[error("mapping file line {line}: the uri already appeared on line {first}")]
    DuplicateUri { line: u64, first: u64 },
}

/// Who an attendee is in Alcove.
#[derive(Clone, PartialEq, Eq)]
pub struct Resolved {
    pub account: String,
    /// The client's zone from the mapping; None: use the event's.
    pub time_zone: Option<Tz>,
}

// Debug never shows the account id: it ties a person to the practice.
impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("time_zone", &self.time_zone)
            .finish_non_exhaustive()
    }
}

struct Row {
    resolved: Resolved,
    line: u64,
}

/// The parsed mapping file.
#[derive(Default)]
pub struct Mapping {
    rows: HashMap<String, Row>,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("rows", &self.rows.len())
            .finish()
    }
}

impl Mapping {
    /// No rows: only `alcove:` attendees resolve.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Rows mapped.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn parse(csv_text: &str) -> Result<Self, MappingError> {
        if csv_text.len() > MAX_MAPPING_BYTES {
            return Err(MappingError::TooLarge);
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(csv_text.as_bytes());
        let mut records = reader.records();
        let header = match records.next() {
            Some(Ok(h)) => h,
            _ => return Err(MappingError::MissingHeader),
        };
        let names: Vec<String> = header
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect();
        if names != ["uri", "account", "time_zone"] {
            return Err(MappingError::MissingHeader);
        }

        let mut rows: HashMap<String, Row> = HashMap::new();
        for record in records {
            let record = record.map_err(|e| MappingError::Malformed {
                line: e.position().map_or(0, |p| p.line()),
            })?;
            let line = record.position().map_or(0, |p| p.line());
            if record.iter().all(str::is_empty) {
                continue;
            }
            if rows.len() >= MAX_MAPPING_ROWS {
                return Err(MappingError::TooManyRows);
            }
            let (uri, account, zone) = match (record.get(0), record.get(1), record.get(2)) {
                (Some(u), Some(a), Some(z)) => (u, a, z),
                _ => return Err(MappingError::Malformed { line }),
            };
            let key = uri_key(uri).ok_or(MappingError::BadUri { line })?;
            alcove_core::validate_account_id(account)
                .map_err(|_| MappingError::BadAccount { line })?;
            let time_zone = if zone.is_empty() {
                None
            } else {
                Some(
                    zone.parse::<Tz>()
                        .map_err(|_| MappingError::BadTimeZone { line })?,
                )
            };
            if let Some(first) = rows.get(&key) {
                return Err(MappingError::DuplicateUri {
                    line,
                    first: first.line,
                });
            }
            rows.insert(
                key,
                Row {
                    resolved: Resolved {
                        account: account.to_owned(),
                        time_zone,
                    },
                    line,
                },
            );
        }
        Ok(Self { rows })
    }

    /// The account (and zone) an ATTENDEE/ORGANIZER URI stands for: a row of
    /// the file, or the account named by an `alcove:` URI.
    pub fn resolve(&self, uri: &str) -> Option<Resolved> {
        let key = uri_key(uri)?;
        if let Some(row) = self.rows.get(&key) {
            return Some(row.resolved.clone());
        }
        let account = key.strip_prefix(ALCOVE_SCHEME)?;
        // The key lower-cased nothing after `alcove:`; take the id as written.
        alcove_core::validate_account_id(account).ok()?;
        Some(Resolved {
            account: account.to_owned(),
            time_zone: None,
        })
    }
}

/// How URIs compare: scheme lower-cased; a mailto address lower-cased whole
/// (the local part is case-insensitive at every mail host a practice uses).
fn uri_key(uri: &str) -> Option<String> {
    let normal = normalise_uri(uri)?;
    if normal.starts_with("mailto:") {
        Some(normal.to_lowercase())
    } else {
        Some(normal)
    }
}
