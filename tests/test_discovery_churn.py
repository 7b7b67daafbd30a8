"""Churn: eight DHT hosts on loopback; three non-bootstrap hosts stop, a record is published
while they are down, they restart (same peer IDs, new ports, empty stores) and rejoin; then
every record, old or new, is found from every host, and providers still resolve."""

from __future__ import annotations

from memjit.discovery import Discovery
from memjit.market.identity import Identity
from memjit.runtime.store import cid_of

NETWORK = "churnnet"
HOSTS = 8
CHURNED = (2, 4, 6)
SURVIVORS = (1, 3, 5, 7)


def seed(i: int) -> bytes:
    return bytes([0x80 + i]) * 32


def test_lookups_survive_three_hosts_stopping_and_rejoining():
    nodes: list[Discovery] = []
    try:
        for i in range(HOSTS):
            nodes.append(Discovery(seed(i), network=NETWORK))
            nodes[i].start(nodes[0].addrs if i else ())
        owners = [Identity.from_seed(f"o{i}", bytes([i]) * 32) for i in range(HOSTS)]

        def publish(i: int, role: str = "operator", port: int = 9000) -> None:
            records[i] = nodes[i].sign_record(owners[i], role=role,
                                              endpoint=f"http://127.0.0.1:{port + i}")
            nodes[i].publish_node(records[i])

        records = {}
        for i in SURVIVORS:
            publish(i)
        block = cid_of(b"a block provided before the churn")
        assert nodes[1].provide(block)

        for i in CHURNED:
            nodes[i].close()
        publish(7, role="gateway", port=9100)  # while they are down
        for i in CHURNED:
            nodes[i] = Discovery(seed(i), network=NETWORK)
            nodes[i].start(nodes[0].addrs)
            publish(i, port=9100)

        for i in CHURNED:  # empty stores: every lookup goes to the network
            for j in (1, 7):  # published before the churn, and during it
                assert nodes[i].find_node(nodes[j].peer_id) == records[j], (i, j)
            assert [r.peer_id for r in nodes[i].find_providers(block)] == [nodes[1].peer_id]
        for i in CHURNED:
            assert nodes[5].find_node(nodes[i].peer_id) == records[i], i
        assert nodes[0].find_owner(owners[2].public_key) == records[2]
    finally:
        for node in nodes:
            node.close()
