//! The cluster, end to end: real `chorus` processes (3 channel nodes, 2 gateways) over QUIC with
//! mutual TLS on loopback, on PostgreSQL and Redis, killed with SIGKILL.

mod common;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use chorus_protocol::{ClientFrame, ErrorCode, MessageEvent, ServerFrame};
use common::cluster::LocalCluster;
use common::{Client, Rest};
use futures_util::StreamExt;
use serde_json::json;
use uuid::Uuid;

/// Shards of the test clusters: more than nodes, so every node leads some and follows others.
const SHARDS: u32 = 8;

/// `count` public channels of one workspace owned by `owner`, each joined by `member`.
async fn channels(rest: &Rest, owner: &str, member: &str, count: usize) -> Vec<Uuid> {
    let (workspace, first) = rest.team(owner, &[member]).await;
    let mut channels = vec![first];
    while channels.len() < count {
        let name = format!("c-{}", &Uuid::new_v4().simple().to_string()[..10]);
        let (status, body) = rest
            .post(
                &format!("/v1/workspaces/{workspace}/channels"),
                Some(owner),
                json!({"name": name}),
            )
            .await;
        assert_eq!(status, 201, "channel: {body}");
        let channel: Uuid = body["id"].as_str().unwrap().parse().unwrap();
        let (status, body) = rest
            .post(
                &format!("/v1/channels/{channel}/join"),
                Some(member),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "join: {body}");
        channels.push(channel);
    }
    channels
}

fn send(channel: Uuid, nonce: &str) -> ClientFrame {
    ClientFrame::Send {
        channel_id: channel,
        nonce: nonce.into(),
        text: format!("text of {nonce}"),
        parent_seq: None,
    }
}

/// Every event of `channel` in history, oldest first (all pages).
async fn history(rest: &Rest, token: &str, channel: Uuid) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let (status, body) = rest
            .get(
                &format!("/v1/channels/{channel}/events?after={after}&limit=100"),
                token,
            )
            .await;
        assert_eq!(status, 200, "events: {body}");
        let page = body["events"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            return events;
        }
        after = page.last().unwrap()["seq"].as_u64().unwrap();
        events.extend(page);
    }
}

