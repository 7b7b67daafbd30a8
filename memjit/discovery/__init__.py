"""Discovery over the libp2p Kademlia DHT: signed node records, the network's sequencer
record, and provider records for content (docs/discovery.md).

The node uses `Discovery` (service.py); records.py defines and signs the records,
validator.py is what every DHT peer runs on them, host.py runs py-libp2p (trio) in a thread.
"""

from memjit.discovery.records import InvalidRecord, NodeRecord
from memjit.discovery.service import Discovery

__all__ = ["Discovery", "InvalidRecord", "NodeRecord"]
