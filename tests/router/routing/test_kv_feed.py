"""One engine's KV-event feed (pure): a sync from the replay buffer, gap replay, and the fallback
states (untrusted, stale) with the ways back to live."""

from __future__ import annotations

import itertools

import pytest

from router.routing.kv.events import AllBlocksCleared, BlockStored, KvEventBatch, Tier
from router.routing.kv.feed import EngineFeed, FeedState, Replay
from router.routing.kv.keys import block_keys
from router.routing.kv.residency import ResidencyIndex
from router.settings import RouterSettings, SettingsError

E = "http://10.0.0.5:8000"
TOKENS = [tuple(range(b, b + 16)) for b in (0, 100, 200, 300)]


_TS = itertools.count(1)


def _batch(seq: int, *events, ts: float | None = None) -> KvEventBatch:
    """A batch stamped, as vLLM stamps each, with a time of its own unless `ts` is given."""
    return KvEventBatch(topic="t", seq=seq, ts=float(next(_TS)) if ts is None else ts, events=tuple(events))


def _store(i: int) -> BlockStored:
    """Block i: a one-block prompt of its own (parent None)."""
    return BlockStored((i,), None, TOKENS[i], 16, Tier.GPU)


def _feed() -> tuple[EngineFeed, ResidencyIndex]:
    index = ResidencyIndex()
    index.add_engine(E, {Tier.GPU: 16 * 100})
    return EngineFeed(E, index, stale_after_s=5.0, now=0.0), index


def _held(index: ResidencyIndex, i: int) -> bool:
    return index.match(E, block_keys(TOKENS[i])).total == 1


def test_a_sync_from_seq_0_is_live_and_holds_every_replayed_store() -> None:
    """A replay whose buffer starts at seq 0 rebuilds the engine exactly: live."""
    feed, index = _feed()
    replay = feed.sync()
    assert replay == Replay(0) and feed.state(0.0) is FeedState.SYNCING
    feed.replayed(replay, [_batch(0, _store(0)), _batch(1, _store(1))])
    feed.connected()
    assert feed.state(1.0) is FeedState.LIVE and feed.trusted(1.0)
    assert _held(index, 0) and _held(index, 1)


def test_a_buffer_that_no_longer_starts_at_0_is_untrusted_until_the_cache_is_cleared() -> None:
    """Replayed batches from seq 7 on: untrusted (still applied); AllBlocksCleared brings it back
    live with every tier emptied."""
    feed, index = _feed()
    feed.replayed(feed.sync(), [_batch(7, _store(0))])
    feed.connected()
    assert feed.state(1.0) is FeedState.UNTRUSTED and _held(index, 0)
    assert feed.live(_batch(8, AllBlocksCleared(), _store(1))) is None
    assert feed.state(1.0) is FeedState.LIVE and _held(index, 1) and not _held(index, 0)


def test_a_gap_asks_its_seqs_and_a_full_answer_keeps_it_live() -> None:
    """Seq 3 after 1: replay from 2, before 3; the replayed 2 and 3 applied once each (the live 3
    that waited not again), the state live again."""
    feed, index = _feed()
    feed.replayed(feed.sync(), [_batch(0), _batch(1)])
    feed.connected()
    gap = feed.live(_batch(3, _store(3)))
    assert gap == Replay(2, 3) and feed.state(1.0) is FeedState.SYNCING and not feed.trusted(1.0)
    feed.replayed(gap, [_batch(2, _store(2)), _batch(3, _store(3))])
    assert feed.state(1.0) is FeedState.LIVE and _held(index, 2) and _held(index, 3)
    assert (feed.counts.gaps_replayed, feed.counts.duplicates, feed.counts.batches) == (1, 0, 4)


@pytest.mark.parametrize("answer", [None, [], [(5,)]])
def test_a_gap_replay_cannot_fill_is_untrusted_and_a_fresh_publisher_is_live(answer) -> None:
    """No answer, an empty one or one past the gap: untrusted, the waiting batch applied; a
    seq 0 afterwards (the engine restarted) empties the index and is live."""
    feed, index = _feed()
    feed.replayed(feed.sync(), [_batch(0, _store(0))])
    gap = feed.live(_batch(4, _store(1)))
    assert gap is not None
    feed.replayed(gap, None if answer is None else [_batch(s) for (s,) in answer])
    assert feed.state(1.0) is FeedState.UNTRUSTED and feed.counts.gaps_lost == 1 and _held(index, 1)
    assert feed.live(_batch(0, _store(2))) is None
    assert feed.state(1.0) is FeedState.LIVE and _held(index, 2) and not _held(index, 0)


