//! What one pass of the enqueuer does with a (subscription, channel) cursor: which events of a
//! history page become deliveries, and where the cursor moves. Pure.
//!
//! Seqs have no gaps (every seq is an event in history), so the cursor moves only over a run
//! that starts right after it and has no hole: an event not yet in history stops the pass
//! rather than being skipped for good. Events of kinds the subscription does not take still
//! move the cursor.

use chorus_core::outgoing::NewDelivery;
use chorus_protocol::{EventKind, MessageEvent};
use serde::Serialize;
use uuid::Uuid;

/// The JSON body of a delivery.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    /// The delivery's id: the same on every attempt (also in `X-Chorus-Delivery`).
    pub delivery_id: Uuid,
    pub subscription_id: Uuid,
    pub channel_id: Uuid,
    pub seq: u64,
    pub kind: EventKind,
    /// The event as the WebSocket protocol spells it (docs/PROTOCOL.md, `message`).
    pub event: &'a MessageEvent,
}

/// The outcome of a pass over one page.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Where the cursor moves (equal to the old cursor: nothing to do).
    pub to: u64,
    pub deliveries: Vec<NewDelivery>,
}

/// Plans the deliveries of `page` (history after `cursor`, oldest first) for a subscription
/// `subscription` taking `kinds`. `new_id` names each delivery.
pub fn plan(
    subscription: Uuid,
    cursor: u64,
    page: &[MessageEvent],
    kinds: &[EventKind],
    mut new_id: impl FnMut() -> Uuid,
) -> Plan {
    let mut to = cursor;
    let mut deliveries = Vec::new();
    for event in page {
        if event.seq != to + 1 {
            break;
        }
        to = event.seq;
        if !kinds.contains(&event.kind) {
            continue;
        }
        let id = new_id();
        let body = serde_json::to_string(&Payload {
            delivery_id: id,
            subscription_id: subscription,
            channel_id: event.channel_id,
            seq: event.seq,
            kind: event.kind,
            event,
        })
        .expect("a payload always serializes");
        deliveries.push(NewDelivery {
            id,
            channel_id: event.channel_id,
            seq: event.seq,
            kind: event.kind,
            body,
        });
    }
    Plan { to, deliveries }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(channel: Uuid, seq: u64, kind: EventKind) -> MessageEvent {
        MessageEvent {
            channel_id: channel,
            seq,
            id: Uuid::new_v4(),
            author_id: Uuid::new_v4(),
            text: format!("text {seq}"),
            created_at: chrono::DateTime::from_timestamp(1_000, 0).unwrap(),
            nonce: format!("n{seq}"),
            kind,
            target_seq: None,
            parent_seq: None,
            emoji: None,
            mentions: Vec::new(),
            automatic: false,
        }
    }

    #[test]
    fn only_the_kinds_asked_become_deliveries_but_every_event_moves_the_cursor() {
        let (sub, ch) = (Uuid::new_v4(), Uuid::new_v4());
        let page = [
            event(ch, 4, EventKind::Message),
            event(ch, 5, EventKind::ReactionAdd),
            event(ch, 6, EventKind::Message),
        ];
        let plan = plan(sub, 3, &page, &[EventKind::Message], Uuid::now_v7);
        assert_eq!(plan.to, 6);
        assert_eq!(
            plan.deliveries.iter().map(|d| d.seq).collect::<Vec<_>>(),
            vec![4, 6]
        );
        let body: serde_json::Value = serde_json::from_str(&plan.deliveries[0].body).unwrap();
        assert_eq!(body["delivery_id"], plan.deliveries[0].id.to_string());
        assert_eq!(body["subscription_id"], sub.to_string());
        assert_eq!(body["seq"], 4);
        assert_eq!(body["kind"], "message");
        assert_eq!(body["event"]["text"], "text 4");
    }

    #[test]
    fn a_hole_stops_the_cursor_before_it() {
        let (sub, ch) = (Uuid::new_v4(), Uuid::new_v4());
        let page = [
            event(ch, 4, EventKind::Message),
            event(ch, 6, EventKind::Message),
        ];
        let plan = plan(sub, 3, &page, &[EventKind::Message], Uuid::now_v7);
        assert_eq!(plan.to, 4);
        assert_eq!(plan.deliveries.len(), 1);
        let nothing = super::plan(sub, 3, &page[1..], &[EventKind::Message], Uuid::now_v7);
        assert_eq!(
            nothing,
            Plan {
                to: 3,
                deliveries: vec![]
            }
        );
    }
}
