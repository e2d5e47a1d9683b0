//! The follower's rules, after Kafka's `AbstractFetcherThreadTest` and `ReplicaFetcherThreadTest`
//! where they have a case.

use super::*;
use crate::replication::leader::diverging_epoch;

const LEADER: i32 = 2;
const BACKOFF: i64 = 1000;

fn log(epochs: &[(i32, i64)], leo: i64, hw: i64) -> LocalLog<'_> {
    LocalLog {
        epochs,
        log_end_offset: leo,
        high_watermark: hw,
    }
}

fn on_fetch() -> FollowerConfig {
    FollowerConfig {
        truncation_on_fetch: true,
        fetch_backoff_ms: BACKOFF,
    }
}

fn epoch_end(epoch: i32, end_offset: i64) -> EpochEndOffset {
    EpochEndOffset { epoch, end_offset }
}

fn truncate(offset: i64, completed: bool) -> Truncation {
    Truncation { offset, completed }
}

fn fetch_step(s: &mut FollowerState, local: &LocalLog, now: i64) -> FetchPosition {
    match s.poll(local, now) {
        Step::Fetch(position) => position,
        other => panic!("expected a fetch, got {other:?}"),
    }
}

#[test]
fn truncation_offsets_for_each_epoch_layout() {
    let t = |epochs: &[(i32, i64)], leo, leader| truncation_offset(leader, &log(epochs, leo, 0), 3);
    // Same epoch on both sides, ended earlier on the leader: the leader's end.
    assert_eq!(
        t(&[(0, 0), (1, 10)], 15, epoch_end(1, 12)),
        truncate(12, true)
    );
    // Same epoch, ended later on the leader: nothing to remove.
    assert_eq!(
        t(&[(0, 0), (1, 10)], 15, epoch_end(1, 20)),
        truncate(15, true)
    );
    // The leader's epoch ended here when a later local epoch began: the smaller end.
    assert_eq!(
        t(&[(0, 0), (1, 10), (3, 14)], 20, epoch_end(1, 12)),
        truncate(12, true)
    );
    assert_eq!(
        t(&[(0, 0), (1, 10), (3, 14)], 20, epoch_end(1, 16)),
        truncate(14, true)
    );
    // The follower is ahead with epoch 2, which the leader never had, and never had the
    // leader's epoch 1: truncate to where its epoch 0 ended and ask again.
    assert_eq!(
        t(&[(0, 0), (2, 10)], 20, epoch_end(1, 15)),
        truncate(10, false)
    );
    // The leader's epoch is older than every local one: the cache places it before the first.
    assert_eq!(t(&[(3, 5)], 9, epoch_end(1, 4)), truncate(4, true));
    // No local epochs: the leader's end, at most the local log end.
    assert_eq!(t(&[], 10, epoch_end(2, 7)), truncate(7, true));
    assert_eq!(t(&[], 5, epoch_end(2, 7)), truncate(5, true));
    // The leader knew no end offset: the fetch offset (the high watermark when truncating).
    assert_eq!(t(&[(0, 0)], 10, epoch_end(-1, -1)), truncate(3, true));
    // An end offset without an epoch (old protocol): the leader's end.
    assert_eq!(t(&[(0, 0)], 10, epoch_end(-1, 6)), truncate(6, true));
    assert_eq!(t(&[(0, 0)], 10, epoch_end(-1, 60)), truncate(10, true));
}

#[test]
fn a_new_follower_with_epochs_fetches_from_its_log_end() {
    let epochs = [(0, 0), (3, 40)];
    let local = log(&epochs, 50, 45);
    let mut s = FollowerState::new(LEADER, 7, &local, on_fetch());
    assert_eq!(s.phase(), FetchPhase::Fetching);
    assert_eq!(
        fetch_step(&mut s, &local, 0),
        FetchPosition {
            leader_id: LEADER,
            current_leader_epoch: 7,
            fetch_offset: 50,
            last_fetched_epoch: Some(3),
        }
    );
}

