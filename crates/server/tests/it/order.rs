//! Strict per-stream callback order: after a receiver outage, every stream's events are
//! acknowledged in the order they were created, each exactly once.

use crate::common::*;
use std::collections::{BTreeMap, HashMap};

/// Refusals per callback path (shared by both streams): every early event needs retries,
/// while the test stays short (`retry_interval_s = 1` in the harness).
const REFUSALS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_acknowledged_in_creation_order_per_stream_after_an_outage() {
    let mut s = TestServer::start("").await;
    for path in ["/begin", "/end", "/record"] {
        s.receiver.script(path, &[503; REFUSALS]);
    }
    let clip = fixture(CLIP_10S);
    let streams = ["order_a", "order_b"];
    for name in streams {
        assert!(s.publish("live", name, &clip).await, "{name}");
    }

    // Event 100 is created last for each stream (after its push end), so once both are
    // acknowledged every event has been through the receiver.
    let mut all: Vec<Delivery> = Vec::new();
    let mut files_acked = 0;
    while files_acked < streams.len() {
        let d = s.receiver.next().await;
        if d.status == 200 && d.body["event_type"] == 100 {
            files_acked += 1;
        }
        all.push(d);
    }

    // A graceful stop waits until no due callback is left and the notifier has recorded every
    // answer; whatever it still sent (a duplicate would show up here) is collected too.
    let catalog = s.running.catalog().clone();
    s.running.shutdown().await;
    while let Some(d) = s.receiver.try_next() {
        all.push(d);
    }

    // The outage really happened: every scripted refusal was used.
    let refused = all.iter().filter(|d| d.status == 503).count();
    assert_eq!(refused, 3 * REFUSALS, "{all:#?}");

    // Creation order straight from the outbox (ids ascend in commit order).
    let mut rows = catalog.list_outbox(None, 1000).await.unwrap();
    rows.reverse();
    let mut created: BTreeMap<String, Vec<(String, i32)>> = BTreeMap::new();
    for r in &rows {
        created
            .entry(r.stream_id.clone())
            .or_default()
            .push((r.event_id.clone(), r.event_type));
    }
    assert_eq!(created.keys().collect::<Vec<_>>(), streams, "{rows:#?}");

    for (stream, events) in &created {
        let types: Vec<i32> = events.iter().map(|(_, t)| *t).collect();
        println!("{stream}: created {types:?}");
        let pos = |t: i32| types.iter().position(|&x| x == t);
        assert_eq!(types.first(), Some(&1), "{stream}: {types:?}");
        assert_eq!(types.last(), Some(&100), "{stream}: {types:?}");
        let (Some(start), Some(end)) = (pos(332), pos(0)) else {
            panic!("{stream}: no 332 or no 0 in {types:?}");
        };
        assert!(start < end, "record start before push end: {types:?}");
        for t in [1, 0, 100] {
            assert_eq!(
                types.iter().filter(|&&x| x == t).count(),
                1,
                "{stream}: {types:?}"
            );
        }

        // Acknowledged (HTTP 200) deliveries of this stream, in arrival order. A stream's next
        // event is only sent after the previous one was answered, so arrival order is
        // delivery order.
        let acked: Vec<(String, i32)> = all
            .iter()
            .filter(|d| d.status == 200 && d.body["stream_id"] == stream.as_str())
            .map(|d| {
                let t = d.body["event_type"].as_i64().unwrap();
                (d.event_id.clone(), i32::try_from(t).unwrap())
            })
            .collect();
        // Record-status events (332) are ordered behind earlier events but hold nothing back,
        // so only push and file events are compared.
        let core = |v: &[(String, i32)]| -> Vec<(String, i32)> {
            v.iter().filter(|(_, t)| *t != 332).cloned().collect()
        };
        assert_eq!(
            core(&acked),
            core(events),
            "{stream}: acknowledged vs created order"
        );
        for d in all
            .iter()
            .filter(|d| d.body["stream_id"] == stream.as_str())
        {
            assert_signed(&d.body);
        }
    }

    // Every event acknowledged exactly once, and recorded as delivered.
    let mut acks: HashMap<&str, usize> = HashMap::new();
    for d in all.iter().filter(|d| d.status == 200) {
        *acks.entry(d.event_id.as_str()).or_default() += 1;
    }
    assert_eq!(acks.len(), rows.len(), "{acks:?}");
    for r in &rows {
        assert_eq!(acks.get(r.event_id.as_str()), Some(&1), "{}", r.event_id);
        assert_eq!(r.state.as_str(), "delivered", "{r:?}");
    }
}
