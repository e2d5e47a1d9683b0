//! [`Quorum`]: one node of the metadata quorum, a sans-IO wrapper around `raft::RawNode`.

use std::fmt;
use std::time::{Duration, Instant};

use raft::eraftpb::{Entry, EntryType, Message, MessageType, Snapshot};
use raft::{ProgressState, RawNode, SnapshotStatus, StateRole};

use super::codec::encode_message;
use super::storage::{from_pb_entry, HardState, LogStorage, RaftLog, StoreError, StoredSnapshot};

/// Timing and limits of one node. Times are converted to raft-rs ticks of `tick_interval`.
#[derive(Clone, Debug)]
pub struct QuorumConfig {
    /// This node's id (Kafka `node.id`); not 0.
    pub node_id: u64,
    /// Every voter's id, this node included (Kafka `controller.quorum.voters`).
    pub voters: Vec<u64>,
    /// Granularity of the Raft clock.
    pub tick_interval: Duration,
    /// A follower that hears nothing from a leader for a random time in
    /// `[election_timeout, 1.5 × election_timeout)` starts an election (Kafka
    /// `controller.quorum.election.timeout.ms`, 1 s). A leader that hears from no majority for
    /// `election_timeout` steps down (check-quorum).
    pub election_timeout: Duration,
    /// How often the leader sends heartbeats to idle followers.
    pub heartbeat_interval: Duration,
    /// Largest total entry size in one append message (at least one entry is always sent).
    pub max_append_bytes: u64,
    /// Append messages in flight to one follower.
    pub max_inflight: usize,
    /// Uncommitted bytes the leader accepts before refusing proposals.
    pub max_uncommitted_bytes: u64,
    /// Highest index the state machine has already applied from this log (after a restart that
    /// restored the state machine by itself). 0 means "restore from the log's snapshot": the first
    /// [`Quorum::poll`] then returns the stored snapshot, then the committed entries after it.
    pub applied: u64,
    /// Seed of the election-timeout randomization (tests pass their own; the broker anything that
    /// differs between nodes, e.g. the node id mixed with the start time).
    pub seed: u64,
}

impl QuorumConfig {
    pub fn new(node_id: u64, voters: Vec<u64>) -> QuorumConfig {
        QuorumConfig {
            node_id,
            voters,
            tick_interval: Duration::from_millis(50),
            election_timeout: Duration::from_millis(1000),
            heartbeat_interval: Duration::from_millis(100),
            max_append_bytes: 1 << 20,
            max_inflight: 64,
            max_uncommitted_bytes: 32 << 20,
            applied: 0,
            seed: node_id.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        }
    }
}

/// Role of this node, as raft-rs names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// A message for a peer, already encoded (see [`super::encode_message`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    pub to: u64,
    pub bytes: Vec<u8>,
}

/// An entry the quorum committed, to apply to the state machine in order. Empty `data` is a
/// leader's no-op (the start of its term): nothing to apply, but it advances the applied index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub index: u64,
    pub term: u64,
    pub data: Vec<u8>,
}

/// What one [`Quorum::poll`] asks of the caller, in this order:
/// 1. send `send_now`;
/// 2. restore the state machine from `snapshot` if there is one;
/// 3. apply `committed` in order;
/// 4. make the log writes durable if `must_sync` (the loop's flush point), then send
///    `send_after_sync`. Replies that depend on applied entries leave after the flush point too.
#[derive(Debug, Default)]
pub struct Output {
    /// Messages that may leave before this poll's writes are durable (a leader's appends, which
    /// raft-rs lets run in parallel with its own disk write, Raft thesis §10.2.1).
    pub send_now: Vec<Outbound>,
    /// Messages that may leave only once this poll's writes are durable (votes, append
    /// responses: they promise what the log holds).
    pub send_after_sync: Vec<Outbound>,
    /// Entries or a vote/term were written: sync before `send_after_sync`.
    pub must_sync: bool,
    /// State to load into the state machine before applying `committed`: a snapshot received from
    /// the leader, or the stored one after a restart.
    pub snapshot: Option<StoredSnapshot>,
    pub committed: Vec<Committed>,
    /// Leader or role changed during this poll; see [`Quorum::state`].
    pub leader_changed: bool,
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.send_now.is_empty()
            && self.send_after_sync.is_empty()
            && !self.must_sync
            && self.snapshot.is_none()
            && self.committed.is_empty()
            && !self.leader_changed
    }
}

