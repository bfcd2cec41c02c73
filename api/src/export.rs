//! The bytes of a data export (issue 16, data governance): a channel or a workspace as one JSON
//! document or as CSV, written piece by piece so the route can stream it.
//!
//! The route (`routes/export.rs`) reads history a page at a time and hands each message, folded
//! as history shows it (`materialize`), to an [`ExportWriter`], sending what it returns to the
//! client before reading the next page; nothing here does I/O, so the framing (commas between
//! elements, CSV quoting) is unit-tested without a server, and no export is ever held whole in
//! memory.
//!
//! What a message looks like in an export is what a member reading history sees: the current
//! text, the edit history, reactions with who reacted, thread replies as messages with
//! `parent_seq` (in channel order, like history). A deleted message keeps its place, with who
//! deleted it and when, but neither its text nor its earlier versions — as in history.

use chorus_core::messages::MessageState;
use chorus_core::model::Channel;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The two formats. JSON is lossless; CSV is one row per message for spreadsheets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    #[default]
    Json,
    Csv,
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Json => "application/json",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Csv => "csv",
        }
    }
}

/// The version of the JSON document's shape, its first field.
pub const JSON_FORMAT: &str = "chorus-export/1";

/// The CSV columns, in order (the first line of every CSV export).
pub const CSV_COLUMNS: [&str; 16] = [
    "channel_id",
    "channel_name",
    "seq",
    "message_id",
    "parent_seq",
    "author_id",
    "created_at",
    "text",
    "original_text",
    "edit_count",
    "edited_at",
    "deleted_by",
    "deleted_at",
    "reactions",
    "reply_count",
    "last_reply_at",
];

/// One message in a JSON export.
#[derive(Debug, Serialize)]
struct ExportedMessage<'a> {
    seq: u64,
    id: Uuid,
    author_id: Uuid,
    #[serde(with = "chorus_protocol::timestamp")]
    created_at: DateTime<Utc>,
    /// Set on thread replies: the seq of the thread's parent.
    parent_seq: Option<u64>,
    /// The current text; empty once deleted.
    text: &'a str,
    /// The text as first posted; empty once deleted.
    original_text: &'a str,
    /// Every edit, oldest first; empty once deleted.
    edits: Vec<ExportedEdit<'a>>,
    deleted: Option<ExportedDeletion>,
    reactions: Vec<ExportedReaction<'a>>,
    reply_count: u64,
    #[serde(with = "chorus_protocol::timestamp::option")]
    last_reply_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
struct ExportedEdit<'a> {
    seq: u64,
    text: &'a str,
    #[serde(with = "chorus_protocol::timestamp")]
    edited_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct ExportedDeletion {
    by: Uuid,
    #[serde(with = "chorus_protocol::timestamp")]
    at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
struct ExportedReaction<'a> {
    emoji: &'a str,
    count: usize,
    users: &'a [Uuid],
}

#[derive(Debug, Serialize)]
struct ExportedChannel<'a> {
    id: Uuid,
    name: &'a str,
    kind: chorus_core::model::ChannelKind,
    topic: &'a str,
    archived: bool,
    created_by: Uuid,
    #[serde(with = "chorus_protocol::timestamp")]
    created_at: DateTime<Utc>,
}

/// Where the writer is in the document, so it knows which separators come next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    Start,
    /// After the header, between channels.
    Channels,
    /// Inside a channel; `messages` written so far in it.
    Messages(usize),
    Done,
}

/// Writes one export. Call [`begin`](Self::begin), then per channel
/// [`channel`](Self::channel), [`message`](Self::message)s and [`channel_end`](Self::channel_end),
/// then [`end`](Self::end); each returns the bytes to send next.
#[derive(Debug)]
pub struct ExportWriter {
    format: ExportFormat,
    position: Position,
    /// Channels closed so far (JSON separates them with commas).
    channels_done: usize,
    /// The channel being written (CSV repeats it on every row).
    channel: Option<(Uuid, String)>,
}

impl ExportWriter {
    pub fn new(format: ExportFormat) -> Self {
        ExportWriter {
            format,
            position: Position::Start,
            channels_done: 0,
            channel: None,
        }
    }

