//! A connection's session: `identify` starts one, `resume` takes one back (replaying what the
//! client missed in each channel it names), and either way the client gets `ready` or `resumed`.

use chorus_core::bots::Scope;
use chorus_protocol::{ChannelPosition, CloseCode, ServerFrame, UserInfo};

use super::errors::{internal, session_end};
use super::handshake::Opening;
use super::{Connection, End, Subscription};

impl Connection {
    pub(super) async fn open_session(&mut self, opening: Opening) -> Result<(), End> {
        let now = chrono::Utc::now();
        match opening {
            Opening::Identify { .. } => {
                let session_id = self
                    .shared
                    .deps
                    .sessions
                    .create(self.user, self.holder(), now)
                    .await
                    .map_err(session_end)?;
                self.session_id = Some(session_id);
                let user = self.load_user().await?;
                let mut channels = self
                    .shared
                    .deps
                    .store
                    .channel_ids_of(self.user)
                    .await
                    .map_err(|err| internal("channel list", err))?;
                channels.truncate(self.shared.config.max_subscriptions);
                if self.lacks(Scope::ChannelsRead) {
                    channels.clear();
                }
                // Subscribe before reading positions so no event falls between the two.
                for channel in &channels {
                    self.shared
                        .hub
                        .subscribe(*channel, self.id, self.outbox.clone());
                }
                let seqs = self
                    .shared
                    .deps
                    .router
                    .last_seqs(&channels)
                    .await
                    .map_err(|err| internal("last seqs", err))?;
                let mut positions = Vec::with_capacity(channels.len());
                for (channel, last_seq) in channels.into_iter().zip(seqs) {
                    self.subscriptions.insert(
                        channel,
                        Subscription {
                            last_seq,
                            can_post: None,
                        },
                    );
                    positions.push(ChannelPosition {
                        channel_id: channel,
                        last_seq,
                    });
                }
                let unreads = self.badges(&positions).await;
                self.reply(&ServerFrame::Ready {
                    session_id,
                    user,
                    channels: positions,
                    unreads,
                });
            }
            Opening::Resume {
                session_id,
                channels,
                ..
            } => {
                self.shared
                    .deps
                    .sessions
                    .resume(session_id, self.user, self.holder(), now)
                    .await
                    .map_err(session_end)?;
                self.session_id = Some(session_id);
                let mut replayed = 0;
                let positions: Vec<_> = channels
                    .into_iter()
                    .take(self.shared.config.max_subscriptions)
                    .collect();
                // Every channel's access in one query: a reconnect storm is thousands of these.
                let ids: Vec<_> = positions.iter().map(|p| p.channel_id).collect();
                let mut accesses = match self.accesses(&ids).await {
                    Some(accesses) => accesses.into_iter().map(Some).collect(),
                    None => vec![None; ids.len()],
                };
                // `accesses` has one entry per channel, in order (the store's contract).
                accesses.resize(ids.len(), None);
                for (position, access) in positions.into_iter().zip(accesses) {
                    // A channel the user may no longer read is answered with its error frame;
                    // the others resume.
                    match self
                        .subscribe_with(position.channel_id, Some(position.last_seq), access)
                        .await
                    {
                        Ok(count) => replayed += count,
                        Err(error) => self.reply(&error),
                    }
                }
                self.reply(&ServerFrame::Resumed {
                    session_id,
                    replayed,
                });
            }
        }
        // From here on the user's notifications and read-state changes reach this connection.
        self.shared.user_watch.add(self.user, self.id, &self.outbox);
        Ok(())
    }

    pub(super) async fn load_user(&self) -> Result<UserInfo, End> {
        match self.shared.deps.store.user(self.user).await {
            Ok(Some(user)) => Ok(UserInfo {
                id: user.id,
                display_name: user.display_name,
            }),
            Ok(None) => Err(End::Close(CloseCode::AuthenticationFailed)),
            Err(err) => Err(internal("user lookup", err)),
        }
    }
}
