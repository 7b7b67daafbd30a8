"""A libp2p host and its Kademlia DHT, run by trio in a thread of their own.

py-libp2p is trio-only, and the node serves HTTP with uvicorn on asyncio, so the two event
loops cannot share a thread. `DhtHost` runs `trio.run` in a dedicated (daemon) thread and
offers a synchronous bridge: `call(fn, timeout)` runs the coroutine `fn(dht)` in the trio
loop (trio.from_thread) and blocks the calling thread until it returns or the timeout
cancels it. Calls may come from any thread but the trio one; asyncio code calls them through
`asyncio.to_thread` (FastAPI runs plain `def` endpoints in its thread pool already).

The host listens on TCP, loopback by default; its identity is a fixed Ed25519 key derived
from a 32-byte seed, so a restarted node keeps its peer ID. The DHT is created (server mode,
strict namespace validation, memjit's validators registered) before anything is dialed.
"""

from __future__ import annotations

import logging
import threading
from typing import Awaitable, Callable, Mapping, Sequence, TypeVar

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.kad_dht import DHTMode, KadDHT
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.records.validator import Validator
from libp2p.tools.anyio_service import background_trio_service

from memjit.errors import BadInput, InternalError

T = TypeVar("T")

START_TIMEOUT = 30.0
"""Most seconds `start` waits for the listener and the bootstrap (dial, first refresh)."""
DIAL_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
PEERSTORE_TTL = 24 * 3600

# py-libp2p logs routine stream resets as warnings; without a handler of its own they would
# reach Python's last-resort handler (stderr). Applications that configure logging still
# receive them through the root logger.
logging.getLogger("libp2p").addHandler(logging.NullHandler())


class NetworkUnavailable(BadInput):
    """The discovery host cannot listen, reach its bootstrap peers, or is stopped."""


class DhtHost:
    """A libp2p host with a Kademlia DHT, running in its own trio thread."""

    def __init__(self, peer_seed: bytes, validators: Mapping[str, Validator], *,
                 listen_host: str = "127.0.0.1", port: int = 0) -> None:
        if len(peer_seed) != 32:
            raise BadInput("a peer key seed is 32 bytes")
        self._key_pair = create_new_key_pair(bytes(peer_seed))
        self.peer_key: bytes = self._key_pair.public_key.to_bytes()
        self._validators = dict(validators)
        self._listen = multiaddr.Multiaddr(f"/ip4/{listen_host}/tcp/{port}")
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._closing = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._dht: KadDHT | None = None  # set in the trio thread, used only there
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        self.addrs: list[str] = []

    def sign(self, message: bytes) -> bytes:
        """The host key's Ed25519 signature of `message` (co-signs this peer's node record)."""
        return self._key_pair.private_key.sign(message)

    def start(self, bootstrap: Sequence[str] = (), timeout: float = START_TIMEOUT) -> list[str]:
        """Listen, join the network through `bootstrap` (multiaddrs ending in /p2p/<peer ID>);
        return this host's own multiaddrs. With bootstrap peers, at least one must answer."""
        if self._thread is not None:
            raise InternalError("discovery host started twice")
        peers = [_peer_info(addr) for addr in bootstrap]
        self._thread = threading.Thread(target=self._main, args=(peers,), daemon=True,
                                        name="memjit-dht")
        self._thread.start()
        if not self._started.wait(timeout):
            self._closing.set()  # the thread leaves as soon as it gets there
            raise NetworkUnavailable(f"discovery host did not start within {timeout:g} s")
        if self._error is not None:
            self._thread.join(STOP_TIMEOUT)
            raise NetworkUnavailable(f"discovery host failed to start: {leaf_error(self._error)}")
        return list(self.addrs)

    def call(self, fn: Callable[[KadDHT], Awaitable[T]], timeout: float) -> T:
        """Run `fn(dht)` in the trio thread; TimeoutError if it takes over `timeout` s."""
        token = self._token
        if token is None:
            raise NetworkUnavailable("the discovery host is not running")

        async def bounded() -> T:
            with trio.fail_after(timeout):
                return await fn(self._dht)

        try:
            return trio.from_thread.run(bounded, trio_token=token)
        except trio.TooSlowError:
            raise TimeoutError(f"DHT operation took over {timeout:g} s") from None
        except trio.RunFinishedError:
            raise NetworkUnavailable("the discovery host is stopped") from None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Close the host and its DHT and join the thread (idempotent)."""
        self._closing.set()
        token, stop, self._token = self._token, self._stop, None
        if token is not None and stop is not None:
            try:
                trio.from_thread.run_sync(stop.set, trio_token=token)
            except trio.RunFinishedError:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise InternalError(f"discovery host did not stop within {timeout:g} s")

    def _main(self, bootstrap: list[PeerInfo]) -> None:
        try:
            trio.run(self._serve, bootstrap)
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
        finally:
            self._token = None
            self._started.set()

    async def _serve(self, bootstrap: list[PeerInfo]) -> None:
        host = new_host(key_pair=self._key_pair, listen_addrs=[self._listen])
        self._dht = dht = KadDHT(host, DHTMode.SERVER, strict_validation=True)
        for namespace, validator in self._validators.items():
            dht.register_validator(namespace, validator)
        async with host.run([self._listen]), background_trio_service(dht):
            try:
                await _join(host, dht, bootstrap)
                self.addrs = [str(addr) for addr in host.get_addrs()]
                self._stop = trio.Event()
                self._token = trio.lowlevel.current_trio_token()
                if self._closing.is_set():  # start gave up waiting, or stop came first
                    return
                self._started.set()
                await self._stop.wait()
            finally:
                # Close every connection now: a socket left to the garbage collector keeps
                # peers waiting on a dead connection (up to libp2p's 10 s query timeout).
                with trio.move_on_after(STOP_TIMEOUT / 2) as scope:
                    scope.shield = True
                    await host.close()


async def _join(host: IHost, dht: KadDHT, bootstrap: list[PeerInfo]) -> None:
    """Dial the bootstrap peers (each bounded), add them to the routing table, then refresh
    it once (a lookup of our own ID and of a random ID per bucket): the peers we meet learn
    of us, and we of them."""
    others = [info for info in bootstrap if info.peer_id != host.get_id()]
    joined = 0
    for info in others:
        host.get_peerstore().add_addrs(info.peer_id, info.addrs, PEERSTORE_TTL)
        with trio.move_on_after(DIAL_TIMEOUT):
            try:
                await host.connect(info)
                await dht.add_peer(info.peer_id)
                joined += 1
            except Exception:  # libp2p raises assorted dial/security errors: try the next
                pass
    if others and not joined:
        raise NetworkUnavailable("no bootstrap peer answered")
    if joined:
        with trio.move_on_after(DIAL_TIMEOUT):
            await dht.refresh_routing_table()


def leaf_error(exc: BaseException) -> BaseException:
    """The first leaf of an exception group (trio nurseries wrap what they raise)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _peer_info(addr: str) -> PeerInfo:
    try:
        return info_from_p2p_addr(multiaddr.Multiaddr(addr))
    except Exception:  # multiaddr raises its own parse errors
        raise BadInput(f"bad bootstrap address {addr!r}: "
                       "expected /ip4/.../tcp/.../p2p/<peer ID>") from None