def test_an_unreachable_publisher_is_stale_after_the_bound_and_a_reconnection_resyncs() -> None:
    """Lost at t=10: syncing (lost, not trusted) at once and until 14.9, stale at 15; reaching
    it again asks a fresh sync."""
    feed, _ = _feed()
    feed.replayed(feed.sync(), [])
    assert feed.connected() is False  # the first connection after an answered sync
    assert feed.state(9.0) is FeedState.LIVE and not feed.lost(9.0)
    feed.disconnected(10.0)
    assert feed.lost(10.0) and feed.state(10.0) is FeedState.SYNCING and not feed.trusted(10.0)
    assert feed.state(14.9) is FeedState.SYNCING and feed.state(15.0) is FeedState.STALE
    assert not feed.trusted(15.0) and not feed.lost(15.0)
    assert feed.connected() is True
    assert feed.state(15.0) is FeedState.LIVE  # until the shell runs the sync it was asked


def test_a_publisher_never_reached_is_not_lost() -> None:
    """Before its first connection an engine's feed is syncing (waiting), not lost."""
    feed, _ = _feed()
    feed.sync()
    feed.disconnected(1.0)
    assert not feed.lost(1.0) and feed.state(1.0) is FeedState.SYNCING


def test_a_late_seq_0_is_a_duplicate_and_a_new_publishers_seq_0_a_restart() -> None:
    """Seq 0 reordered behind seq 1: 1 shows the gap, the replay applies 0 and 1, and the late 0
    (its timestamp that of the 0 applied) is skipped, keeping the blocks; a seq 0 stamped anew is
    a new publisher: the index emptied."""
    feed, index = _feed()
    feed.replayed(feed.sync(), [])
    feed.connected()
    first, second = _batch(0, _store(0)), _batch(1, _store(1))
    gap = feed.live(second)
    assert gap == Replay(0, 1)
    feed.replayed(gap, [first, second])
    assert feed.live(first) is None
    assert feed.counts.duplicates == 1 and feed.counts.restarts == 0
    assert feed.state(1.0) is FeedState.LIVE and _held(index, 0) and _held(index, 1)
    assert feed.live(_batch(0, _store(2))) is None
    assert feed.counts.restarts == 1 and _held(index, 2) and not _held(index, 0) and not _held(index, 1)


def test_a_duplicate_or_reordered_batch_is_skipped() -> None:
    """A batch at or below the last seq applied is not applied again."""
    feed, _ = _feed()
    feed.replayed(feed.sync(), [_batch(0), _batch(1)])
    assert feed.live(_batch(1, _store(1))) is None and feed.counts.duplicates == 1


@pytest.mark.parametrize(("kv", "field"), [
    ({"port": 0}, "kv_events.port"), ({"port": "5557"}, "kv_events.port"),
    ({"replay_port": 70000}, "kv_events.replay_port"),
    ({"port": 6000, "replay_port": 6000}, "kv_events.replay_port"),
    ({"stale_after_s": 0}, "kv_events.stale_after_s"),
    ({"replay_timeout_s": 4000}, "kv_events.replay_timeout_s"),
    ({"enabled": "yes"}, "kv_events.enabled"), ({"topic": "x"}, "kv_events.topic"),
])
def test_kv_events_settings_refuse_bad_values_naming_the_field(kv, field) -> None:
    """Each bad kv_events setting raises SettingsError naming it."""
    with pytest.raises(SettingsError) as err:
        RouterSettings.from_dict({"engines": [{"url": "http://e:8000"}], "kv_events": kv})
    assert err.value.field_name == field


def test_kv_events_settings_round_trip() -> None:
    """Rendered and read back, the section is the same (replay off included)."""
    settings = RouterSettings.from_dict({"engines": [{"url": "http://e:8000"}],
                                         "kv_events": {"enabled": True, "replay_port": None}})
    assert RouterSettings.from_dict(settings.to_dict()) == settings and settings.kv_events.replay_port is None
