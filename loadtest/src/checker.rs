//! The chaos run's verdict: a total-queue check in the manner of Jepsen's, over what clients were
//! told and what the cluster kept.
//!
//! Inputs are plain data, gathered by the scenario: every send attempted (its nonce), every `ack`
//! a client got (nonce → seq), each channel's history as read back over REST (`/events`), and
//! each subscriber's raw stream of `message` events per channel, in arrival order, with the seq it
//! started after. Nothing here does I/O, so the unit tests below feed it crafted histories with
//! each defect and see it caught: a checker that cannot fail would prove nothing.
//!
//! What counts, per channel (all must be 0):
//! - **lost**: an acknowledged nonce that history does not hold; a seq missing from history
//!   (history must be 1, 2, … N); an event of history after a subscriber's start that its stream
//!   never delivered.
//! - **duplicated**: a nonce stored at two seqs; a seq a subscriber received twice.
//! - **unexpected**: a stored event whose nonce was never sent; an event a subscriber received
//!   that history does not hold at that seq (other nonce, or a seq beyond history).
//! - **out of order**: history not in ascending seq; a subscriber receiving a seq below one it
//!   already had (first time seen, so not a duplicate).
//! - **misacknowledged**: an `ack` naming a seq at which history holds another message (the
//!   client was told a position that is not the message's).
//!
//! Sends attempted but never acknowledged may or may not be in history (the client cannot know:
//! a time-out after the commit); those stored are counted as *recovered*, as Jepsen does, and are
//! not defects. Retrying with the same nonce is what keeps them from being stored twice.
//!
//! Partitions: a leader cut off from its followers must acknowledge nothing. The scenario reads
//! the isolated node's commit index of each shard it led just after the cut and just before the
//! heal; [`minority_commits`] counts shards whose commit index moved — an acknowledgement needs a
//! commit, and a commit needs a majority the isolated node does not have.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

/// One event: its seq in the channel and the nonce of the send that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub nonce: String,
}

impl Event {
    pub fn new(seq: u64, nonce: impl Into<String>) -> Self {
        Event {
            seq,
            nonce: nonce.into(),
        }
    }
}

/// An acknowledged send: the channel (an index of the run's channels), its nonce, the seq the
/// `ack` named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub channel: usize,
    pub nonce: String,
    pub seq: u64,
}

/// What one subscriber received in one channel: the seq it started after (its `ready` position),
/// and every `message` event in arrival order, however it came (live, replayed on resume, fetched
/// after `resync_required`).
#[derive(Clone, Debug, Default)]
pub struct Stream {
    pub channel: usize,
    pub start_after: u64,
    pub events: Vec<Event>,
}

/// Everything the run observed.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Per channel, every nonce a client sent at least once.
    pub attempted: Vec<HashSet<String>>,
    pub acks: Vec<Ack>,
    /// Per channel, history as read back over REST, in the order the API returned it.
    pub history: Vec<Vec<Event>>,
    pub streams: Vec<Stream>,
}

/// The counts. Every field but `acknowledged`, `stored`, `recovered` and `delivered` is a defect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub acknowledged: u64,
    pub stored: u64,
    /// Stored, attempted, never acknowledged: a send whose ack the client did not see.
    pub recovered: u64,
    /// Events received by subscribers, in all.
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub unexpected: u64,
    pub out_of_order: u64,
    pub misacknowledged: u64,
    /// The parts of the above that come from subscribers' streams (the rest is history vs acks).
    pub stream_lost: u64,
    pub stream_duplicated: u64,
    pub stream_unexpected: u64,
    pub stream_out_of_order: u64,
}

impl Verdict {
    /// Whether nothing was lost, duplicated, unexpected, out of order or misacknowledged.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.unexpected == 0
            && self.out_of_order == 0
            && self.misacknowledged == 0
    }
}

