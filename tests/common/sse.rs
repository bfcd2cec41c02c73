//! A small Server-Sent Events client for tests: a real HTTP request (reqwest) whose body is
//! split into events as the `text/event-stream` format says.

use std::time::Duration;

use serde_json::Value;

use super::FRAME_WAIT;

/// One event of a stream; `comment` holds a comment line (`:heartbeat`) instead.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
    pub comment: Option<String>,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|_| panic!("not JSON: {:?}", self.data))
    }
}

pub struct SseClient {
    response: reqwest::Response,
    buffer: String,
}

impl SseClient {
    /// Opens `GET {url}` with a bearer token and, when given, `Last-Event-ID`; returns the status
    /// and, on 200, the client.
    pub async fn open(
        http: &reqwest::Client,
        url: &str,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Result<SseClient, (u16, Value)> {
        let mut request = http.get(url).bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        if status != 200 {
            return Err((status, response.json().await.unwrap_or(Value::Null)));
        }
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Ok(SseClient {
            response,
            buffer: String::new(),
        })
    }

    /// The next event or comment; `None` when the server ended the stream.
    pub async fn next_any(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let chunk = tokio::time::timeout(FRAME_WAIT, self.response.chunk())
                .await
                .expect("no SSE data within the wait")
                .expect("the stream failed");
            match chunk {
                Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => return None,
            }
        }
    }

    /// The next event, skipping comments.
    pub async fn next(&mut self) -> SseEvent {
        loop {
            let event = self.next_any().await.expect("the stream ended");
            if event.comment.is_none() {
                return event;
            }
        }
    }

    /// Whether nothing but comments arrives within `wait` (to check that nothing more is sent).
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
        loop {
            match tokio::time::timeout(wait, self.next_any()).await {
                Err(_) => return true,
                Ok(Some(event)) if event.comment.is_some() => continue,
                Ok(_) => return false,
            }
        }
    }
}

fn parse(block: &str) -> SseEvent {
    let mut event = SseEvent {
        event: "message".into(),
        ..Default::default()
    };
    let mut data = Vec::new();
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            event.comment = Some(comment.trim().to_string());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event.event = value.to_string(),
            "id" => event.id = Some(value.to_string()),
            "data" => data.push(value.to_string()),
            _ => {}
        }
    }
    event.data = data.join("\n");
    event
}