/// Receives message events until `want` have arrived per channel; fails on a duplicate or a gap.
async fn receive(
    client: &mut Client,
    want: &HashMap<Uuid, usize>,
) -> HashMap<Uuid, Vec<MessageEvent>> {
    let mut got: HashMap<Uuid, Vec<MessageEvent>> = HashMap::new();
    let done = |got: &HashMap<Uuid, Vec<MessageEvent>>| {
        want.iter()
            .all(|(c, n)| got.get(c).map_or(0, Vec::len) >= *n)
    };
    while !done(&got) {
        if let ServerFrame::Message(event) = client.next().await {
            let seen = got.entry(event.channel_id).or_default();
            let expected = seen.last().map_or(1, |e| e.seq + 1);
            assert_eq!(
                event.seq, expected,
                "channel {}: out of order or duplicated",
                event.channel_id
            );
            seen.push(event);
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_on_one_gateway_reach_subscribers_on_the_other_once_in_order() {
    let cluster = LocalCluster::start(SHARDS).await;
    let (rest1, rest2) = (cluster.rest(0), cluster.rest(1));
    let (_, alice) = rest1.user("alice").await;
    let (_, bob) = rest2.user("bob").await;
    let channels = channels(&rest1, &alice, &bob, 50).await;
    let shards: std::collections::BTreeSet<u32> = {
        let mut shards = std::collections::BTreeSet::new();
        for c in &channels {
            shards.insert(cluster.shard_of(*c).await);
        }
        shards
    };
    assert!(
        shards.len() > 3,
        "50 channels spread over the shards: {shards:?}"
    );

    let (mut bob_ws, ready) = Client::identify(cluster.ws(1), &bob).await;
    assert!(matches!(ready, ServerFrame::Ready { ref channels, .. } if channels.len() == 50));
    let (mut alice_ws, _) = Client::identify(cluster.ws(0), &alice).await;
    let per_channel = 4;
    let mut acks: HashMap<String, u64> = HashMap::new();
    // Rounds of 50 sends: a connection may have at most 64 waiting for their acks.
    for round in 0..per_channel {
        for channel in &channels {
            alice_ws
                .send(&send(*channel, &format!("{channel}-{round}")))
                .await;
        }
        while acks.len() < channels.len() * (round + 1) {
            match alice_ws.next().await {
                ServerFrame::Ack {
                    nonce,
                    seq,
                    duplicate,
                    ..
                } => {
                    assert!(!duplicate);
                    acks.insert(nonce, seq);
                }
                other @ ServerFrame::Error { .. } => panic!("a send failed: {other:?}"),
                _ => {}
            }
        }
    }
    let want = channels.iter().map(|c| (*c, per_channel)).collect();
    let received = receive(&mut bob_ws, &want).await;
    for channel in &channels {
        let events = &received[channel];
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=per_channel as u64).collect::<Vec<_>>());
        for (round, event) in events.iter().enumerate() {
            assert_eq!(
                event.nonce,
                format!("{channel}-{round}"),
                "sent order is channel order"
            );
            assert_eq!(acks[&event.nonce], event.seq);
        }
    }
    // History read through the other gateway agrees.
    let stored = history(&rest2, &bob, channels[7]).await;
    assert_eq!(stored.len(), per_channel);

    // Archiving through one process's API is in force on the other gateway from its answer on:
    // the channel's Raft group refuses the sends, whether or not the notice has arrived.
    let archived = channels[3];
    let (status, body) = rest1
        .post(
            &format!("/v1/channels/{archived}/archive"),
            Some(&alice),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for n in 0..5 {
        bob_ws.send(&send(archived, &format!("archived-{n}"))).await;
    }
    for _ in 0..5 {
        match bob_ws
            .wait_for(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
            .await
        {
            ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::Forbidden),
            other => panic!("a send to an archived channel was accepted: {other:?}"),
        }
    }
    let (status, body) = rest2
        .post(
            &format!("/v1/channels/{archived}/unarchive"),
            Some(&alice),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    bob_ws.send(&send(archived, "unarchived")).await;
    match bob_ws
        .wait_for(|f| matches!(f, ServerFrame::Ack { .. } | ServerFrame::Error { .. }))
        .await
    {
        ServerFrame::Ack { seq, .. } => assert_eq!(seq, per_channel as u64 + 1),
        other => panic!("a send after unarchiving failed: {other:?}"),
    }

    // Every role is watched the same way: each process serves /metrics and /readyz.
    let scrape = |ops: std::net::SocketAddr| async move {
        let text = reqwest::get(format!("http://{ops}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let ready = reqwest::get(format!("http://{ops}/readyz")).await.unwrap();
        (text, ready.status().as_u16(), ready.text().await.unwrap())
    };
    let (mut leaders, mut published) = (0, false);
    for node in cluster.nodes.values() {
        let (text, status, body) = scrape(node.ops.unwrap()).await;
        assert_eq!(status, 200, "{} not ready: {body}", node.name);
        assert!(body.contains(r#""raft_groups":"ok""#), "{body}");
        assert!(
            text.contains(r#"chorus_raft_term{group="chorus-shard-"#),
            "{text}"
        );
        published |= text.contains(r#"chorus_bus_published_total{bus="redis"}"#);
        leaders += text
            .lines()
            .filter(|l| l.starts_with("chorus_raft_is_leader{") && l.ends_with(" 1"))
            .count();
    }
    assert_eq!(
        leaders, SHARDS as usize,
        "one leader per shard across the nodes"
    );
    assert!(
        published,
        "the leaders' history writers published on the Redis bus"
    );
    for gateway in &cluster.gateways {
        let (text, status, body) = scrape(gateway.ops.unwrap()).await;
        assert_eq!(status, 200, "{} not ready: {body}", gateway.name);
        assert!(body.contains(r#""channel_service":"ok""#), "{body}");
        assert!(text.contains("chorus_gateway_deliveries_total"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_shard_leader_under_load_loses_duplicates_and_reorders_nothing() {
    let mut cluster = LocalCluster::start(SHARDS).await;
    let (rest1, rest2) = (cluster.rest(0), cluster.rest(1));
    let (_, alice) = rest1.user("alice").await;
    let (_, bob) = rest1.user("bob").await;
    let all = channels(&rest1, &alice, &bob, 12).await;
    // The channels that share the first channel's shard, whose leader dies.
    let shard = cluster.shard_of(all[0]).await;
    let mut victims = Vec::new();
    for c in &all {
        if cluster.shard_of(*c).await == shard {
            victims.push(*c);
        }
    }
    let leader = cluster.leader_of(shard).await;

    let (mut bob_ws, _) = Client::identify(cluster.ws(1), &bob).await;
    let (mut alice_ws, _) = Client::identify(cluster.ws(0), &alice).await;
    // Sender: a send every 5 ms round-robin over all channels; any error is retried with the same
    // nonce 50 ms later until it is acknowledged, as a client would after a pause. Retries wait in
    // a queue so that the acknowledgements keep being read meanwhile.
    let mut acked: BTreeMap<String, (Uuid, u64, Instant)> = BTreeMap::new();
    let mut unacked: HashMap<String, Uuid> = HashMap::new();
    let mut retries: VecDeque<(Instant, String)> = VecDeque::new();
    let started = Instant::now();
    let mut killed_at = None;
    let mut sent = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while started.elapsed() < Duration::from_secs(6) || !unacked.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "sends never acknowledged: {unacked:?}"
        );
        if killed_at.is_none() && started.elapsed() >= Duration::from_secs(2) {
            cluster.nodes.get_mut(&leader).unwrap().kill().await;
            killed_at = Some(Instant::now());
        }
        let next_retry = retries.front().map(|(at, _)| *at);
        tokio::select! {
            _ = tick.tick(), if started.elapsed() < Duration::from_secs(6) => {
                let channel = all[sent % all.len()];
                let nonce = format!("n-{sent}");
                sent += 1;
                unacked.insert(nonce.clone(), channel);
                alice_ws.send(&send(channel, &nonce)).await;
            }
            _ = tokio::time::sleep_until(next_retry.unwrap_or_else(Instant::now).into()), if next_retry.is_some() => {
                let (_, nonce) = retries.pop_front().unwrap();
                if let Some(channel) = unacked.get(&nonce) {
                    alice_ws.send(&send(*channel, &nonce)).await;
                }
            }
            frame = alice_ws.next() => match frame {
                ServerFrame::Ack { nonce, seq, channel_id, .. } => {
                    unacked.remove(&nonce);
                    acked.entry(nonce).or_insert((channel_id, seq, Instant::now()));
                }
                ServerFrame::Error { nonce: Some(nonce), code, message, .. } => {
                    eprintln!("send {nonce} refused at {:?}: {code:?} {message}", started.elapsed());
                    // A pause far shorter than the router's deadline is the router's to ride
                    // out: the client may see its in-flight cap, never `unavailable`.
                    assert_ne!(code, ErrorCode::Unavailable, "send {nonce}: {message}");
                    retries.push_back((Instant::now() + Duration::from_millis(50), nonce));
                }
                _ => {}
            },
        }
    }
    let killed_at = killed_at.unwrap();
    cluster.keep_logs_if_asked();

    // The write-unavailability window on the victims' shard: the longest silence between two
    // acknowledgements of its channels around the kill.
    let mut victim_acks: Vec<Instant> = acked
        .values()
        .filter(|(c, ..)| victims.contains(c))
        .map(|(.., at)| *at)
        .collect();
    victim_acks.sort();
    let window = victim_acks
        .windows(2)
        .filter(|w| w[1] >= killed_at)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    println!(
        "leader kill: {} sends acknowledged; write unavailability of shard {shard}: {} ms",
        acked.len(),
        window.as_millis()
    );

    // Checker: every acknowledged send is in history once, at its seq; history is gapless; the
    // subscriber on the other gateway saw exactly history, in order.
    let mut want = HashMap::new();
    for channel in &all {
        let stored = history(&rest2, &bob, *channel).await;
        let seqs: Vec<u64> = stored.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            seqs,
            (1..=stored.len() as u64).collect::<Vec<_>>(),
            "gapless history"
        );
        let mut nonces = std::collections::HashSet::new();
        for event in &stored {
            let nonce = event["nonce"].as_str().unwrap().to_string();
            assert!(
                nonces.insert(nonce.clone()),
                "duplicated in history: {nonce}"
            );
            let (acked_channel, acked_seq, _) =
                acked.get(&nonce).expect("unacknowledged event stored");
            assert_eq!(
                (*acked_channel, *acked_seq),
                (*channel, event["seq"].as_u64().unwrap())
            );
        }
        want.insert(*channel, stored.len());
    }
    let total: usize = want.values().sum();
    assert_eq!(total, acked.len(), "lost: acknowledged but not in history");
    let received = receive(&mut bob_ws, &want).await;
    for (channel, events) in received {
        for event in events {
            assert_eq!(
                acked[&event.nonce],
                (channel, event.seq, acked[&event.nonce].2)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_catches_up_and_can_take_over() {
    let mut cluster = LocalCluster::start(SHARDS).await;
    let rest = cluster.rest(0);
    let (_, alice) = rest.user("alice").await;
    let (_, bob) = rest.user("bob").await;
    let channel = channels(&rest, &alice, &bob, 1).await[0];
    let shard = cluster.shard_of(channel).await;
    let leader = cluster.leader_of(shard).await;
    let follower = *cluster.nodes.keys().find(|id| **id != leader).unwrap();

    cluster.nodes.get_mut(&follower).unwrap().kill().await;
    let (mut alice_ws, _) = Client::identify(cluster.ws(0), &alice).await;
    for i in 0..30 {
        alice_ws
            .post(channel, &format!("while-down-{i}"), "x")
            .await;
    }
    cluster.nodes.get_mut(&follower).unwrap().spawn().await;
    // Caught up: the restarted replica holds and applied the leader's whole log.
    let mut caught_up = false;
    for _ in 0..100 {
        let lead = cluster.shard_progress(leader, shard).await.unwrap();
        if cluster
            .shard_progress(follower, shard)
            .await
            .is_some_and(|f| f.0 >= lead.0 && f.1 >= lead.1)
        {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        caught_up,
        "node {follower} did not catch up on shard {shard}"
    );

    // The leader dies; the two others (one of them the restarted node) elect one and go on.
    cluster.nodes.get_mut(&leader).unwrap().kill().await;
    let new_leader = cluster.leader_of(shard).await;
    assert_ne!(new_leader, leader);
    let (_, seq) = alice_ws.post(channel, "after-failover", "y").await;
    assert_eq!(seq, 31);
    assert_eq!(history(&rest, &bob, channel).await.len(), 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_without_the_cluster_certificate_is_refused() {
    let cluster = LocalCluster::start(SHARDS).await;
    let foreign = tempfile::tempdir().unwrap();
    chorus_cluster::transport::generate_dev_certs(foreign.path(), &["intruder".into()]).unwrap();
    let intruder = chorus_cluster::transport::QuicEndpoint::client(
        &chorus_cluster::transport::TlsFiles::in_dir(foreign.path(), "intruder"),
        Default::default(),
    )
    .unwrap();
    for addr in cluster.transport.values() {
        // A Raft vote request to the control group: refused at the handshake.
        let refused = intruder
            .call(
                *addr,
                0,
                chorus_cluster::rpc::method::RAFT_VOTE,
                bytes::Bytes::from_static(b"{}"),
                Duration::from_secs(3),
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(chorus_cluster::transport::TransportError::Connect(_))
            ),
            "{refused:?}"
        );
    }
    // The cluster's own admin certificate is accepted.
    assert!(cluster.status(1).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_gateway_resume_on_the_other_missing_and_repeating_nothing() {
    const PER_CHANNEL: u64 = 30;
    let mut cluster = LocalCluster::start(SHARDS).await;
    let rest1 = cluster.rest(0);
    let (_, alice) = rest1.user("alice").await;
    let (_, bob) = rest1.user("bob").await;
    let all = channels(&rest1, &bob, &alice, 4).await;

    let (mut alice_ws, ready) = Client::identify(cluster.ws(0), &alice).await;
    let ServerFrame::Ready { session_id, .. } = ready else {
        unreachable!()
    };
    // Bob writes through gateway 2 the whole time, round-robin over the channels.
    let (mut bob_ws, _) = Client::identify(cluster.ws(1), &bob).await;
    let writer_channels = all.clone();
    let writer = tokio::spawn(async move {
        for round in 0..PER_CHANNEL {
            for channel in &writer_channels {
                let nonce = format!("{channel}-{round}");
                let (_, seq) = bob_ws.post(*channel, &nonce, &nonce).await;
                assert_eq!(seq, round + 1);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }
    });

    // Alice reads on gateway 1 until it is killed under her, partway through.
    let mut seen: HashMap<Uuid, Vec<u64>> = HashMap::new();
    let mut killed = false;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), alice_ws.ws.next())
            .await
            .expect("gateway 1 went silent");
        let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) = message else {
            assert!(killed, "the socket ended before the kill: {message:?}");
            break;
        };
        if let ServerFrame::Message(event) = ServerFrame::parse(&text).unwrap() {
            seen.entry(event.channel_id).or_default().push(event.seq);
        }
        if !killed && seen.values().map(Vec::len).sum::<usize>() >= 20 {
            cluster.gateways[0].kill().await;
            killed = true;
        }
    }

    // She resumes on gateway 2 from what she saw, then reads live until she has everything.
    let mut alice_ws = Client::connect(cluster.ws(1)).await;
    let positions = all
        .iter()
        .map(|c| chorus_protocol::ChannelPosition {
            channel_id: *c,
            last_seq: seen.get(c).and_then(|s| s.last().copied()).unwrap_or(0),
        })
        .collect();
    alice_ws
        .send(&ClientFrame::Resume {
            intents: None,
            token: alice.clone(),
            session_id,
            channels: positions,
        })
        .await;
    let mut resumed = false;
    while seen.values().map(Vec::len).sum::<usize>() < all.len() * PER_CHANNEL as usize || !resumed
    {
        match alice_ws.next().await {
            ServerFrame::Message(event) => {
                seen.entry(event.channel_id).or_default().push(event.seq);
            }
            ServerFrame::Resumed { session_id: s, .. } => {
                assert_eq!(s, session_id);
                resumed = true;
            }
            _ => {}
        }
    }
    writer.await.unwrap();
    for channel in &all {
        assert_eq!(
            seen[channel],
            (1..=PER_CHANNEL).collect::<Vec<_>>(),
            "channel {channel}: every event once, in order, across the gateway's death"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_to_a_user_in_focus_gets_an_automatic_reply_from_the_channel_nodes() {
    let cluster = LocalCluster::start(SHARDS).await;
    let (rest1, rest2) = (cluster.rest(0), cluster.rest(1));
    let (_, alice) = rest1.user("alice").await;
    let (bob_id, bob) = rest2.user("bob").await;
    let (workspace, _) = rest1.team(&alice, &[&bob]).await;
    let (status, dm) = rest1
        .post(
            &format!("/v1/workspaces/{workspace}/dms"),
            Some(&alice),
            json!({"user_ids": [bob_id]}),
        )
        .await;
    assert!(status == 200 || status == 201, "{dm}");
    let dm: Uuid = dm["id"].as_str().unwrap().parse().unwrap();
    let (status, body) = rest2
        .call(
            "PUT",
            "/v1/users/me/focus/settings",
            Some(&bob),
            Some(json!({"auto_reply": "heads down until noon"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = rest2
        .post("/v1/users/me/focus", Some(&bob), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");

    // Alice writes through one gateway and listens on the other: the reply is made by the
    // notifier of the DM's shard leader, through the cluster's router.
    let (mut alice_ws, _) = Client::identify(cluster.ws(1), &alice).await;
    let (status, sent) = rest1
        .post(
            &format!("/v1/channels/{dm}/messages"),
            Some(&alice),
            json!({"text": "got a minute?", "nonce": "dm-1"}),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    // Just after the cluster starts, the reply may wait for its node's router to connect, and it
    // is resubmitted for up to ~8 s while its shard has no leader (auto_reply_submit.rs).
    let reply = alice_ws
        .wait_for_within(
            Duration::from_secs(30),
            |f| matches!(f, ServerFrame::Message(m) if m.author_id == bob_id),
        )
        .await;
    let ServerFrame::Message(reply) = reply else {
        unreachable!()
    };
    assert_eq!(
        (reply.channel_id, reply.automatic, reply.text.as_str()),
        (dm, true, "heads down until noon")
    );
    assert_eq!(reply.seq, sent["seq"].as_u64().unwrap() + 1);
}