    /// The document's opening: the JSON header, or the CSV column names.
    pub fn begin(&mut self, workspace_id: Uuid, exported_at: DateTime<Utc>) -> Vec<u8> {
        debug_assert_eq!(self.position, Position::Start);
        self.position = Position::Channels;
        match self.format {
            ExportFormat::Json => {
                let header = serde_json::json!({
                    "format": JSON_FORMAT,
                    "workspace_id": workspace_id,
                    "exported_at": chorus_protocol::timestamp::format(&exported_at),
                })
                .to_string();
                // Reopen the header object to append the channel array to it.
                let mut out = header.into_bytes();
                out.pop();
                out.extend_from_slice(b",\"channels\":[\n");
                out
            }
            ExportFormat::Csv => csv_line(CSV_COLUMNS.iter().map(|c| (*c).to_string())),
        }
    }

    /// Opens a channel.
    pub fn channel(&mut self, channel: &Channel) -> Vec<u8> {
        if self.position != Position::Channels {
            debug_assert!(false, "channel() out of order: {:?}", self.position);
            return Vec::new();
        }
        self.position = Position::Messages(0);
        self.channel = Some((channel.id, channel.name.clone()));
        match self.format {
            ExportFormat::Json => {
                let mut out = Vec::new();
                if self.channels_done > 0 {
                    out.extend_from_slice(b",\n");
                }
                out.extend_from_slice(b"{\"channel\":");
                out.extend(json_bytes(&ExportedChannel {
                    id: channel.id,
                    name: &channel.name,
                    kind: channel.kind,
                    topic: &channel.topic,
                    archived: channel.is_archived,
                    created_by: channel.created_by,
                    created_at: channel.created_at,
                }));
                out.extend_from_slice(b",\"messages\":[");
                out
            }
            ExportFormat::Csv => Vec::new(),
        }
    }

    /// One message of the open channel, as history shows it now.
    pub fn message(&mut self, state: &MessageState) -> Vec<u8> {
        let Position::Messages(done) = self.position else {
            debug_assert!(false, "message() out of order: {:?}", self.position);
            return Vec::new();
        };
        self.position = Position::Messages(done + 1);
        let deleted = state.deleted.is_some();
        // As history shows it: a deleted message's words, earlier versions included, are gone.
        let original_text = if deleted { "" } else { &state.message.text };
        let edits: &[chorus_core::messages::Edit] = if deleted { &[] } else { &state.edits };
        match self.format {
            ExportFormat::Json => {
                let mut out = Vec::new();
                out.extend_from_slice(if done > 0 { b",\n" } else { b"\n" });
                out.extend(json_bytes(&ExportedMessage {
                    seq: state.message.seq,
                    id: state.message.id,
                    author_id: state.message.author_id,
                    created_at: state.message.created_at,
                    parent_seq: state.message.parent_seq,
                    text: &state.text,
                    original_text,
                    edits: edits
                        .iter()
                        .map(|e| ExportedEdit {
                            seq: e.seq,
                            text: &e.text,
                            edited_at: e.edited_at,
                        })
                        .collect(),
                    deleted: state.deleted.map(|(by, at)| ExportedDeletion { by, at }),
                    reactions: state
                        .reactions
                        .iter()
                        .map(|r| ExportedReaction {
                            emoji: &r.emoji,
                            count: r.count,
                            users: &r.users,
                        })
                        .collect(),
                    reply_count: state.reply_count,
                    last_reply_at: state.last_reply_at,
                }));
                out
            }
            ExportFormat::Csv => {
                let (channel_id, channel_name) = self
                    .channel
                    .clone()
                    .unwrap_or((state.message.channel_id, String::new()));
                let time = |at: &DateTime<Utc>| chorus_protocol::timestamp::format(at);
                let reactions = state
                    .reactions
                    .iter()
                    .map(|r| format!("{}={}", r.emoji, r.count))
                    .collect::<Vec<_>>()
                    .join(";");
                csv_line([
                    channel_id.to_string(),
                    safe_cell(&channel_name),
                    state.message.seq.to_string(),
                    state.message.id.to_string(),
                    state
                        .message
                        .parent_seq
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    state.message.author_id.to_string(),
                    time(&state.message.created_at),
                    safe_cell(&state.text),
                    safe_cell(original_text),
                    edits.len().to_string(),
                    edits.last().map(|e| time(&e.edited_at)).unwrap_or_default(),
                    state
                        .deleted
                        .map(|(by, _)| by.to_string())
                        .unwrap_or_default(),
                    state.deleted.map(|(_, at)| time(&at)).unwrap_or_default(),
                    safe_cell(&reactions),
                    state.reply_count.to_string(),
                    state.last_reply_at.map(|at| time(&at)).unwrap_or_default(),
                ])
            }
        }
    }

