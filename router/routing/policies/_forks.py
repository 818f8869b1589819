"""Where conversations fork off a shared prefix: the `prefix` policy's notion of a hot prefix.

Each routed prompt that extends a prefix an engine already holds forks at the end of that
match: the last matched block hash is the fork point, the next block hash the continuation.
A conversation's own next round adds one continuation at a new point; a system prompt shared
by many users collects a different continuation per user. A fork point with `threshold` (2)
distinct continuations is *shared*: the policy then counts the prefix up to it as common to
every engine (like a prefix all engines hold), so new users of a hot system prompt are
placed by rendezvous hashing past it instead of all following the first engine that cached it.

Bounded: at most `max_points` fork points (least recently seen forgotten), at most
`threshold` continuations each. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence


class ForkPoints:
    def __init__(self, *, threshold: int = 2, max_points: int = 4096, max_scan: int = 256) -> None:
        self.threshold = threshold
        self.max_points = max_points
        self.max_scan = max_scan  # blocks from the start of a prompt searched for a shared point
        self._points: OrderedDict[int, set[int]] = OrderedDict()

    def record(self, hashes: Sequence[int], matched: int) -> None:
        """A prompt with block `hashes` went where its first `matched` blocks were held."""
        if not 0 < matched < len(hashes):
            return
        point, continuation = hashes[matched - 1], hashes[matched]
        seen = self._points.get(point)
        if seen is None:
            seen = self._points[point] = set()
            if len(self._points) > self.max_points:
                self._points.popitem(last=False)
        else:
            self._points.move_to_end(point)
        if len(seen) < self.threshold:
            seen.add(continuation)

    def shared_depth(self, hashes: Sequence[int], limit: int) -> int:
        """Blocks of the longest shared prefix of `hashes` within its first `limit` blocks (0: none)."""
        points, threshold = self._points, self.threshold
        end = min(limit, len(hashes), self.max_scan)
        if points.keys().isdisjoint(hashes[:end]):  # the usual case, one C-level pass
            return 0
        for depth in range(end, 0, -1):
            seen = points.get(hashes[depth - 1])
            if seen is not None and len(seen) >= threshold:
                return depth
        return 0

    def __len__(self) -> int:
        return len(self._points)
