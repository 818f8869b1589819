"""One engine's KV-event stream into the residency index, and whether to trust it (pure).

The subscriber (`router.shell.kv_events`) owns the sockets and the clock; it hands every batch,
replay answer and connection change to an `EngineFeed`, which applies the batches to the
`ResidencyIndex` in stream order and keeps the engine's `FeedState`:

- `syncing`: the engine's replay buffer is being read: from seq 0 after a (re)connection, or
  the seqs of a gap.
- `live`: every batch since the publisher started was applied: the index is the engine's cache
  (as far as its events tell; the bounded tiers aside, `residency`). Only this state is trusted.
- `untrusted`: batches were lost and replay could not return them (the buffer had moved past
  them, or the replay socket did not answer): batches are still applied, but a policy must fall
  back to its own estimate for this engine. Trust comes back with a fresh publisher (a batch with
  seq 0: the engine restarted, its cache is empty) or an `AllBlocksCleared` (the engine reset its
  prefix cache; every tier of the index is emptied then, since what the lost batches stored or
  removed in the offload tiers is unknown).
- `stale`: the publisher has been unreachable longer than the staleness bound (the engine died,
  restarts, or the network dropped); nothing it published meanwhile reached the router.

A publisher lost after it was reached (`lost`) reads as `syncing` at once, not `live` until the
staleness bound: the likeliest cause is the engine's process ending (a restart keeps the pod IP
and its PUB socket comes back empty), and the feed replays from seq 0 once it is reached again,
so until then nothing it published is known. A policy scores a lost engine as holding nothing
(`router.routing.kv.scoring`), never by a belief the restart may have wiped.

A seq 0 below the next expected seq is a new publisher (`RESTART`), unless it carries the
timestamp of the seq 0 already applied: that is the same batch arriving late (reordered behind
seq 1, which showed the gap that replayed it); vLLM stamps each batch with `time.time()` when the
scheduler builds it (`KVEventBatch(ts=time.time(), ...)`, vllm/v1/core/sched/scheduler.py), so a
new process's first batch never carries the old one's.

Sync: a (re)connection empties the engine's index and asks replay from seq 0: vLLM keeps the last
`buffer_steps` batches (10,000), so an engine that published fewer is rebuilt exactly (live);
one whose buffer no longer starts at 0 is `untrusted`. Why not replay from where the router
stopped: after a disconnect the publisher may be a new process (an engine restart keeps the pod
IP) whose seqs restart at 0 and would be taken for the old ones; from 0 the buffer says which.

Live: `SequenceTracker` judges each batch; a gap asks replay of the missing seqs (the shell
replays, the SUB socket queues live batches meanwhile; those the replay returned arrive after
it as stale, and are skipped). A batch is never applied twice, nor out of order.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from contracts.kv_events import FEED_LIVE, FEED_STALE, FEED_SYNCING, FEED_UNTRUSTED
from router.routing.kv.events import AllBlocksCleared, KvEventBatch
from router.routing.kv.residency import ResidencyIndex
from router.routing.kv.sequence import SequenceTracker, SeqVerdict


class FeedState(enum.Enum):
    """Where one engine's event stream stands; see the module docstring."""

    SYNCING = FEED_SYNCING
    LIVE = FEED_LIVE
    UNTRUSTED = FEED_UNTRUSTED
    STALE = FEED_STALE


@dataclass(frozen=True, slots=True)
class Replay:
    """Ask the engine's replay socket for every batch from seq `start` on; `before` is the seq of
    the live batch that showed the gap (None: a sync from 0, nothing waits)."""

    start: int
    before: int | None = None


@dataclass(slots=True)
class FeedCounts:
    """What one feed has seen since it was created (for the router's metrics)."""

    batches: int = 0
    """Batches applied (live or replayed)."""
    duplicates: int = 0
    """Batches skipped: already applied (a replay answered them first) or reordered."""
    gaps_replayed: int = 0
    """Gaps a replay filled."""
    gaps_lost: int = 0
    """Gaps replay could not fill (the engine became untrusted)."""
    restarts: int = 0
    """Fresh publishers seen (seq 0 after later ones)."""
    skipped_events: int = 0
    """Events of a type or medium the decoder does not know."""


