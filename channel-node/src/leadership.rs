//! The leadership task of a cluster's channel node: hands the leaderships this node should not
//! hold to the replicas that should (the rule is `chorus_cluster::leadership`; the hand-over,
//! `hand_over.rs`), one at a time; and, when the node stops, hands over every leadership it
//! holds so its shards do not wait out an election.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chorus_cluster::leadership::{LedShard, next_hand_over};
use chorus_cluster::{ClusterMap, DrainReason};
use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::hand_over::HandOverOutcome;
use crate::raft_service::Dispatch;
use crate::raft_types::NodeId;
use crate::shard::ShardReplica;

/// How often the task looks at the leaderships it holds.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The pause after a hand-over before the next one: each pauses one shard's writes, and a node
/// handing back many shards should not pause several at once.
const BETWEEN_HAND_OVERS: Duration = Duration::from_millis(500);

/// The shards `replicas` lead, as the rule wants them, with how long each has been led
/// (tracked in `led_since` across calls).
fn led_shards(
    replicas: &HashMap<u32, ShardReplica>,
    led_since: &mut HashMap<u32, Instant>,
    now: Instant,
) -> Vec<LedShard> {
    let mut led = Vec::new();
    for (&shard, replica) in replicas {
        match replica.led_view() {
            Some((voters, caught_up)) => {
                let since = *led_since.entry(shard).or_insert(now);
                led.push(LedShard {
                    shard,
                    voters,
                    caught_up,
                    led_for: now.saturating_duration_since(since),
                });
            }
            None => {
                led_since.remove(&shard);
            }
        }
    }
    led_since.retain(|shard, _| replicas.contains_key(shard));
    led.sort_by_key(|shard| shard.shard);
    led
}

/// Runs until the node stops. `settle`: how long a leader keeps a shard before handing it to
/// its preferred leader (zero: never; a draining node still hands over).
pub(crate) async fn run(
    node: NodeId,
    dispatch: Arc<Dispatch>,
    map: watch::Receiver<ClusterMap>,
    settle: Duration,
) {
    let mut led_since: HashMap<u32, Instant> = HashMap::new();
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let current = map.borrow().clone();
        if !current.is_created() {
            continue;
        }
        if current.draining.contains_key(&node) {
            // Its replicas are about to move away: hand every leadership over now, together.
            hand_over_all(node, &dispatch).await;
            continue;
        }
        let replicas = dispatch.shards.read().clone();
        let led = led_shards(&replicas, &mut led_since, Instant::now());
        let Some(next) = next_hand_over(node, &current, &led, settle) else {
            continue;
        };
        let (Some(replica), Some(addr)) = (replicas.get(&next.shard), current.addr(next.to)) else {
            continue;
        };
        if let HandOverOutcome::Kept(_) = replica.hand_over(next.to, &addr.to_string()).await {
            // Try this shard again only after another settling time.
            led_since.insert(next.shard, Instant::now());
        }
        tokio::time::sleep(BETWEEN_HAND_OVERS).await;
    }
}

/// Hands every leadership this node holds to another caught-up replica, all at once: the node
/// drains or stops (each shard's writes are held for a few round trips, instead of a failover's
/// lease, probe and routers' time-outs on a node that no longer answers).
pub(crate) async fn hand_over_all(node: NodeId, dispatch: &Dispatch) {
    let Some(map) = dispatch.map.get() else {
        return;
    };
    let mut leaving = map.borrow().clone();
    leaving.draining.insert(node, DrainReason::Drain);
    let replicas = dispatch.shards.read().clone();
    let led = led_shards(&replicas, &mut HashMap::new(), Instant::now());
    let hand_overs = led.iter().filter_map(|shard| {
        let next = next_hand_over(node, &leaving, std::slice::from_ref(shard), Duration::ZERO)?;
        let replica = replicas.get(&next.shard)?.clone();
        let addr = leaving.addr(next.to)?.to_string();
        Some(async move { replica.hand_over(next.to, &addr).await })
    });
    let outcomes = join_all(hand_overs).await;
    let moved = outcomes
        .iter()
        .filter(|o| matches!(o, HandOverOutcome::Moved { .. }))
        .count();
    if !outcomes.is_empty() {
        tracing::info!(
            moved,
            led = outcomes.len(),
            "leaving: leaderships handed over"
        );
    }
}
