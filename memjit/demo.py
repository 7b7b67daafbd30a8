"""`memjit demo`: the end-to-end tour on the embedded defaults, then the market.

The tour stores the example workers in the content store, runs each in the wasmtime sandbox,
traces the same call with the instrumented runtime (cross-checked against wasmtime), proves and
verifies claims about worker executions with the VM AIR, then STARKs of the example AIRs,
printing what a node operator would look at.

The market runs one simulated day, yesterday (UTC): the ledger's clock is set to each event's
time in it, then back to real time. It registers the digits workers (three trained models on
memjit's tensor precompiles: 64-16-10, 64-32-10 and 64-256-10; random weights, a constant answer,
an endless loop) under their own owners, each bonding its stake from its faucet grant; the requester bonds validator stake, so that its labels score the answers
(a requester without stake buys answers, not scores); it sends labelled requests from the
held-out set to the top 3 workers, spread over the day, and registers the liar half-way, when
the task's slots are full, so that it prunes the weakest worker. Every answer is proven and
verified; the leaderboard shows the trained models rising, the largest ahead (it errs least),
and the cheats slashed (the loop faults, the liar's claims do not verify) or left behind (random and constant answers verify but
score low, and a wrong answer earns nothing). Back in real time yesterday's emission period is
over: it closes, sharing its capped emission among the day's scored answers by weight, and the
batcher commits their facts under a new state root, which mints the rewards.

Then the same market runs as a network on loopback (memjit.node.local): a sequencer, the honest
operator of digits_large_dot's owner, the liar's owner running digits_liar's dishonest operator, and
a gateway, each a `memjit node start` process the demo starts and stops. The owners register
through their operators' nodes (signed messages), the requester bonds validator stake and its
signed, labelled requests go through the gateway, which verifies every claim before it answers;
the sequencer judges again and settles (after the gateway answered). Once the network is
stopped, the sequencer's operator closes today's emission period early (what `memjit batch
commit --force` does) and commits its facts in batches.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from memjit import workers
from memjit.market import validators
from memjit.market.epoch import advance
from memjit.market.formulas import DAY_S
from memjit.market.identity import load_or_create
from memjit.market.ledger import Ledger
from memjit.market.oracle import OracleConfig
from memjit.market.pool import MarketConfig, prover_pool, request
from memjit.market.registry import RegistryConfig, register
from memjit.market.tasks import MAX_SCORE, read_test_set
from memjit.rollup.batcher import batches_table, commit_pending
from memjit.runtime.claims import prove_claim, vk_of
from memjit.runtime.sandbox import run
from memjit.runtime.store import Store, cid_of
from memjit.runtime.tracer import trace_checked
from memjit.workers import WORKERS_DIR, digits_liar
from verifier.claims import verify_claim

PROVEN = {  # worker -> (export, args) proven and verified end to end
    "fib": ("fib", (10,)),
    "crc32": ("crc32", (64, 1)),
    "mlp": ("classify", (3,)),
}
CALLS = {  # worker -> (export, args)
    "fib": ("fib", (15,)),
    "crc32": ("crc32", (512, 1)),
    "sort": ("sort", (1000, 7)),
    "mlp": ("classify", (3,)),
}
MARKET_WORKERS = ("small_dot", "large_dot", "xl_dot", "random", "constant", "loop")
"""digits_<name>.wasm, in registration order: the trained models on the precompiles (the plain-C
builds give the same answers and prove 20x more rows: `memjit bench precompiles`), then the
weak and the cheats."""
LATE_WORKER, LATE_AT = "liar", 12  # registers before this request, when the slots are full
REQUESTS, TOP_K, STAKE = 24, 3, 1_000
VALIDATOR_STAKE = 5_000  # of the requester's faucet grant: the rest pays the fees
MARKET = MarketConfig(registry=RegistryConfig(max_workers=len(MARKET_WORKERS),
                                              immunity_trials=2),
                      oracle=OracleConfig(full_label_stake=VALIDATOR_STAKE))


class MarketDay:
    """The demo's ledger clock: the time set for the event at hand in a simulated day (`at`),
    or real time when `at` is None."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self) -> float:
        return time.time() if self.at is None else self.at


def run_demo(home: Path, console: Console | None = None) -> None:
    """Run the demo with state under `home`: the engine tour, the market, the network."""
    console = console or Console(width=max(Console().width, 100))
    run_tour(home, console)
    run_market(home, console)
    run_network(home / "network", console)