class EngineFeed:
    """One engine's stream; see the module docstring. `index` must already track `engine`."""

    def __init__(self, engine: str, index: ResidencyIndex, *, stale_after_s: float, now: float) -> None:
        self.engine = engine
        self.index = index
        self.stale_after_s = stale_after_s
        self.counts = FeedCounts()
        self._tracker = SequenceTracker()
        self._state = FeedState.SYNCING
        self._unreachable_since: float | None = now
        """When the SUB socket lost (or never had) its publisher; None while connected."""
        self._was_connected = False
        self._sync_answered = False
        self._pending: KvEventBatch | None = None
        """The live batch that showed a gap, applied once the replay has run."""
        self._first_ts: float | None = None
        """The timestamp of the seq-0 batch applied (a late copy of it is not a restart)."""
        self.reason = "waiting for the publisher"
        """Why the state is what it is, in words (for /health and the logs)."""

    # --- state ------------------------------------------------------------------------------
    def state(self, now: float) -> FeedState:
        """The state at `now` (stale once the publisher has been unreachable too long)."""
        since = self._unreachable_since
        if since is not None and now - since >= self.stale_after_s:
            return FeedState.STALE
        if self._pending is not None or self.lost(now):
            return FeedState.SYNCING  # a gap is being replayed, or a sync from 0 awaits the publisher
        return self._state

    def lost(self, now: float) -> bool:
        """Whether the publisher, once reached, is unreachable now (not yet for the staleness
        bound): what the engine holds is unknown until the sync that follows its return."""
        since = self._unreachable_since
        return self._was_connected and since is not None and now - since < self.stale_after_s

    def trusted(self, now: float) -> bool:
        """Whether a policy may route on this engine's index."""
        return self.state(now) is FeedState.LIVE

    # --- connection ---------------------------------------------------------------------------
    def sync(self) -> Replay:
        """Start over from the engine's replay buffer (on start and after a reconnection):
        forget the engine's blocks, replay from 0."""
        self.index.clear(self.engine)
        self._tracker.expected = 0
        self._pending = None
        self._state, self.reason = FeedState.SYNCING, "replaying the engine's buffer from seq 0"
        return Replay(0)

    def connected(self) -> bool:
        """The SUB socket reached its publisher; True when a `sync` must follow: a reconnection
        (what was published meanwhile never reached this socket), or a first connection after a
        sync that got no answer (the publisher was not up yet)."""
        resync = self._was_connected or not self._sync_answered
        self._was_connected, self._unreachable_since = True, None
        return resync

    def disconnected(self, now: float) -> None:
        """The SUB socket lost its publisher (the engine may be gone or restarting)."""
        if self._unreachable_since is None:
            self._unreachable_since = now
            if self._was_connected:
                self.reason = "publisher lost: its buffer is replayed from seq 0 once it is reached again"

    # --- batches ------------------------------------------------------------------------------
    def live(self, batch: KvEventBatch) -> Replay | None:
        """A batch from the SUB socket: applied, skipped, or held back behind a replay of the gap
        it shows (returned; answer with `replayed`)."""
        if batch.seq == 0 and self._first_ts == batch.ts and self._tracker.expected:
            self.counts.duplicates += 1  # the applied seq 0, late: not a new publisher
            return None
        check = self._tracker.observe(batch.seq)
        if check.verdict is SeqVerdict.GAP and check.missing is not None:
            self._tracker.expected = check.missing[0]
            self._pending = batch
            return Replay(check.missing[0], batch.seq)
        self._take(batch, check.verdict)
        return None

    def replayed(self, replay: Replay, batches: Iterable[KvEventBatch] | None) -> None:
        """The replay socket's answer to `replay` (None: it did not answer in time), then the
        batch that waited for it."""
        replayed = list(batches or ())
        pending, self._pending = self._pending, None
        if pending is not None and all(b.seq != pending.seq for b in replayed):
            replayed.append(pending)  # in seq order: a replay may answer past it, never before it
            replayed.sort(key=lambda b: b.seq)
        filled = batches is not None
        for batch in replayed:
            check = self._tracker.observe(batch.seq)
            if check.verdict is SeqVerdict.GAP:
                filled = False  # the buffer had moved past the first missing batches
            self._take(batch, check.verdict)
        if replay.before is None:
            self._sync_answered = batches is not None
        self._settle(replay, filled, batches is not None)

    def _settle(self, replay: Replay, filled: bool, answered: bool) -> None:
        what = "seq 0 on" if replay.before is None else f"seqs {replay.start}..{replay.before - 1}"
        if filled:
            if replay.before is not None:
                self.counts.gaps_replayed += 1
            if self._state is FeedState.SYNCING:
                self._state, self.reason = FeedState.LIVE, "every batch since the publisher started applied"
            return
        if replay.before is not None:
            self.counts.gaps_lost += 1
        if replay.before is None and not answered:
            self._tracker.expected = None  # nothing known: the first live batch starts the count
        self._state = FeedState.UNTRUSTED
        self.reason = (f"replay of {what} " + ("got no answer" if not answered else
                       "came back incomplete (the engine's buffer had moved on)"))

    def _take(self, batch: KvEventBatch, verdict: SeqVerdict) -> None:
        if verdict is SeqVerdict.STALE:
            self.counts.duplicates += 1
            return
        if batch.seq == 0:
            self._first_ts = batch.ts
        if batch.seq == 0 and (verdict is SeqVerdict.RESTART or self._state is not FeedState.SYNCING):
            self.counts.restarts += verdict is SeqVerdict.RESTART
            self.index.clear(self.engine)  # a new publisher: the engine's cache starts empty
            self._state, self.reason = FeedState.LIVE, "a fresh publisher (seq 0): its cache starts empty"
        if verdict is SeqVerdict.GAP:
            self._state, self.reason = FeedState.UNTRUSTED, f"batches before seq {batch.seq} were lost"
        if self._state is FeedState.UNTRUSTED and any(isinstance(e, AllBlocksCleared) for e in batch.events):
            self.index.clear(self.engine)
            self._state, self.reason = FeedState.LIVE, "the engine cleared its cache (AllBlocksCleared)"
        self.index.apply(self.engine, batch.events)
        self.counts.batches += 1
        self.counts.skipped_events += len(batch.skipped)


@dataclass(frozen=True, slots=True)
class KvView:
    """What a policy reads of the engines' own caches (`EngineRegistry.kv`): the residency index
    and each engine's feed; route on an engine's index only while `trusted(engine, now)`."""

    index: ResidencyIndex
    feeds: dict[str, EngineFeed]

    def trusted(self, engine: str, now: float) -> bool:
        """Whether `engine`'s events are live at `now` (False for an engine not followed)."""
        feed = self.feeds.get(engine)
        return feed is not None and feed.trusted(now)