/// Checks history against the acknowledgements and every stream against history.
pub fn check(observed: &Observed) -> Verdict {
    let mut verdict = Verdict::default();
    let channels = observed.history.len();
    // Per channel: nonce → the seqs history holds it at; seq → nonce.
    let mut at_seq: Vec<BTreeMap<u64, &str>> = vec![BTreeMap::new(); channels];
    let mut seqs_of: Vec<HashMap<&str, Vec<u64>>> = vec![HashMap::new(); channels];
    let mut acked: Vec<HashSet<&str>> = vec![HashSet::new(); channels];
    for ack in &observed.acks {
        if ack.channel < channels {
            acked[ack.channel].insert(&ack.nonce);
        }
    }
    verdict.acknowledged = acked.iter().map(|a| a.len() as u64).sum();

    let no_attempts = HashSet::new();
    for (channel, stored) in observed.history.iter().enumerate() {
        let attempted = observed.attempted.get(channel).unwrap_or(&no_attempts);
        verdict.stored += stored.len() as u64;
        let mut previous = 0u64;
        for event in stored {
            if event.seq <= previous {
                verdict.out_of_order += 1;
            }
            previous = previous.max(event.seq);
            at_seq[channel].insert(event.seq, &event.nonce);
            seqs_of[channel]
                .entry(&event.nonce)
                .or_default()
                .push(event.seq);
        }
        // History is 1..=N: every seq up to the highest is there.
        let highest = at_seq[channel].keys().next_back().copied().unwrap_or(0);
        verdict.lost += highest - at_seq[channel].len() as u64;
        for (nonce, seqs) in &seqs_of[channel] {
            let distinct: HashSet<u64> = seqs.iter().copied().collect();
            verdict.duplicated += distinct.len() as u64 - 1;
            if !attempted.contains(*nonce) {
                verdict.unexpected += 1;
            } else if !acked[channel].contains(nonce) {
                verdict.recovered += 1;
            }
        }
    }

    let mut seen_acks: HashSet<(usize, &str, u64)> = HashSet::new();
    for ack in &observed.acks {
        if !seen_acks.insert((ack.channel, &ack.nonce, ack.seq)) {
            continue; // the same ack twice (a retried send answered as a duplicate) is one ack
        }
        let Some(seqs) = seqs_of.get(ack.channel) else {
            verdict.lost += 1;
            continue;
        };
        match seqs.get(ack.nonce.as_str()) {
            None => verdict.lost += 1,
            Some(stored_at) if !stored_at.contains(&ack.seq) => verdict.misacknowledged += 1,
            Some(_) => {}
        }
    }

    for stream in &observed.streams {
        let empty = BTreeMap::new();
        let history = at_seq.get(stream.channel).unwrap_or(&empty);
        let mut got: HashSet<u64> = HashSet::new();
        let mut highest = stream.start_after;
        for event in &stream.events {
            verdict.delivered += 1;
            if !got.insert(event.seq) {
                verdict.stream_duplicated += 1;
                continue;
            }
            if event.seq <= highest {
                verdict.stream_out_of_order += 1;
            }
            highest = highest.max(event.seq);
            if history.get(&event.seq) != Some(&event.nonce.as_str()) {
                verdict.stream_unexpected += 1;
            }
        }
        verdict.stream_lost += history
            .range(stream.start_after + 1..)
            .filter(|(seq, _)| !got.contains(seq))
            .count() as u64;
    }
    verdict.lost += verdict.stream_lost;
    verdict.duplicated += verdict.stream_duplicated;
    verdict.unexpected += verdict.stream_unexpected;
    verdict.out_of_order += verdict.stream_out_of_order;
    verdict
}

/// One shard a partitioned node led when it was cut off, with its commit index then and at the
/// heal, as the node itself reported them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IsolatedShard {
    pub shard: u32,
    pub commit_at_cut: u64,
    pub commit_at_heal: u64,
}