NETWORK = {"large_dot": ("honest", None), "liar": ("liar", "memjit.workers.digits_liar")}
"""The network's workers: digits_<name> -> (its operator node, the actors that node runs)."""


def run_network(root: Path, console: Console, requests: int = 2) -> None:
    """The market as a network on loopback (see the module doc): register, request through the
    gateway, print every verdict, the leaderboard and the committed batches."""
    from memjit.node import client as messages
    from memjit.node.client import NodeClient
    from memjit.node.local import LocalNetwork

    images, labels = read_test_set()
    start = time.perf_counter()
    with LocalNetwork(root) as net, Progress(console=console, transient=True) as progress:
        progress.add_task("starting the nodes", total=None)
        sequencer = net.start("sequencer")
        operators = dict(zip(("honest", "liar"), net.start_all(  # one request at a time
            {node: actors for node, actors in NETWORK.values()}, "--provers", "1")))
        gateway = net.start("gateway")
        console.print(f"A network on loopback: sequencer {sequencer.url}, operators "
                      + ", ".join(f"{name} {node.url}" for name, node in operators.items())
                      + f", gateway {gateway.url}")
        names = {}
        for name, (node, _) in NETWORK.items():
            client = NodeClient(operators[node].url, 120.0)
            module = (WORKERS_DIR / f"digits_{name}.wasm").read_bytes()
            message = messages.registration(load_or_create(root, f"owner-{name}"), module,
                                            "digits", STAKE, client.get("/v1/status"))
            worker = client.post("/v1/workers", {"module": module.hex(),
                                                 "registration": message.to_json()}, 120.0)
            names[worker["id"]] = name
        requester = load_or_create(root, "requester")
        gw = NodeClient(gateway.url, 600.0)
        gw.post("/v1/validators", messages.stake(requester, "bond", VALIDATOR_STAKE).to_json())
        for i in range(requests):
            out = gw.post("/v1/requests", messages.request(
                requester, "digits", images[i].tobytes(), int(labels[i]),
                len(NETWORK)).to_json(), 600.0)
            settled = gw.settlement(out["nonce"])
            console.print(f"via the gateway, label {labels[i]}: "
                          + ("no verified answer" if out["answer"] is None else
                             f"{out['answer']} from {names[out['worker']]} (verified)")
                          + "  " + ", ".join(f"{names[c['worker']]} {c['verdict']}"
                                             for c in out["calls"])
                          + ("" if settled["status"] == "settled" else
                             f"  [red]not settled: {settled['error']}"))
    with Ledger(root / "sequencer") as ledger:
        # the sequencer's operator closes today's period early, as `memjit --home SEQUENCER
        # batch commit --force` does: its scored calls become facts, the next period opens
        closed = advance(ledger, close_now=True).closed
        console.print(_leaderboard(ledger, names))
        store = Store(root / "sequencer")
        headers = commit_pending(ledger, store, root / "sequencer")
        console.print(batches_table(ledger, store, root / "sequencer"))
    console.print(f"{requests} labelled requests (the requester bonded {VALIDATOR_STAKE} SWT of "
                  f"validator stake through the gateway) in {time.perf_counter() - start:.0f} s, "
                  f"nodes started and stopped; today's emission period closed early "
                  f"({sum(p.paid for p in closed)} SWT assigned), {len(headers)} batch(es) "
                  f"committed by the sequencer")


