"""The sequencer's verifier process runs on idle CPU only (SCHED_IDLE; nice 19 elsewhere): its
checks settle answers already given, and must not take the cores from answers still awaited;
yet a verification it is given still completes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from memjit.market.identity import load_or_create
from memjit.market.pool import MarketConfig
from memjit.node import sequencer as sequencer_module
from memjit.node.providers import Providers
from memjit.node.replay import ReplayCache
from memjit.node.sequencer import Sequencer, idle_priority
from memjit.runtime.store import Store


def _spin(seconds: float) -> int:
    """Busy CPU for `seconds`; the scheduling policy it ran under."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else -1


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_the_verifier_process_runs_at_idle_priority_and_still_completes(tmp_path: Path
                                                                          ) -> None:
    store = Store(tmp_path)
    sequencer = Sequencer(tmp_path, store, Providers(None, lambda cid: []),
                          ReplayCache(tmp_path), MarketConfig(),
                          load_or_create(tmp_path, "sequencer"), batch_interval_s=3600)
    try:
        sequencer.start()
        policy = sequencer._verifier.submit(_spin, 0.2).result(timeout=120)
        assert policy == os.SCHED_IDLE
        assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the node's own process is not
    finally:
        sequencer.close()


def test_without_sched_idle_the_verifier_is_niced_instead(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    niced = []
    monkeypatch.delattr(os, "SCHED_IDLE", raising=False)
    monkeypatch.setattr(os, "nice", niced.append)
    idle_priority()
    assert niced == [sequencer_module.FALLBACK_NICE] and niced[0] == 19