#[test]
fn a_new_follower_without_epochs_truncates_to_its_high_watermark() {
    let local = log(&[], 50, 45);
    let mut s = FollowerState::new(LEADER, 7, &local, on_fetch());
    assert_eq!(s.phase(), FetchPhase::Truncating);
    assert_eq!(s.fetch_offset(), 45);
    assert_eq!(s.poll(&local, 0), Step::Truncate(truncate(45, true)));
    assert_eq!(s.phase(), FetchPhase::Fetching);
    let local = log(&[], 45, 45);
    let position = fetch_step(&mut s, &local, 0);
    assert_eq!(
        (position.fetch_offset, position.last_fetched_epoch),
        (45, None)
    );
}

/// A follower that led in epoch 2, which the new leader never had, truncates in two rounds of
/// diverging epochs, the leader answering as Kafka's `Partition.readRecords` does.
#[test]
fn diverging_epochs_truncate_a_tail_the_leader_never_had() {
    // The leader: epoch 0 at 0, 1 at 8, 3 at 15; log end 18, in epoch 3.
    let leader_epochs = [(0, 0), (1, 8), (3, 15)];
    let leader = |position: &FetchPosition| {
        diverging_epoch(
            &leader_epochs,
            3,
            0,
            18,
            position.fetch_offset,
            position.last_fetched_epoch.unwrap(),
        )
        .unwrap()
    };
    // The follower: epoch 0 to 10, then its own epoch 2 to 20.
    let epochs = vec![(0, 0), (2, 10)];
    let local = log(&epochs, 20, 5);
    let mut s = FollowerState::new(LEADER, 3, &local, on_fetch());

    let position = fetch_step(&mut s, &local, 0);
    assert_eq!(
        (position.fetch_offset, position.last_fetched_epoch),
        (20, Some(2))
    );
    let diverging = leader(&position).unwrap();
    assert_eq!(diverging, epoch_end(1, 15));
    assert_eq!(
        s.on_diverging_epoch(&position, diverging, &local, 0),
        Outcome::Truncate(truncate(10, false))
    );
    // Fetching again from there, with the epoch left at the end of the truncated log.
    assert_eq!(s.phase(), FetchPhase::Fetching);
    let epochs = vec![(0, 0)];
    let local = log(&epochs, 10, 5);
    let position = fetch_step(&mut s, &local, 0);
    assert_eq!(
        (position.fetch_offset, position.last_fetched_epoch),
        (10, Some(0))
    );
    let diverging = leader(&position).unwrap();
    assert_eq!(diverging, epoch_end(0, 8));
    assert_eq!(
        s.on_diverging_epoch(&position, diverging, &local, 0),
        Outcome::Truncate(truncate(8, true))
    );
    let local = log(&epochs, 8, 5);
    let position = fetch_step(&mut s, &local, 0);
    assert_eq!(
        (position.fetch_offset, position.last_fetched_epoch),
        (8, Some(0))
    );
    assert_eq!(
        leader(&position),
        None,
        "in agreement: the leader serves records"
    );
    assert_eq!(
        s.on_records_appended(&position, 18, Some(3), 0),
        Outcome::Continue
    );
    assert_eq!((s.fetch_offset(), s.last_fetched_epoch()), (18, Some(3)));
}

#[test]
fn a_follower_behind_in_the_same_epoch_does_not_diverge() {
    let leader_epochs = [(0, 0), (4, 10)];
    let epochs = [(0, 0), (4, 10)];
    let local = log(&epochs, 12, 12);
    let mut s = FollowerState::new(LEADER, 4, &local, on_fetch());
    let position = fetch_step(&mut s, &local, 0);
    assert_eq!(diverging_epoch(&leader_epochs, 4, 0, 30, 12, 4), Ok(None));
    // Nothing appended: same offset, same epoch.
    assert_eq!(
        s.on_records_appended(&position, 12, None, 0),
        Outcome::Continue
    );
    assert_eq!((s.fetch_offset(), s.last_fetched_epoch()), (12, Some(4)));
}