def run_tour(home: Path, console: Console) -> None:
    """Store, run, trace and prove the example workers; prove the example AIRs."""
    from benchmarks.stark import bench_stark

    store = Store(home)
    table = Table(title="Workers: content store, sandbox and tracer")
    for col in ("worker", "call", "result", "fuel", "run ms", "steps", "trace M/s"):
        table.add_column(col, justify="left" if col in ("worker", "call") else "right", no_wrap=True)
    cids = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("running workers", total=len(CALLS))
        for name, (export, args) in CALLS.items():
            module = workers.load(name)
            cids.append((name, store.put(module)))
            result = run(module, export, args)
            trace_checked(module, export, args)  # compile / warm the tracer
            start = time.perf_counter()
            tr = trace_checked(module, export, args)
            elapsed = time.perf_counter() - start
            table.add_row(name, f"{export}({', '.join(map(str, args))})", str(result.results[0]),
                          str(result.fuel_used), f"{result.elapsed_s * 1e3:.2f}", str(tr.steps),
                          f"{tr.steps / elapsed / 1e6:.1f}")
            progress.advance(task)
    console.print(table)
    for name, cid in cids:
        console.print(f"  {name:6} {cid}")

    claims = Table(title="Proven worker executions (VM AIR, >= 100-bit security)")
    for col in ("call", "result", "steps", "rows", "prove s", "verify ms", "KB", "ok"):
        claims.add_column(col, justify="left" if col == "call" else "right", no_wrap=True)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("proving worker claims", total=len(PROVEN))
        for name, (export, args) in PROVEN.items():
            module = workers.load(name)
            start = time.perf_counter()
            claim = prove_claim(module, export, args)
            prove_s = time.perf_counter() - start
            data = claim.encode()
            start = time.perf_counter()
            verdict = verify_claim(data, vk_of(module))
            verify_ms = (time.perf_counter() - start) * 1e3
            st = claim.statement
            claims.add_row(f"{name}.{export}({', '.join(map(str, args))})",
                           f"trap {st.trap}" if st.trap else str(st.result), str(st.steps),
                           f"2^{st.log_n}", f"{prove_s:.2f}", f"{verify_ms:.1f}",
                           f"{len(data) / 1024:.0f}", "yes" if verdict.valid else verdict.reason)
            progress.advance(task)
    console.print(claims)

    proofs = Table(title="STARK proofs (>= 100-bit conjectured security)")
    for col in ("AIR", "rows", "prove s", "verify ms", "proof KB", "bits"):
        proofs.add_column(col, justify="right" if col != "AIR" else "left")
    with Progress(console=console, transient=True) as progress:
        cases = [("fibonacci", 16), ("range_check", 14)]
        task = progress.add_task("proving", total=len(cases))
        for air, log_rows in cases:
            r = bench_stark(air, log_rows, repeat_verify=5)
            proofs.add_row(air, f"2^{log_rows}", f"{r['prove_s']:.2f}", f"{r['verify_s'] * 1e3:.1f}",
                           f"{r['proof_bytes'] / 1024:.1f}", str(r["security_bits"]))
            progress.advance(task)
    console.print(proofs)


def _join(ledger: Ledger, store: Store, name: str) -> str:
    """Register digits_<name> under its own owner (unless it is already); its worker id."""
    module = (WORKERS_DIR / f"digits_{name}.wasm").read_bytes()
    known = ledger.worker_by_cid(cid_of(module))
    if known is not None:
        return known.id
    owner = load_or_create(store.home, f"owner-{name}")
    return register(ledger, store, owner, module, STAKE, "digits", MARKET.registry,
                    MARKET.rewards.faucet).id