/// The node's view of the quorum (DescribeQuorum: leader id, leader epoch, high watermark).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumState {
    pub node_id: u64,
    pub role: Role,
    pub leader: Option<u64>,
    /// Current term (Kafka: leader epoch).
    pub term: u64,
    /// Commit index (Kafka: high watermark).
    pub commit: u64,
    /// Last index in this node's log (Kafka: log end offset).
    pub last_index: u64,
    /// Last index handed out in [`Output::committed`].
    pub applied: u64,
}

/// The leader's view of one voter (DescribeQuorum's `ReplicaState`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoterProgress {
    pub id: u64,
    /// Highest index known to be in this voter's log (Kafka: its log end offset).
    pub match_index: u64,
    /// Leader's last index minus `match_index`.
    pub lag: u64,
    /// Heard from since the last check-quorum round.
    pub recently_active: bool,
}

#[derive(Debug)]
pub enum QuorumError {
    Config(String),
    Store(StoreError),
    Raft(raft::Error),
}

impl fmt::Display for QuorumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuorumError::Config(s) => write!(f, "quorum configuration: {s}"),
            QuorumError::Store(e) => write!(f, "{e}"),
            QuorumError::Raft(e) => write!(f, "raft: {e}"),
        }
    }
}

impl std::error::Error for QuorumError {}

impl From<StoreError> for QuorumError {
    fn from(e: StoreError) -> Self {
        QuorumError::Store(e)
    }
}

/// Why a proposal was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// Only the leader accepts proposals; `leader` is the current one if known (Kafka:
    /// NOT_CONTROLLER with the active controller's id).
    NotLeader { leader: Option<u64> },
    /// Empty data is reserved for the leader's no-op.
    Empty,
    /// The leader refused it (too many uncommitted bytes, or a leadership transfer).
    Dropped,
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader { leader: Some(l) } => write!(f, "not the leader (leader {l})"),
            ProposeError::NotLeader { leader: None } => write!(f, "not the leader (none known)"),
            ProposeError::Empty => write!(f, "empty proposal"),
            ProposeError::Dropped => write!(f, "proposal dropped by the leader"),
        }
    }
}

impl std::error::Error for ProposeError {}

/// Why a received message was refused. The message is dropped and the quorum is unchanged.
#[derive(Debug)]
pub enum StepError {
    /// Addressed to another node.
    WrongDestination {
        to: u64,
    },
    /// Sent by a node that is not a voter (or by ourselves).
    UnknownSender {
        from: u64,
    },
    /// Term 0, which raft-rs reserves for local messages.
    NoTerm,
    /// A message type that never travels between voters here (local events, proposal
    /// forwarding, read-index, leadership transfer requests).
    NotAllowed(MessageType),
    /// Entries that are not consecutive, not plain entries, or from a future term.
    BadEntries,
    /// A snapshot for another voter set, or from a future term.
    BadSnapshot,
    Raft(raft::Error),
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::WrongDestination { to } => write!(f, "message for node {to}"),
            StepError::UnknownSender { from } => write!(f, "message from non-voter {from}"),
            StepError::NoTerm => write!(f, "message without a term"),
            StepError::NotAllowed(t) => write!(f, "message type {t:?} not accepted from peers"),
            StepError::BadEntries => write!(f, "malformed entries"),
            StepError::BadSnapshot => write!(f, "malformed snapshot"),
            StepError::Raft(e) => write!(f, "raft: {e}"),
        }
    }
}

impl std::error::Error for StepError {}

/// SplitMix64: the election-timeout randomization, seeded so that tests replay exactly.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }
}

/// Marks the rejection a follower sends when a heartbeat shows that it lost its log (raft-rs
/// leaves the context of append responses empty).
const LOST_LOG: &[u8] = b"minikafka:lost-log";

/// Ticks beyond this many in one `tick` call are skipped (the loop was stalled).
const MAX_CATCH_UP_TICKS: u32 = 64;

/// One node of the quorum. See the module documentation for how the loop drives it.
pub struct Quorum<L: RaftLog> {
    node: RawNode<LogStorage<L>>,
    voters: Vec<u64>,
    tick_interval: Duration,
    next_tick: Instant,
    rng: SplitMix,
    election_ticks: (usize, usize),
    /// (role, term) when the election timeout was last drawn.
    drawn_for: (StateRole, u64),
    drawn: usize,
    /// The stored snapshot, to hand to the state machine at the first poll after a restart.
    restore: Option<StoredSnapshot>,
    applied: u64,
}