/// Without truncation on fetch, Kafka's `truncateToEpochEndOffsets` rounds.
#[test]
fn offset_for_leader_epoch_rounds_truncate_before_fetching() {
    let config = FollowerConfig {
        truncation_on_fetch: false,
        ..on_fetch()
    };
    let epochs = vec![(0, 0), (2, 10)];
    let local = log(&epochs, 20, 5);
    let mut s = FollowerState::new(LEADER, 3, &local, config);
    assert_eq!((s.phase(), s.fetch_offset()), (FetchPhase::Truncating, 5));
    let ask = s.poll(&local, 0);
    assert_eq!(
        ask,
        Step::AskEpochEndOffset {
            current_leader_epoch: 3,
            leader_epoch: 2
        }
    );
    // An answer for another leader epoch is dropped.
    assert_eq!(
        s.on_epoch_end_offset(2, Ok(epoch_end(1, 15)), &local, 0),
        Outcome::Ignored
    );
    assert_eq!(
        s.on_epoch_end_offset(3, Ok(epoch_end(1, 15)), &local, 0),
        Outcome::Truncate(truncate(10, false))
    );
    // Not done: still truncating, asking about the epoch now last.
    assert_eq!(s.phase(), FetchPhase::Truncating);
    let epochs = vec![(0, 0)];
    let local = log(&epochs, 10, 5);
    assert_eq!(
        s.poll(&local, 0),
        Step::AskEpochEndOffset {
            current_leader_epoch: 3,
            leader_epoch: 0
        }
    );
    assert_eq!(
        s.on_epoch_end_offset(3, Ok(epoch_end(0, 8)), &local, 0),
        Outcome::Truncate(truncate(8, true))
    );
    assert_eq!(s.phase(), FetchPhase::Fetching);
    let local = log(&epochs, 8, 5);
    let position = fetch_step(&mut s, &local, 0);
    assert_eq!(position.fetch_offset, 8);
    assert_eq!(
        position.last_fetched_epoch, None,
        "not sent without truncation on fetch"
    );
}

#[test]
fn an_unknown_epoch_end_truncates_to_the_high_watermark() {
    let config = FollowerConfig {
        truncation_on_fetch: false,
        ..on_fetch()
    };
    let epochs = [(0, 0), (2, 10)];
    let local = log(&epochs, 20, 5);
    let mut s = FollowerState::new(LEADER, 3, &local, config);
    assert_eq!(
        s.on_epoch_end_offset(3, Ok(epoch_end(-1, -1)), &local, 0),
        Outcome::Truncate(truncate(5, true))
    );
    assert_eq!(
        (s.phase(), s.last_fetched_epoch()),
        (FetchPhase::Fetching, Some(0))
    );
}

#[test]
fn offset_for_leader_epoch_errors() {
    let config = FollowerConfig {
        truncation_on_fetch: false,
        ..on_fetch()
    };
    let epochs = [(0, 0), (2, 10)];
    let local = log(&epochs, 20, 5);
    let mut s = FollowerState::new(LEADER, 3, &local, config);
    assert_eq!(
        s.on_epoch_end_offset(3, Err(error::NOT_LEADER_OR_FOLLOWER), &local, 100),
        Outcome::RetryAt(100 + BACKOFF)
    );
    assert_eq!(
        s.poll(&local, 500),
        Step::Wait {
            until_ms: Some(1100)
        }
    );
    assert!(matches!(
        s.poll(&local, 1100),
        Step::AskEpochEndOffset { .. }
    ));
    assert_eq!(
        s.on_epoch_end_offset(3, Err(error::FENCED_LEADER_EPOCH), &local, 2000),
        Outcome::AwaitMetadata
    );
    assert!(s.awaiting_metadata());
    assert_eq!(s.poll(&local, 99_999), Step::Wait { until_ms: None });
}

#[test]
fn a_new_leader_epoch_restarts_the_follower() {
    let epochs = [(0, 0), (3, 40)];
    let local = log(&epochs, 50, 45);
    let mut s = FollowerState::new(LEADER, 7, &local, on_fetch());
    let position = fetch_step(&mut s, &local, 0);
    s.on_records_appended(&position, 60, Some(7), 0);
    // Not newer: nothing changes.
    assert!(!s.on_leader_change(4, 7, &local));
    assert!(!s.on_leader_change(4, 6, &local));
    assert_eq!((s.leader_id(), s.fetch_offset()), (LEADER, 60));
    // Newer: from the local log again; the new leader points out any divergence.
    let epochs = [(0, 0), (3, 40), (7, 50)];
    let local = log(&epochs, 60, 55);
    assert!(s.on_leader_change(4, 8, &local));
    assert_eq!(
        fetch_step(&mut s, &local, 0),
        FetchPosition {
            leader_id: 4,
            current_leader_epoch: 8,
            fetch_offset: 60,
            last_fetched_epoch: Some(7),
        }
    );
    // Without epochs, or without truncation on fetch, it truncates first.
    let mut s = FollowerState::new(LEADER, 7, &log(&[], 50, 45), on_fetch());
    assert!(s.on_leader_change(4, 8, &log(&[], 50, 45)));
    assert_eq!((s.phase(), s.fetch_offset()), (FetchPhase::Truncating, 45));
    let config = FollowerConfig {
        truncation_on_fetch: false,
        ..on_fetch()
    };
    let mut s = FollowerState::new(LEADER, 7, &local, config);
    assert!(s.on_leader_change(4, 8, &local));
    assert_eq!((s.phase(), s.fetch_offset()), (FetchPhase::Truncating, 55));
}

