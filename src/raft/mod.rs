//! The KRaft metadata quorum's consensus core: TiKV's raft-rs driven without IO.
//!
//! One [`Quorum`] is one voter. It owns a [`RaftLog`] (in memory today: [`MemLog`]; later the
//! `__cluster_metadata-0` partition log, see [`storage`] for the index↔offset mapping) and knows
//! nothing of sockets or clocks: the loop hands it time, received messages and proposals, and gets
//! back messages to send and entries to apply.
//!
//! ```text
//! Quorum::new(QuorumConfig::new(node_id, voters), log, now)
//! tick(now)                 on the loop's timer; deadline = next_tick()
//! step(decode_message(b)?)  for each frame received from a voter
//! propose(data) -> index    on the leader (else NotLeader { leader } → NOT_CONTROLLER)
//! poll() -> Output          after every turn that ticked, stepped or proposed (has_ready())
//! compact(index, snapshot)  when the state machine took a snapshot at an applied index
//! state(), voter_progress() for DescribeQuorum (leader, epoch, high watermark, voters' LEO/lag)
//! ```
//!
//! ## How the broker loop drives it (ARCHITECTURE §1, §6)
//!
//! Each turn: step every whole frame that arrived from a peer (a frame that does not decode or
//! fails `step`'s checks is logged and dropped, never a panic); tick with `now`; propose what the
//! controller wants written; then `poll()` once and act on the [`Output`] in the order raft-rs
//! requires:
//!
//! 1. queue `send_now` on the peers' connections (a leader's appends may leave before its own
//!    write is durable);
//! 2. load `snapshot` into the state machine if present (sent by the leader, or the stored one at
//!    the first poll after a restart), then apply `committed` in order (empty data = a leader's
//!    no-op; match proposals by (index, term), since an uncommitted index can be overwritten by
//!    the next leader);
//! 3. at the flush point, fsync the log if `must_sync` (poll already wrote entries, hard state
//!    and snapshot through the [`RaftLog`]); only then queue `send_after_sync` (votes and append
//!    acknowledgements promise what is on disk) and the replies to the requests whose entries were
//!    applied.
//!
//! The poll timeout of the reactor includes [`Quorum::next_tick`]. When a connection to a voter
//! fails, call [`Quorum::report_unreachable`]. Messages are lost freely: raft-rs retries on its own
//! heartbeat and probe timers, so the transport needs no acknowledgements or retries of its own.
//!
//! Timing: a tick every 50 ms, heartbeats every 100 ms, election timeout 1 s (followers campaign
//! after a random 1–1.5 s without a leader; a leader without a live majority for 1 s steps down:
//! check-quorum). Pre-vote keeps a node that rejoins after a partition from disturbing the leader.
//! A single-voter quorum (the combined single-broker case) elects itself inside [`Quorum::new`]:
//! it is leader before its first poll and commits proposals at the next poll.
//!
//! ## Bad input and panics
//!
//! Network input never panics here: [`decode_message`] returns an error on any malformed bytes,
//! and [`Quorum::step`] refuses messages from non-voters or for another node, local-only message
//! types, non-consecutive or non-plain entries, and snapshots for another voter set. A heartbeat
//! whose commit index is beyond this node's log (a voter that restarted with an empty directory)
//! is defused instead of reaching raft-rs's "commit out of range" panic, and the leader is told so
//! that it re-probes the voter and sends it a snapshot.
//!
//! raft-rs still panics (`fatal!`) on invariant violations that a correct peer cannot cause: a
//! leader overwriting entries this node has committed, or a read error from the storage (see
//! [`storage`]). Those mean a broken peer or a broken disk, not bad input on the wire.
//!
//! A voter whose directory is wiped rejoins and catches up from a snapshot, but Raft's guarantees
//! assume voters keep what they acknowledged: a wiped voter may vote twice in a term or forget an
//! entry it helped commit. Wiping more than one voter at a time, or a voter in a minority that
//! holds the only copy, can lose committed records (Kafka's KIP-853 adds directory ids for this).

mod codec;
pub mod disk_log;
mod logger;
mod quorum;
pub mod storage;

#[cfg(test)]
mod tests;

pub use codec::{decode_message, encode_message, CodecError};
pub use disk_log::DiskLog;
pub use logger::LogDrain;
pub use quorum::{
    Committed, Outbound, Output, ProposeError, Quorum, QuorumConfig, QuorumError, QuorumState,
    Role, StepError, VoterProgress,
};
pub use storage::{HardState, LogEntry, MemLog, RaftLog, StoreError, StoredSnapshot};

/// raft-rs's message type, as [`decode_message`] returns it.
pub use raft::eraftpb::Message;