fn ticks(d: Duration, tick: Duration) -> usize {
    (d.as_nanos() / tick.as_nanos().max(1)) as usize
}

fn role(r: StateRole) -> Role {
    match r {
        StateRole::Follower => Role::Follower,
        StateRole::PreCandidate => Role::PreCandidate,
        StateRole::Candidate => Role::Candidate,
        StateRole::Leader => Role::Leader,
    }
}

impl<L: RaftLog> Quorum<L> {
    /// Starts (or restarts) a node over `log`. A new node has an empty log; a restarted one its
    /// stored log. With a single voter the node elects itself here, before the first poll.
    pub fn new(config: QuorumConfig, log: L, now: Instant) -> Result<Quorum<L>, QuorumError> {
        let mut voters = config.voters.clone();
        voters.sort_unstable();
        voters.dedup();
        if config.node_id == 0 || voters.contains(&0) {
            return Err(QuorumError::Config("node ids must be positive".into()));
        }
        if voters.len() != config.voters.len() {
            return Err(QuorumError::Config("a voter is named twice".into()));
        }
        if !voters.contains(&config.node_id) {
            return Err(QuorumError::Config(format!(
                "node {} is not one of the voters {:?}",
                config.node_id, voters
            )));
        }
        if config.tick_interval.is_zero() {
            return Err(QuorumError::Config("tick interval is zero".into()));
        }
        let heartbeat = ticks(config.heartbeat_interval, config.tick_interval).max(1);
        let election = ticks(config.election_timeout, config.tick_interval);
        if election <= heartbeat {
            return Err(QuorumError::Config(format!(
                "election timeout {:?} must exceed the heartbeat interval {:?} and the tick {:?}",
                config.election_timeout, config.heartbeat_interval, config.tick_interval
            )));
        }
        let max_election = election + (election / 2).max(1);

        let (snap_index, _) = log.snapshot_id();
        let hs = log.hard_state();
        // raft-rs panics on these; they are disk state, so refuse them instead.
        if hs.commit > log.last_index() {
            return Err(QuorumError::Config(format!(
                "stored commit index {} beyond the log's last index {}: the log lost synced entries",
                hs.commit,
                log.last_index()
            )));
        }
        if config.applied > hs.commit.max(snap_index) {
            return Err(QuorumError::Config(format!(
                "applied index {} beyond the stored commit index {}",
                config.applied, hs.commit
            )));
        }
        let restore = if config.applied < snap_index {
            log.snapshot()?
        } else {
            None
        };
        let applied = config.applied.max(snap_index);
        let rc = raft::Config {
            id: config.node_id,
            election_tick: election,
            heartbeat_tick: heartbeat,
            min_election_tick: election,
            max_election_tick: max_election,
            applied,
            max_size_per_msg: config.max_append_bytes,
            max_inflight_msgs: config.max_inflight.max(1),
            max_uncommitted_size: config.max_uncommitted_bytes,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        let storage = LogStorage::new(log, voters.clone());
        let node = RawNode::new(&rc, storage, &super::logger::logger(config.node_id))
            .map_err(QuorumError::Raft)?;
        let mut q = Quorum {
            node,
            voters,
            tick_interval: config.tick_interval,
            next_tick: now + config.tick_interval,
            rng: SplitMix(config.seed),
            election_ticks: (election, max_election),
            drawn_for: (StateRole::Follower, u64::MAX),
            drawn: 0,
            restore,
            applied,
        };
        q.redraw_timeout();
        if q.voters.len() == 1 {
            // Alone: no one to wait for. Pre-vote and vote are won on the spot.
            q.node.campaign().map_err(QuorumError::Raft)?;
            q.redraw_timeout();
        }
        Ok(q)
    }

    /// raft-rs draws election timeouts from the thread RNG; replace each draw by ours so a seed
    /// replays the same run. raft-rs redraws on every role or term change.
    fn redraw_timeout(&mut self) {
        let now = (self.node.raft.state, self.node.raft.term);
        if now != self.drawn_for {
            self.drawn_for = now;
            self.drawn = self.rng.range(self.election_ticks.0, self.election_ticks.1);
        }
        if self.node.raft.randomized_election_timeout() != self.drawn {
            self.node.raft.set_randomized_election_timeout(self.drawn);
        }
    }

    /// Advances the Raft clock to `now`: one raft-rs tick per elapsed `tick_interval`.
    pub fn tick(&mut self, now: Instant) {
        let mut n = 0;
        while now >= self.next_tick && n < MAX_CATCH_UP_TICKS {
            self.node.tick();
            self.redraw_timeout();
            self.next_tick += self.tick_interval;
            n += 1;
        }
        if now >= self.next_tick {
            self.next_tick = now + self.tick_interval;
        }
    }

    /// When [`Quorum::tick`] next has work: the deadline for the loop's timer.
    pub fn next_tick(&self) -> Instant {
        self.next_tick
    }

    /// Feeds a message received from a peer (decoded with [`super::decode_message`]). Messages
    /// that fail the checks below are refused without touching the state.
    pub fn step(&mut self, mut msg: Message) -> Result<(), StepError> {
        let id = self.node.raft.id;
        if msg.to != id {
            return Err(StepError::WrongDestination { to: msg.to });
        }
        if msg.from == id || !self.voters.contains(&msg.from) {
            return Err(StepError::UnknownSender { from: msg.from });
        }
        if msg.term == 0 {
            // raft-rs takes term 0 for a local message; every message between voters has a term.
            return Err(StepError::NoTerm);
        }
        let t = msg.get_msg_type();
        match t {
            MessageType::MsgAppend
            | MessageType::MsgAppendResponse
            | MessageType::MsgRequestVote
            | MessageType::MsgRequestVoteResponse
            | MessageType::MsgRequestPreVote
            | MessageType::MsgRequestPreVoteResponse
            | MessageType::MsgSnapshot
            | MessageType::MsgHeartbeat
            | MessageType::MsgHeartbeatResponse
            | MessageType::MsgTimeoutNow => {}
            _ => return Err(StepError::NotAllowed(t)),
        }
        for (i, e) in msg.entries.iter().enumerate() {
            if e.get_entry_type() != EntryType::EntryNormal
                || e.index != msg.index.wrapping_add(1 + i as u64)
                || e.term > msg.term
                || e.term < msg.log_term
            {
                return Err(StepError::BadEntries);
            }
        }
        if t == MessageType::MsgSnapshot && !self.valid_snapshot(msg.get_snapshot(), msg.term) {
            return Err(StepError::BadSnapshot);
        }
        let (from, leader_commit) = (msg.from, msg.commit);
        let mut lost_log = false;
        if t == MessageType::MsgHeartbeat {
            // A leader sends commit = min(commit, what it believes we hold). A commit beyond our
            // last index means we lost our log (restarted empty): raft-rs would panic on it. Drop
            // the commit and tell the leader below.
            let last = self.node.raft.raft_log.last_index();
            if msg.commit > last {
                msg.commit = 0;
                lost_log = true;
            }
        }
        if t == MessageType::MsgAppendResponse && msg.reject && msg.context[..] == *LOST_LOG {
            self.reset_lost_log_progress(&msg);
        }
        let r = self.node.step(msg).map_err(StepError::Raft);
        self.redraw_timeout();
        if lost_log
            && self.node.raft.state == StateRole::Follower
            && self.node.raft.leader_id == from
        {
            self.report_lost_log(from, leader_commit);
        }
        r
    }

    fn valid_snapshot(&self, snap: &Snapshot, msg_term: u64) -> bool {
        let Some(meta) = snap.metadata.as_ref() else {
            return false;
        };
        let cs = meta.get_conf_state();
        let mut voters = cs.voters.clone();
        voters.sort_unstable();
        meta.index > 0
            && meta.term > 0
            && meta.term <= msg_term
            && voters == self.voters
            && cs.learners.is_empty()
            && cs.voters_outgoing.is_empty()
            && cs.learners_next.is_empty()
    }

    /// Follower side of a lost log: answer the heartbeat with a rejection carrying our real last
    /// index, as a follower answers an append it cannot take, marked [`LOST_LOG`]. (An append
    /// the follower cannot take needs no help: raft-rs probes back down to the follower's hint.)
    fn report_lost_log(&mut self, leader: u64, leader_commit: u64) {
        let raft = &mut self.node.raft;
        let last = raft.raft_log.last_index();
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppendResponse);
        m.to = leader;
        m.from = raft.id;
        m.term = raft.term;
        m.index = leader_commit;
        m.reject = true;
        m.reject_hint = last;
        m.log_term = raft.raft_log.term(last).unwrap_or(0);
        m.commit = raft.raft_log.committed;
        m.context = LOST_LOG.into();
        raft.msgs.push(m);
    }

