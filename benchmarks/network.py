"""`memjit bench network`: DHT bootstrap time and lookup latencies for N nodes on loopback.

Node 0 starts alone; nodes 1..N-1 then join through it one after the other (dial, then one
routing-table refresh), and the bootstrap time is the wall time until every one has joined.
(Joining all at once is slower: refreshes then wait on peers that are themselves mid-join,
up to py-libp2p's 10 s query timeout, which `Discovery.start` bounds.)
Each node publishes its signed node record and provides `lookups / N` (rounded up) blocks.
Then a late joiner, whose store is empty, looks up every node record (`find_node`: one remote
GET_VALUE lookup) and the providers of every block (`find_providers`: a remote provider
lookup, then the provider's node record); p50/p95 are reported for both. All in one process:
every node's trio loop runs in its own thread, so the GIL is shared and the numbers are an
upper bound of what separate processes would see.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable

from memjit.discovery import Discovery
from memjit.market.identity import Identity
from memjit.runtime.store import cid_of

NETWORK = "bench"


def bench_network(nodes: int = 8, lookups: int = 32) -> dict:
    """Start `nodes` DHT nodes on 127.0.0.1 and time bootstrap, publish and lookups."""
    members = [Discovery(bytes([i % 256, i // 256]) * 16, network=NETWORK) for i in range(nodes)]
    late = Discovery(b"\xff" * 32, network=NETWORK)
    started: list[Discovery] = []
    try:
        members[0].start()
        started.append(members[0])
        joins: list[float] = []

        def join(node: Discovery) -> None:
            t = time.perf_counter()
            node.start(members[0].addrs)
            joins.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        started.extend(members[1:])  # closed in the finally even if a start fails
        for node in members[1:]:
            join(node)
        bootstrap_s = time.perf_counter() - t0

        publish: list[float] = []
        cids: list[str] = []
        per_node = math.ceil(lookups / nodes)
        for i, node in enumerate(members):
            owner = Identity.from_seed(f"owner{i}", f"bench-owner-{i}".encode().ljust(32, b"."))
            record = node.sign_record(owner, role="operator",
                                      endpoint=f"http://127.0.0.1:{10000 + i}")
            publish.append(_timed(lambda: node.publish_node(record)))
            for j in range(per_node):
                cid = cid_of(f"block {i}.{j}".encode())
                node.provide(cid)
                cids.append(cid)

        late.start(members[0].addrs)
        started.append(late)
        found, find_node = _lookups([lambda n=n: late.find_node(n.peer_id) for n in members])
        provided, find_providers = _lookups(
            [lambda c=c: late.find_providers(c) for c in cids[:lookups]])
        return {
            "nodes": nodes,
            "bootstrap_s": round(bootstrap_s, 3),
            "join_p50_s": _pct(joins, 50),
            "join_p95_s": _pct(joins, 95),
            "publish_p50_s": _pct(publish, 50),
            "find_node_p50_s": _pct(find_node, 50),
            "find_node_p95_s": _pct(find_node, 95),
            "find_node_found": f"{found}/{len(members)}",
            "find_providers_p50_s": _pct(find_providers, 50),
            "find_providers_p95_s": _pct(find_providers, 95),
            "find_providers_found": f"{provided}/{min(lookups, len(cids))}",
        }
    finally:
        for node in started:
            node.close()


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _lookups(calls: list[Callable[[], object]]) -> tuple[int, list[float]]:
    """Run each lookup once; how many found something, and their wall times."""
    found, times = 0, []
    for call in calls:
        t = time.perf_counter()
        found += bool(call())
        times.append(time.perf_counter() - t)
    return found, times


def _pct(values: list[float], q: int) -> float:
    """The q-th percentile (inclusive method; the value itself for a single sample)."""
    if len(values) == 1:
        return round(values[0], 4)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 4)


if __name__ == "__main__":
    import json

    print(json.dumps(bench_network()))
