//! State that only some connections need — the users whose presence they follow, the channels
//! they said they were typing in, the frames the rate limiter refused — allocated on first use.
//! An idle connection carries one pointer for all of it: its task's future is most of an idle
//! connection's memory, and these fields used to be a tenth of it.

use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::flood::Refusals;

/// See the module documentation.
#[derive(Default)]
pub(super) struct Occasional(Option<Box<State>>);

#[derive(Default)]
pub(super) struct State {
    /// Users whose presence this connection follows (`presence_subscribe`), at most
    /// `MAX_PRESENCE_SUBSCRIPTIONS`.
    pub following: Vec<Uuid>,
    /// Channels this connection said it was typing in, and when: only those need a "stopped
    /// typing" when a message is sent, which spares the presence store a call per message.
    typing_in: Vec<(Uuid, Instant)>,
    /// Frames refused by the rate limiter lately; too many in one window closes the connection
    /// (4004, `flood.rs`).
    pub refusals: Refusals,
}

impl Occasional {
    /// The state, allocated if this is its first use.
    pub fn get_mut(&mut self) -> &mut State {
        self.0.get_or_insert_with(Box::default)
    }

    pub fn following(&self) -> &[Uuid] {
        self.0.as_ref().map_or(&[], |state| &state.following)
    }

    /// Stops following anyone; whom it followed.
    pub fn take_following(&mut self) -> Vec<Uuid> {
        self.0
            .as_mut()
            .map(|state| std::mem::take(&mut state.following))
            .unwrap_or_default()
    }

    /// Notes `typing` in `channel` at `now`, forgetting what is older than `memory`.
    pub fn typing(&mut self, channel: Uuid, now: Instant, memory: Duration) {
        let typing_in = &mut self.get_mut().typing_in;
        typing_in.retain(|(c, at)| *c != channel && now.duration_since(*at) < memory);
        typing_in.push((channel, now));
    }

    /// Forgets that this connection was typing in `channel`: true if it had said so (and the
    /// indicator must be stopped).
    pub fn forget_typing(&mut self, channel: Uuid) -> bool {
        let Some(state) = self.0.as_mut() else {
            return false;
        };
        match state.typing_in.iter().position(|(c, _)| *c == channel) {
            Some(at) => {
                state.typing_in.swap_remove(at);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMORY: Duration = Duration::from_secs(5);

    #[test]
    fn nothing_is_allocated_until_first_use() {
        let mut occasional = Occasional::default();
        assert!(occasional.following().is_empty());
        assert!(occasional.take_following().is_empty());
        assert!(!occasional.forget_typing(Uuid::now_v7()));
        assert!(occasional.0.is_none());
        occasional.get_mut().following = vec![Uuid::now_v7()];
        assert_eq!(occasional.following().len(), 1);
        assert_eq!(occasional.take_following().len(), 1);
        assert!(occasional.following().is_empty());
    }

    #[test]
    fn typing_is_forgotten_once_per_channel() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut occasional = Occasional::default();
        let now = Instant::now();
        occasional.typing(a, now, MEMORY);
        occasional.typing(a, now, MEMORY);
        occasional.typing(b, now, MEMORY);
        assert!(occasional.forget_typing(a));
        assert!(
            !occasional.forget_typing(a),
            "a was noted once, however often it was said"
        );
        assert!(occasional.forget_typing(b));
    }

    #[test]
    fn typing_older_than_its_memory_is_dropped_when_more_is_noted() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut occasional = Occasional::default();
        let start = Instant::now();
        occasional.typing(a, start, MEMORY);
        occasional.typing(b, start + MEMORY, MEMORY);
        assert!(
            !occasional.forget_typing(a),
            "a's indicator had already lapsed"
        );
        assert!(occasional.forget_typing(b));
    }
}