    /// Leader side of a lost log: a voter reports (in reply to a heartbeat) a last index below
    /// what it had acknowledged: it restarted with an empty directory. raft-rs would take the
    /// rejection of an index equal to the match index for a stale one and ignore it; restart the
    /// voter's progress instead, so that it is probed from its real last index (and sent a snapshot
    /// if that is compacted away). Lowering a match index is safe: commit never moves back, and
    /// the wiped voter's lost acknowledgements stop counting.
    fn reset_lost_log_progress(&mut self, msg: &Message) {
        let raft = &mut self.node.raft;
        if raft.state != StateRole::Leader || msg.term != raft.term {
            return;
        }
        let Some(pr) = raft.mut_prs().get_mut(msg.from) else {
            return;
        };
        // A report about a heartbeat below the match index predates the voter's catching up: a
        // delayed or duplicated message, not news.
        if msg.reject_hint >= pr.matched || msg.index < pr.matched {
            return;
        }
        log::warn!(
            target: super::logger::TARGET,
            "voter {} reports last index {} below its acknowledged {}: it lost its log, probing it again",
            msg.from,
            msg.reject_hint,
            pr.matched
        );
        pr.matched = 0;
        pr.become_probe();
        // Make the rejection current for the probe so raft-rs resends from the hint.
        pr.next_idx = msg.index.saturating_add(1);
    }