#[test]
fn fenced_leader_epoch_waits_for_metadata() {
    let epochs = [(0, 0)];
    let local = log(&epochs, 10, 10);
    let mut s = FollowerState::new(LEADER, 7, &local, on_fetch());
    let position = fetch_step(&mut s, &local, 0);
    assert_eq!(
        s.on_fetch_error(&position, error::FENCED_LEADER_EPOCH, 0),
        Outcome::AwaitMetadata
    );
    assert_eq!(s.poll(&local, 10_000), Step::Wait { until_ms: None });
    // Responses are no longer taken.
    assert_eq!(
        s.on_records_appended(&position, 20, Some(7), 0),
        Outcome::Ignored
    );
    // The next leader epoch revives it.
    assert!(s.on_leader_change(LEADER, 8, &local));
    assert!(!s.awaiting_metadata());
    assert_eq!(fetch_step(&mut s, &local, 0).current_leader_epoch, 8);

    // Fenced by an answer to a request of an older epoch (same leader and offset): retry.
    let old = FetchPosition {
        current_leader_epoch: 7,
        ..fetch_step(&mut s, &local, 0)
    };
    assert_eq!(
        s.on_fetch_error(&old, error::FENCED_LEADER_EPOCH, 0),
        Outcome::RetryAt(BACKOFF)
    );
    assert!(!s.awaiting_metadata());
}

#[test]
fn other_fetch_errors_back_off_and_retry() {
    let epochs = [(0, 0)];
    let local = log(&epochs, 10, 10);
    for code in [
        error::UNKNOWN_LEADER_EPOCH,
        error::NOT_LEADER_OR_FOLLOWER,
        error::UNKNOWN_TOPIC_OR_PARTITION,
        error::UNKNOWN_TOPIC_ID,
        error::KAFKA_STORAGE_ERROR,
        super::super::OFFSET_MOVED_TO_TIERED_STORAGE,
    ] {
        let mut s = FollowerState::new(LEADER, 7, &local, on_fetch());
        let position = fetch_step(&mut s, &local, 100);
        assert_eq!(
            s.on_fetch_error(&position, code, 100),
            Outcome::RetryAt(100 + BACKOFF),
            "{code}"
        );
        assert_eq!(
            s.poll(&local, 100 + BACKOFF - 1),
            Step::Wait {
                until_ms: Some(1100)
            }
        );
        // A back-off in progress is not extended.
        assert_eq!(s.back_off(600), 1100);
        assert_eq!(fetch_step(&mut s, &local, 1100), position);
    }
}

#[test]
fn answers_to_other_requests_are_ignored() {
    let epochs = [(0, 0)];
    let local = log(&epochs, 10, 10);
    let mut s = FollowerState::new(LEADER, 7, &local, on_fetch());
    let position = fetch_step(&mut s, &local, 0);
    let other_offset = FetchPosition {
        fetch_offset: 9,
        ..position
    };
    let other_leader = FetchPosition {
        leader_id: 9,
        ..position
    };
    for request in [other_offset, other_leader] {
        assert_eq!(
            s.on_records_appended(&request, 20, None, 0),
            Outcome::Ignored
        );
        assert_eq!(
            s.on_diverging_epoch(&request, epoch_end(0, 5), &local, 0),
            Outcome::Ignored
        );
        assert_eq!(
            s.on_fetch_error(&request, error::OFFSET_OUT_OF_RANGE, 0),
            Outcome::Ignored
        );
    }
    // While backing off, nothing is taken either.
    s.back_off(0);
    assert_eq!(
        s.on_records_appended(&position, 20, None, 1),
        Outcome::Ignored
    );
    assert_eq!(s.fetch_offset(), 10);
}