def run_market(home: Path, console: Console, requests: int = REQUESTS,
               late_at: int = LATE_AT, first: int = 0) -> None:
    """Register the digits workers, serve `requests` labelled requests spread over yesterday
    on the held-out images from number `first` on (the liar registers before request number
    `late_at`), close the day's emission period, print the leaderboard and commit the facts."""
    start = time.perf_counter()
    images, labels = read_test_set()
    store = Store(home)
    clock = MarketDay()
    day = (int(time.time()) // DAY_S - 1) * DAY_S  # yesterday, 00:00 UTC
    clock.at = float(day)
    with Ledger(home, clock=clock) as ledger, prover_pool() as executor, \
            Progress(console=console, transient=True) as progress:
        joining = progress.add_task("registering workers (BLS-signed)", total=len(MARKET_WORKERS))
        names: dict[str, str] = {}
        for i, name in enumerate(MARKET_WORKERS):
            clock.at = day + 60.0 * i  # a minute apart: registration order breaks ties
            names[_join(ledger, store, name)] = name
            progress.advance(joining)

        def called(wid: str) -> str:
            return names.get(wid, wid[:16])  # a worker someone else added to this home

        requester = load_or_create(home, "requester")
        missing = VALIDATOR_STAKE - validators.bonded(ledger, requester.public_key)
        if missing > 0:
            validators.bond(ledger, requester, missing, MARKET.rewards.faucet)
        console.print(f"A simulated market day, yesterday (UTC): {requests} requests spread over "
                      f"it. The requester has {VALIDATOR_STAKE} SWT of validator stake bonded: "
                      "its labels score the answers at the full EMA rate.")
        served = progress.add_task(f"requests (top {TOP_K}, proven + verified)", total=requests)
        answers = progress.add_task("answers", total=TOP_K)
        for i in range(requests):
            clock.at = day + (i + 1) * DAY_S / (requests + 1)
            if i == late_at:
                wid = _join(ledger, store, LATE_WORKER)
                names[wid] = LATE_WORKER
                with ledger.transaction() as db:
                    pruned = db.execute("SELECT worker FROM prunings WHERE replaced_by = ?",
                                        (wid,)).fetchone()
                if pruned is not None:
                    console.print(f"[bold]{LATE_WORKER} registers: the slots are full, "
                                  f"{called(pruned[0])} (lowest usefulness) is pruned")
            progress.reset(answers)
            result = request(ledger, store, requester, "digits", images[first + i].tobytes(),
                             label=int(labels[first + i]), top_k=TOP_K, config=MARKET,
                             executor=executor, operators=digits_liar.operators(),
                             on_delivery=lambda worker, _: progress.advance(answers))
            progress.advance(served)
            best = result.best
            slashed = ", ".join(f"{called(c.worker)} ({c.reason.split(':')[0]})"
                                for c in result.calls if c.slashed)
            console.print(f"#{i + 1:02} {time.strftime('%H:%M', time.gmtime(clock.at))} "
                          f"label {labels[first + i]}: "
                          + (f"{best.result} from {called(best.worker)}" if best else "no answer")
                          + f"  asked {', '.join(called(c.worker) for c in result.calls)}"
                          + ("" if result.reference.basis == "label"
                             else f"  [yellow]{result.reference.basis or 'unscored'}")
                          + (f"  [red]slashed {slashed}" if slashed else ""))
        clock.at = None  # back to real time: yesterday's emission period is over
        closed = advance(ledger, MARKET.rewards).closed
        console.print(_leaderboard(ledger, names))
        left, _ = ledger.balance(requester.public_key)
        elapsed = time.perf_counter() - start
        console.print(f"{requests} requests x top {TOP_K}, every answer proven and verified, "
                      f"in {elapsed:.0f} s. The requester has {left} SWT free of its faucet "
                      f"grant of {MARKET.rewards.faucet} ({VALIDATOR_STAKE} bonded as validator "
                      "stake).")
        for period in closed:
            date = time.strftime("%Y-%m-%d", time.gmtime(period.number * MARKET.rewards.period_s))
            console.print(f"emission period {date} closed: {period.calls} scored answers of "
                          f"total weight {period.weight} share at most {period.emission} SWT: "
                          f"{period.paid} SWT assigned")
        headers = commit_pending(ledger, store, home)  # the rollup mints the pending rewards
        console.print(batches_table(ledger, store, home))
        console.print(f"{sum(h.fact_count for h in headers)} facts committed in {len(headers)} "
                      f"batch(es), {sum(h.minted for h in headers)} SWT minted; state root "
                      f"{headers[-1].state_root_after.hex() if headers else '(unchanged)'}")
    console.print(f"state kept under {home}")


def _leaderboard(ledger: Ledger, names: dict[str, str]) -> Table:
    """The digits workers by usefulness: calls, right answers, stake left, stake slashed,
    SWT earned (assigned when its period closed, minted when a batch commits it) and fees
    received."""
    with ledger.transaction() as db:
        stats = {row[0]: row[1:] for row in db.execute(
            "SELECT worker, count(*), sum(score = ?), sum(slashed), sum(reward), sum(fee) "
            "FROM calls GROUP BY worker", (MAX_SCORE,))}
        pruned = {row[0] for row in db.execute("SELECT worker FROM prunings")}
    table = Table(title="Leaderboard of the digits task (usefulness: EMA of verified scores)")
    for col in ("#", "worker", "usefulness", "calls", "right", "stake", "slashed", "earned",
                "fees", "status"):
        table.add_column(col, justify="left" if col in ("worker", "status") else "right")
    ranked = sorted(ledger.workers("digits"), key=lambda w: (-w.usefulness, -w.stake, w.id))
    for rank, w in enumerate(ranked, 1):
        calls, right, slashed, reward, fees = stats.get(w.id, (0, 0, 0, 0, 0))
        status = "pruned" if w.id in pruned else w.status
        table.add_row(str(rank), names.get(w.id, w.id[:16]),
                      f"{w.usefulness / MAX_SCORE:.3f}", str(calls), str(right),
                      f"{w.stake}/{STAKE}", f"[red]{slashed}" if slashed else "0",
                      str(reward), str(fees), status)
    return table