    /// Proposes `data` for the log. Returns the index it will have if committed; the caller keeps
    /// (index, term) to match it in [`Output::committed`] (another leader may overwrite an
    /// uncommitted index).
    pub fn propose(&mut self, data: Vec<u8>) -> Result<u64, ProposeError> {
        if self.node.raft.state != StateRole::Leader {
            let l = self.node.raft.leader_id;
            return Err(ProposeError::NotLeader {
                leader: (l != 0).then_some(l),
            });
        }
        if data.is_empty() {
            return Err(ProposeError::Empty);
        }
        match self.node.propose(vec![], data) {
            Ok(()) => Ok(self.node.raft.raft_log.last_index()),
            Err(_) => Err(ProposeError::Dropped),
        }
    }

    /// Collects what raft-rs has ready: persists it to the log and returns what the caller must do.
    /// Call it after every turn that ticked, stepped or proposed.
    pub fn poll(&mut self) -> Result<Output, QuorumError> {
        let mut out = Output {
            snapshot: self.restore.take(),
            ..Default::default()
        };
        // Each round settles one raft-rs Ready; a few rounds drain what advancing one releases.
        for _ in 0..8 {
            if !self.node.has_ready() {
                break;
            }
            self.poll_once(&mut out)?;
        }
        Ok(out)
    }

    /// Whether a [`Quorum::poll`] would have work: the loop must not sleep while it does (one
    /// poll settles a bounded number of rounds).
    pub fn has_ready(&self) -> bool {
        self.restore.is_some() || self.node.has_ready()
    }

    fn poll_once(&mut self, out: &mut Output) -> Result<(), QuorumError> {
        let mut rd = self.node.ready();
        if let Some(ss) = rd.ss() {
            out.leader_changed = true;
            // raft-rs logs its elections at info level, which the slog dependency compiles out of
            // release builds (`release_max_level_warn`, for size): say it here instead.
            log::info!(
                target: super::logger::TARGET,
                "node {}: {:?} in term {}, leader {}",
                self.node.raft.id,
                role(ss.raft_state),
                self.node.raft.term,
                ss.leader_id
            );
        }
        out.must_sync |= rd.must_sync();
        self.push_messages(rd.take_messages(), &mut out.send_now);

        if !rd.snapshot().is_empty() {
            let s = rd.snapshot();
            let snap = StoredSnapshot {
                index: s.get_metadata().index,
                term: s.get_metadata().term,
                data: s.data.to_vec(),
            };
            self.node.mut_store().log.install_snapshot(snap.clone())?;
            self.applied = snap.index;
            out.committed.clear();
            out.snapshot = Some(snap);
        }
        self.take_committed(rd.take_committed_entries(), out);

        let entries: Vec<_> = rd.take_entries().into_iter().map(from_pb_entry).collect();
        self.node.mut_store().log.append(&entries)?;
        if let Some(hs) = rd.hs() {
            self.node.mut_store().log.set_hard_state(HardState {
                term: hs.term,
                vote: hs.vote,
                commit: hs.commit,
            })?;
        }
        self.push_messages(rd.take_persisted_messages(), &mut out.send_after_sync);

        let mut light = self.node.advance_append(rd);
        if let Some(commit) = light.commit_index() {
            let log = &mut self.node.mut_store().log;
            let mut hs = log.hard_state();
            hs.commit = commit;
            log.set_hard_state(hs)?;
        }
        self.push_messages(light.take_messages(), &mut out.send_after_sync);
        self.take_committed(light.take_committed_entries(), out);
        self.node.advance_apply_to(self.applied);
        Ok(())
    }