/// Kafka's `handleOutOfRangeError` / `fetchOffsetAndTruncate` (`testFollowerFetchOutOfRange*`).
#[test]
fn out_of_range_fetches_resolve_against_the_leaders_log() {
    let epochs = [(0, 0), (2, 30), (4, 45)];
    let local = log(&epochs, 50, 40);
    let start = |s: &mut FollowerState| {
        let position = fetch_step(s, &local, 0);
        assert_eq!(
            s.on_fetch_error(&position, error::OFFSET_OUT_OF_RANGE, 0),
            Outcome::ListLeaderOffsets
        );
    };
    let offsets = |log_start_offset, log_end_offset| {
        Ok(LeaderOffsets {
            log_start_offset,
            log_end_offset,
        })
    };

    // The leader's log ends before ours (an unclean election): truncate to its end.
    let mut s = FollowerState::new(LEADER, 7, &local, on_fetch());
    start(&mut s);
    assert_eq!(
        s.resolve_out_of_range(7, offsets(0, 42), &local, 0),
        Outcome::Truncate(truncate(42, true))
    );
    assert_eq!((s.fetch_offset(), s.last_fetched_epoch()), (42, Some(2)));

    // The leader's log starts after ours ends (its old segments were deleted while this
    // follower was away): start over at the leader's log start.
    let mut s = FollowerState::new(LEADER, 7, &local, on_fetch());
    start(&mut s);
    assert_eq!(
        s.resolve_out_of_range(7, offsets(70, 90), &local, 0),
        Outcome::TruncateFullyAndStartAt(70)
    );
    assert_eq!((s.fetch_offset(), s.last_fetched_epoch()), (70, None));
    assert_eq!(s.phase(), FetchPhase::Fetching);
    let empty = log(&[], 70, 70);
    let position = fetch_step(&mut s, &empty, 0);
    assert_eq!(
        (position.fetch_offset, position.last_fetched_epoch),
        (70, None)
    );

    // Otherwise fetch from our log end again.
    let mut s = FollowerState::new(LEADER, 7, &local, on_fetch());
    start(&mut s);
    assert_eq!(
        s.resolve_out_of_range(7, offsets(50, 90), &local, 0),
        Outcome::Continue
    );
    assert_eq!((s.fetch_offset(), s.last_fetched_epoch()), (50, Some(4)));

    // ListOffsets errors; an answer for an older epoch.
    let mut s = FollowerState::new(LEADER, 7, &local, on_fetch());
    start(&mut s);
    assert_eq!(
        s.resolve_out_of_range(6, offsets(0, 42), &local, 0),
        Outcome::Ignored
    );
    assert_eq!(
        s.resolve_out_of_range(7, Err(error::NOT_LEADER_OR_FOLLOWER), &local, 0),
        Outcome::RetryAt(BACKOFF)
    );
    assert_eq!(
        s.resolve_out_of_range(7, Err(error::FENCED_LEADER_EPOCH), &local, 0),
        Outcome::AwaitMetadata
    );
}

#[test]
fn truncating_to_the_log_end_still_drops_an_epoch_started_there() {
    // A former leader recorded epoch 5 at its log end without writing in it (Kafka's
    // `truncateTo` truncates the epoch cache at the log end even when the log is not cut).
    let epochs = [(0, 0), (5, 20)];
    let local = log(&epochs, 20, 20);
    let mut s = FollowerState::new(LEADER, 6, &local, on_fetch());
    let position = fetch_step(&mut s, &local, 0);
    assert_eq!(position.last_fetched_epoch, Some(5));
    assert_eq!(
        s.on_diverging_epoch(&position, epoch_end(0, 25), &local, 0),
        Outcome::Truncate(truncate(20, true))
    );
    assert_eq!(s.last_fetched_epoch(), Some(0));
}

#[test]
fn the_followers_high_watermark_is_the_leaders_within_its_log() {
    assert_eq!(follower_high_watermark(15, 0, 20), 15);
    assert_eq!(follower_high_watermark(25, 0, 20), 20);
    assert_eq!(follower_high_watermark(3, 5, 20), 5);
    assert_eq!(follower_high_watermark(20, 0, 20), 20);
}
