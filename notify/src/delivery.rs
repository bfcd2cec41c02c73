//! The last step of every notification: focus mode's gate, the once-only record, and the send.
//!
//! For each (user, notification) decided upstream (by the rules for a message, or by the API for
//! an invitation), a user with no open focus session gets it as before: recorded once, then sent
//! to their connections. A user in focus gets it only when its priority score
//! (`chorus_core::focus::priority`) passes their rules; otherwise it is recorded *held*, in the
//! same transaction that checks the session is still open (`FocusStore::hold_notifications`), and
//! reaches them in the digest when the session ends (`crate::focus`).

use std::collections::HashMap;

use chorus_core::focus::priority::{Candidate, passes, priority_score};
use chorus_core::focus::{HoldOutcome, HoldRequest, InFocus};
use chorus_core::{MetadataStore, StoreError};
use chorus_presence::PresenceStore;
use chorus_protocol::{Notification, ServerFrame};
use uuid::Uuid;

use crate::notifier::send;

/// A notification on its way to `user`; `text` is what keywords are matched in (the message's
/// whole text, or the workspace's name for an invitation).
pub struct Pending<'a> {
    pub user: Uuid,
    pub notification: Notification,
    pub text: &'a str,
}

/// What became of a batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Sent to the user's connections now.
    pub sent: usize,
    /// Held for a focus digest.
    pub held: usize,
    /// Users in focus (each with their session) who were notified of a DM in this batch, and by
    /// whom: the candidates for an automatic reply.
    pub dms_in_focus: Vec<(InFocus, Uuid)>,
}

/// Records and sends `pending`, holding what focus mode holds back.
pub async fn deliver(
    metadata: &dyn MetadataStore,
    presence: &dyn PresenceStore,
    pending: Vec<Pending<'_>>,
) -> Result<Delivered, StoreError> {
    if pending.is_empty() {
        return Ok(Delivered::default());
    }
    let users: Vec<Uuid> = pending.iter().map(|p| p.user).collect();
    let in_focus: HashMap<Uuid, InFocus> = metadata
        .focus()
        .in_focus(&users)
        .await?
        .into_iter()
        .map(|f| (f.session.user_id, f))
        .collect();
    let mut now = Vec::new();
    let mut hold = Vec::new();
    let mut delivered = Delivered::default();
    for p in pending {
        let Some(focus) = in_focus.get(&p.user) else {
            now.push((p.user, p.notification));
            continue;
        };
        if p.notification.kind == chorus_protocol::NotificationKind::Dm {
            delivered
                .dms_in_focus
                .push((focus.clone(), p.notification.actor_id));
        }
        let score = priority_score(
            &Candidate {
                kind: p.notification.kind,
                actor: p.notification.actor_id,
                channel: p.notification.channel_id,
                text: p.text,
            },
            &focus.rules,
        );
        if passes(score, &focus.rules) {
            now.push((p.user, p.notification));
        } else {
            hold.push(HoldRequest {
                user: p.user,
                session: focus.session.id,
                priority: score,
                notification: p.notification,
            });
        }
    }
    let mut to_send = Vec::new();
    if !hold.is_empty() {
        let outcomes = metadata.focus().hold_notifications(&hold).await?;
        for (request, outcome) in hold.into_iter().zip(outcomes) {
            match outcome {
                HoldOutcome::Held => delivered.held += 1,
                HoldOutcome::Duplicate => {}
                // The session ended between the look and the hold: it is the user's now.
                HoldOutcome::Deliver => to_send.push((request.user, request.notification)),
            }
        }
    }
    if !now.is_empty() {
        let fresh = metadata.notifications().record_notifications(&now).await?;
        to_send.extend(
            now.into_iter()
                .zip(fresh)
                .filter_map(|(item, fresh)| fresh.then_some(item)),
        );
    }
    for (user, notification) in to_send {
        delivered.sent += 1;
        send(presence, user, &ServerFrame::Notification(notification)).await;
    }
    metrics::counter!("chorus_notifications_held_total").increment(delivered.held as u64);
    Ok(delivered)
}