    fn take_committed(&mut self, entries: Vec<Entry>, out: &mut Output) {
        for e in entries {
            self.applied = e.index;
            out.committed.push(Committed {
                index: e.index,
                term: e.term,
                data: Vec::from(e.data),
            });
        }
    }

    fn push_messages(&mut self, msgs: Vec<Message>, to: &mut Vec<Outbound>) {
        for m in msgs {
            if m.get_msg_type() == MessageType::MsgSnapshot {
                // Handed to the transport = done as far as the leader's progress goes: if it is
                // lost, the follower's next rejection makes the leader send it again.
                self.node.report_snapshot(m.to, SnapshotStatus::Finish);
            }
            match encode_message(&m) {
                Ok(bytes) => to.push(Outbound { to: m.to, bytes }),
                Err(e) => {
                    log::warn!(target: super::logger::TARGET, "dropping message to {}: {e}", m.to)
                }
            }
        }
    }

    /// The transport could not reach `id` (connection refused or closed): slow down sending to it.
    pub fn report_unreachable(&mut self, id: u64) {
        if self.voters.contains(&id) && id != self.node.raft.id {
            self.node.report_unreachable(id);
        }
    }

    /// Records a snapshot of the state machine taken at `index` (at most the applied index) and
    /// drops the log entries it covers. Voters that need those entries get the snapshot instead.
    pub fn compact(&mut self, index: u64, data: Vec<u8>) -> Result<(), QuorumError> {
        if index > self.applied {
            return Err(QuorumError::Config(format!(
                "snapshot at {index} beyond applied index {}",
                self.applied
            )));
        }
        let log = &mut self.node.mut_store().log;
        let (snap_index, _) = log.snapshot_id();
        if index <= snap_index {
            return Ok(());
        }
        let term = log.term(index).ok_or(StoreError::OutOfRange {
            index,
            first: log.first_index(),
            last: log.last_index(),
        })?;
        log.compact(StoredSnapshot { index, term, data })?;
        Ok(())
    }

    pub fn state(&self) -> QuorumState {
        let raft = &self.node.raft;
        QuorumState {
            node_id: raft.id,
            role: role(raft.state),
            leader: (raft.leader_id != 0).then_some(raft.leader_id),
            term: raft.term,
            commit: raft.raft_log.committed,
            last_index: raft.raft_log.last_index(),
            applied: self.applied,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    pub fn voters(&self) -> &[u64] {
        &self.voters
    }

    /// Per-voter replication progress, known only on the leader (`None` elsewhere).
    pub fn voter_progress(&self) -> Option<Vec<VoterProgress>> {
        let raft = &self.node.raft;
        if raft.state != StateRole::Leader {
            return None;
        }
        let last = raft.raft_log.last_index();
        let prs = raft.prs();
        Some(
            self.voters
                .iter()
                .filter_map(|&id| {
                    let pr = prs.get(id)?;
                    let matched = if id == raft.id {
                        raft.raft_log.persisted
                    } else {
                        pr.matched
                    };
                    Some(VoterProgress {
                        id,
                        match_index: matched,
                        lag: last.saturating_sub(matched),
                        recently_active: id == raft.id
                            || (pr.recent_active && pr.state != ProgressState::Snapshot),
                    })
                })
                .collect(),
        )
    }

    /// The log, for reading (state machine restore, tests).
    pub fn log(&self) -> &L {
        self.node.store().log()
    }

    /// The log, for what raft-rs does not do itself: fsync at the loop's flush point (before
    /// `send_after_sync` messages go out).
    pub fn log_mut(&mut self) -> &mut L {
        &mut self.node.mut_store().log
    }
}