    /// Closes the open channel.
    pub fn channel_end(&mut self) -> Vec<u8> {
        let Position::Messages(_) = self.position else {
            debug_assert!(false, "channel_end() out of order: {:?}", self.position);
            return Vec::new();
        };
        self.channels_done += 1;
        self.position = Position::Channels;
        self.channel = None;
        match self.format {
            ExportFormat::Json => b"\n]}".to_vec(),
            ExportFormat::Csv => Vec::new(),
        }
    }

    /// Closes the document.
    pub fn end(&mut self) -> Vec<u8> {
        debug_assert_eq!(self.position, Position::Channels);
        self.position = Position::Done;
        match self.format {
            ExportFormat::Json => b"\n]}\n".to_vec(),
            ExportFormat::Csv => Vec::new(),
        }
    }
}

fn json_bytes(value: &impl Serialize) -> Vec<u8> {
    // Serialising these plain structs cannot fail (string keys, no maps of other keys).
    serde_json::to_vec(value).unwrap_or_default()
}

/// One CSV record (RFC 4180): fields with a comma, quote or line break are quoted, quotes doubled;
/// lines end with CRLF.
fn csv_line(fields: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push(b'"');
            out.extend_from_slice(field.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(field.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A cell of text someone typed, made safe to open in a spreadsheet: one starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return would be read as a formula (OWASP "CSV injection"), so it
/// gets a leading `'`, which spreadsheets show as text. The JSON export is the lossless one.
fn safe_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_core::messages::materialize;
    use chorus_core::model::ChannelKind;
    use chorus_protocol::{EventKind, MessageEvent};

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn channel(name: &str) -> Channel {
        Channel {
            id: Uuid::now_v7(),
            workspace_id: Uuid::nil(),
            name: name.into(),
            description: String::new(),
            kind: ChannelKind::Public,
            topic: String::new(),
            topic_set_by: None,
            topic_set_at: None,
            is_archived: false,
            created_by: Uuid::nil(),
            created_at: at(0),
        }
    }

    fn message(channel: Uuid, seq: u64, text: &str) -> MessageEvent {
        MessageEvent::new_message(
            channel,
            seq,
            Uuid::now_v7(),
            Uuid::nil(),
            text,
            at(seq as i64),
            format!("n{seq}"),
        )
    }

    /// Writes a whole export of `channels` (each with its messages' states) into one buffer.
    fn export(format: ExportFormat, channels: &[(Channel, Vec<MessageState>)]) -> String {
        let mut writer = ExportWriter::new(format);
        let mut out = writer.begin(Uuid::nil(), at(100));
        for (channel, states) in channels {
            out.extend(writer.channel(channel));
            for state in states {
                out.extend(writer.message(state));
            }
            out.extend(writer.channel_end());
        }
        out.extend(writer.end());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_export_is_one_valid_document_in_channel_and_seq_order() {
        let (general, empty) = (channel("general"), channel("empty"));
        let states = vec![
            materialize(message(general.id, 1, "first"), &[]),
            materialize(message(general.id, 2, "second"), &[]),
        ];
        let text = export(
            ExportFormat::Json,
            &[(general.clone(), states), (empty.clone(), vec![])],
        );
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["format"], JSON_FORMAT);
        assert_eq!(doc["channels"][0]["channel"]["name"], "general");
        let texts: Vec<_> = doc["channels"][0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["first", "second"]);
        assert_eq!(doc["channels"][1]["channel"]["id"], empty.id.to_string());
        assert_eq!(doc["channels"][1]["messages"], serde_json::json!([]));
    }

    #[test]
    fn an_export_of_no_channels_is_still_a_document() {
        let doc: serde_json::Value =
            serde_json::from_str(&export(ExportFormat::Json, &[])).unwrap();
        assert_eq!(doc["channels"], serde_json::json!([]));
        let csv = export(ExportFormat::Csv, &[]);
        assert_eq!(csv, format!("{}\r\n", CSV_COLUMNS.join(",")));
    }

    #[test]
    fn a_deleted_message_keeps_its_place_but_not_its_words() {
        let general = channel("general");
        let alice = Uuid::now_v7();
        let edit = MessageEvent {
            kind: EventKind::Edit,
            target_seq: Some(1),
            text: "edited secret".into(),
            ..message(general.id, 2, "")
        };
        let delete = MessageEvent {
            kind: EventKind::Delete,
            target_seq: Some(1),
            author_id: alice,
            text: String::new(),
            ..message(general.id, 3, "")
        };
        let state = materialize(message(general.id, 1, "secret"), &[edit, delete]);
        let text = export(
            ExportFormat::Json,
            &[(general.clone(), vec![state.clone()])],
        );
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let m = &doc["channels"][0]["messages"][0];
        assert_eq!(m["deleted"]["by"], alice.to_string());
        assert_eq!(
            (m["text"].as_str(), m["original_text"].as_str()),
            (Some(""), Some(""))
        );
        assert_eq!(m["edits"], serde_json::json!([]));
        assert!(!text.contains("secret"));
        let csv = export(ExportFormat::Csv, &[(general, vec![state])]);
        assert!(!csv.contains("secret"), "{csv}");
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_defuses_formulas() {
        let general = channel("general");
        let states = vec![
            materialize(message(general.id, 1, "a, \"quoted\"\nline"), &[]),
            materialize(message(general.id, 2, "=HYPERLINK(\"x\")"), &[]),
        ];
        let csv = export(ExportFormat::Csv, &[(general, states)]);
        assert!(csv.contains(",\"a, \"\"quoted\"\"\nline\","), "{csv}");
        assert!(csv.contains(",\"'=HYPERLINK(\"\"x\"\")\","), "{csv}");
        // The header and one record per message (the quoted line break is inside a field).
        assert_eq!(csv.matches("\r\n").count(), 3);
    }

    #[test]
    fn csv_rows_carry_edits_reactions_and_threads() {
        let general = channel("general");
        let bob = Uuid::now_v7();
        let related = vec![
            MessageEvent {
                kind: EventKind::Edit,
                target_seq: Some(1),
                text: "better".into(),
                ..message(general.id, 2, "")
            },
            MessageEvent {
                kind: EventKind::ReactionAdd,
                target_seq: Some(1),
                emoji: Some("tada".into()),
                author_id: bob,
                ..message(general.id, 3, "")
            },
            MessageEvent {
                parent_seq: Some(1),
                ..message(general.id, 4, "a reply")
            },
        ];
        let parent = materialize(message(general.id, 1, "good"), &related);
        let reply = materialize(related[2].clone(), &[]);
        let csv = export(ExportFormat::Csv, &[(general.clone(), vec![parent, reply])]);
        let rows: Vec<Vec<&str>> = csv
            .trim_end()
            .split("\r\n")
            .map(|line| line.split(',').collect())
            .collect();
        let column = |name| CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
        assert_eq!(rows[1][column("text")], "better");
        assert_eq!(rows[1][column("original_text")], "good");
        assert_eq!(rows[1][column("edit_count")], "1");
        assert_eq!(rows[1][column("reactions")], "tada=1");
        assert_eq!(rows[1][column("reply_count")], "1");
        assert_eq!(rows[2][column("parent_seq")], "1");
        assert_eq!(rows[2][column("channel_name")], "general");
    }
}