/// Shards whose isolated (minority-side) leader committed — and so could have acknowledged —
/// something while it was cut off from its followers. Must be 0.
pub fn minority_commits(shards: &[IsolatedShard]) -> u64 {
    shards
        .iter()
        .filter(|s| s.commit_at_heal > s.commit_at_cut)
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clean run on two channels: channel 0 has a1..a3 acked, channel 1 has b1 acked and b2
    /// stored without its ack having arrived (recovered); one subscriber per channel saw all.
    fn clean() -> Observed {
        let attempted = vec![
            ["a1", "a2", "a3", "a4"].map(String::from).into(),
            ["b1", "b2"].map(String::from).into(),
        ];
        let history = vec![
            vec![
                Event::new(1, "a1"),
                Event::new(2, "a2"),
                Event::new(3, "a3"),
            ],
            vec![Event::new(1, "b1"), Event::new(2, "b2")],
        ];
        let acks = vec![
            Ack {
                channel: 0,
                nonce: "a1".into(),
                seq: 1,
            },
            Ack {
                channel: 0,
                nonce: "a2".into(),
                seq: 2,
            },
            Ack {
                channel: 0,
                nonce: "a3".into(),
                seq: 3,
            },
            // Retried after a reconnect, answered as a duplicate with the same seq.
            Ack {
                channel: 0,
                nonce: "a3".into(),
                seq: 3,
            },
            Ack {
                channel: 1,
                nonce: "b1".into(),
                seq: 1,
            },
        ];
        let streams = vec![
            Stream {
                channel: 0,
                start_after: 0,
                events: history[0].clone(),
            },
            // Joined after seq 1: owes only seq 2.
            Stream {
                channel: 1,
                start_after: 1,
                events: vec![Event::new(2, "b2")],
            },
        ];
        Observed {
            attempted,
            acks,
            history,
            streams,
        }
    }

    #[test]
    fn a_clean_history_passes_and_counts_what_was_recovered() {
        let verdict = check(&clean());
        assert!(verdict.clean(), "{verdict:?}");
        assert_eq!(verdict.acknowledged, 4);
        assert_eq!(verdict.stored, 5);
        assert_eq!(verdict.recovered, 1, "b2 was stored without an ack");
        assert_eq!(verdict.delivered, 4);
    }

    #[test]
    fn an_acknowledged_send_missing_from_history_is_lost() {
        let mut run = clean();
        run.history[0].pop(); // a3 was acked at 3
        run.streams[0].events.pop();
        let verdict = check(&run);
        assert_eq!(verdict.lost, 1, "{verdict:?}");
        assert!(!verdict.clean());
    }

    #[test]
    fn a_gap_in_history_is_lost() {
        let mut run = clean();
        run.history[1] = vec![Event::new(1, "b1"), Event::new(3, "b2")];
        run.streams[1].events = vec![Event::new(3, "b2")];
        let verdict = check(&run);
        assert_eq!(verdict.lost, 1, "seq 2 is missing: {verdict:?}");
    }

    #[test]
    fn a_nonce_stored_twice_is_duplicated() {
        let mut run = clean();
        run.history[0].push(Event::new(4, "a2"));
        run.streams[0].events.push(Event::new(4, "a2"));
        let verdict = check(&run);
        assert_eq!(verdict.duplicated, 1, "{verdict:?}");
        assert_eq!(verdict.lost + verdict.unexpected + verdict.out_of_order, 0);
    }

    #[test]
    fn a_stored_message_nobody_sent_is_unexpected() {
        let mut run = clean();
        run.history[1].push(Event::new(3, "zz"));
        run.streams[1].events.push(Event::new(3, "zz"));
        let verdict = check(&run);
        assert_eq!(verdict.unexpected, 1, "{verdict:?}");
    }

    #[test]
    fn history_out_of_seq_order_is_out_of_order() {
        let mut run = clean();
        run.history[0].swap(1, 2);
        let verdict = check(&run);
        assert_eq!(verdict.out_of_order, 1, "{verdict:?}");
    }

    #[test]
    fn an_ack_naming_another_message_s_seq_is_misacknowledged() {
        let mut run = clean();
        run.acks[1].seq = 3; // a2 is at 2
        let verdict = check(&run);
        assert_eq!(verdict.misacknowledged, 1, "{verdict:?}");
    }

    #[test]
    fn a_subscriber_missing_an_event_has_lost_it() {
        let mut run = clean();
        run.streams[0].events.remove(1);
        let verdict = check(&run);
        assert_eq!((verdict.lost, verdict.stream_lost), (1, 1), "{verdict:?}");
    }

    #[test]
    fn a_subscriber_receiving_an_event_twice_has_a_duplicate() {
        let mut run = clean();
        run.streams[0].events.insert(2, Event::new(2, "a2")); // replayed again after a resume
        let verdict = check(&run);
        assert_eq!(
            (verdict.duplicated, verdict.stream_duplicated),
            (1, 1),
            "{verdict:?}"
        );
        assert_eq!(verdict.out_of_order, 0, "a repeat is not also a reorder");
    }

    #[test]
    fn a_subscriber_receiving_events_out_of_seq_order_is_caught() {
        let mut run = clean();
        run.streams[0].events.swap(0, 1);
        let verdict = check(&run);
        assert_eq!(verdict.stream_out_of_order, 1, "{verdict:?}");
        assert_eq!(verdict.out_of_order, 1);
    }

    #[test]
    fn a_subscriber_receiving_what_history_does_not_hold_is_unexpected() {
        let mut run = clean();
        // Seq 3 of channel 0 is a3, not a4 (a minority leader's uncommitted entry, say).
        run.streams[0].events[2] = Event::new(3, "a4");
        run.streams[1].events.push(Event::new(9, "b9"));
        let verdict = check(&run);
        assert_eq!(verdict.stream_unexpected, 2, "{verdict:?}");
    }

    #[test]
    fn an_isolated_leader_whose_commit_index_moved_is_counted() {
        let shards = [
            IsolatedShard {
                shard: 1,
                commit_at_cut: 40,
                commit_at_heal: 40,
            },
            IsolatedShard {
                shard: 5,
                commit_at_cut: 12,
                commit_at_heal: 13,
            },
        ];
        assert_eq!(minority_commits(&shards), 1);
        assert_eq!(minority_commits(&shards[..1]), 0);
    }
}
