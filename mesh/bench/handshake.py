"""mesh's own handshake: two TlsStreams, validation on, as a ratio to the openssl pair.

Each connection is what a link does before its first application byte: the
sensor dials, both ends complete a TLS 1.3 mutual handshake, and each end
judges the other's presented chain with ``validate_peer`` (chain to the
root, validity at the run's instant, strength, purpose, name, and revocation
against CRLs already fetched and indexed, as the engine's CRL cache holds
them). The server acknowledges only after its verdict, so a counted handshake
is a link both ends accepted.

Four mesh figures: no ``validate_peer`` at all (the TLS layer alone),
validated with small CRLs, validated with the largest CRL of the run
(1,000,000 entries) cached for the issuing CA, and validated through the
engine's own ``PeerChecker`` (CrlFetcher cache, then ``validate_peer``);
beside them, in the same interleaved rounds, the openssl pair and trio over
the standard library's ``ssl``. The targets are the ratios of the second and
third to the pair. Plus the cost of one ``validate_peer`` call on its own.
"""

from __future__ import annotations

import datetime as dt
import statistics
import timeit
from typing import Callable

import trio
from cryptography import x509

from mesh.appliances.checks import PeerChecker
from mesh.bench import openssl_pair
from mesh.bench.context import Bench
from mesh.bench.loop import ACK, Rate, handshake_rate
from mesh.bench.material import SERVER_NAME, Material
from mesh.bench.stdlib_tls import stdlib_rate
from mesh.bench.targets import Key
from mesh.net.tls import TLS1_3, TlsStream, make_context
from mesh.net.tls import connect as connect_tls
from mesh.validation.policy import ValidationPolicy
from mesh.validation.revocation import CrlIndex, CrlLookup, crl_lookup
from mesh.validation.verdict import validate_peer

__all__ = ["NAME", "run", "mesh_rate", "lookup_for"]

NAME = "handshake"


def lookup_for(material: Material, big: CrlIndex | None = None) -> CrlLookup:
    """A CrlLookup with both CAs' CRLs; ``big`` replaces the issuing CA's."""
    crls = material.small_crls()
    if big is not None:
        assert material.issuing.crl_url is not None
        crls[material.issuing.crl_url] = big
    return crl_lookup(crls)


def mesh_rate(
    material: Material,
    seconds: float,
    *,
    lookup: CrlLookup | None = None,
    validate: bool = True,
    engine_path: int | None = None,
) -> Rate:
    """Handshakes/s between two mesh TlsStreams in one trio process.

    ``engine_path``: judge each chain the way an appliance does, through
    ``mesh.appliances.checks.PeerChecker`` (its CrlFetcher's cache, then
    ``validate_peer``), with a ``CrlServer`` on that port serving the CRLs.
    """
    server_ctx = make_context(
        material.server, server=True, trust=material.trust, min_version=TLS1_3
    )
    client_ctx = make_context(
        material.client, server=False, trust=material.trust, min_version=TLS1_3
    )
    as_server = ValidationPolicy(purpose="client")
    as_client = ValidationPolicy(purpose="server", expected_name=SERVER_NAME)
    trust = material.trust
    lookup = lookup if lookup is not None else lookup_for(material)
    # The run's instant: the certificates were issued for the wall clock.
    at = dt.datetime.now(dt.timezone.utc)

    checkers: dict[str | None, PeerChecker] = {}

    async def judge(chain: list[x509.Certificate], policy: ValidationPolicy) -> None:
        if not validate:
            return
        if engine_path is not None:
            checker = checkers[policy.purpose]
            verdict = await checker.check(chain, trust=trust, policy=policy)
        else:
            verdict = validate_peer(chain, trust=trust, at=at, crls=lookup, policy=policy)
        if not verdict.accepted:
            raise RuntimeError(f"bench peer refused: {verdict.primary}")

    async def serve(stream: trio.SocketStream) -> None:
        tls = TlsStream.server(stream, server_ctx)
        await tls.do_handshake()
        await judge(tls.peer_chain(), as_server)
        await tls.send_all(ACK)

    async def connect(port: int) -> None:
        # As an appliance dials (mesh.net.tls.connect): one socket to one
        # address, the handshake under its timeout.
        tls = await connect_tls("127.0.0.1", port, client_ctx, server_hostname=SERVER_NAME)
        try:
            await judge(tls.peer_chain(), as_client)
            if await tls.receive_some(1) != ACK:
                raise RuntimeError("server did not acknowledge the handshake")
        finally:
            await tls.aclose_forcefully()

    if engine_path is None:
        return trio.run(handshake_rate, serve, connect, seconds)

    async def with_checkers() -> Rate:
        from mesh.clock import EmulatedClock
        from mesh.eventlog import EventLog
        from mesh.net.crl_server import CrlServer

        server = CrlServer(material.crl_documents(), port=engine_path)
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            clock = EmulatedClock(at)
            for purpose, name in (("client", "console"), ("server", "sensor")):
                checkers[purpose] = PeerChecker(name, clock=clock, events=EventLog())
            try:
                return await handshake_rate(serve, connect, seconds)
            finally:
                for checker in checkers.values():
                    await checker.aclose()
                nursery.cancel_scope.cancel()

    return trio.run(with_checkers)


def _validate_cost(bench: Bench, material: Material, lookup: CrlLookup, label: str) -> None:
    """One ``validate_peer`` call, on the same objects and on freshly parsed ones.

    Freshly parsed is what a handshake sees (``peer_chain`` makes new
    certificate objects each time, so nothing cached on an object helps).
    """
    from cryptography.hazmat.primitives.serialization import Encoding

    chain = [material.client.cert, *material.client.chain]
    ders = [c.public_bytes(Encoding.DER) for c in chain]
    policy = ValidationPolicy(purpose="client")
    at = dt.datetime.now(dt.timezone.utc)
    trust = material.trust

    def same() -> None:
        validate_peer(chain, trust=trust, at=at, crls=lookup, policy=policy)

    def fresh() -> None:
        parsed = [x509.load_der_x509_certificate(d) for d in ders]
        validate_peer(parsed, trust=trust, at=at, crls=lookup, policy=policy)

    verdict = validate_peer(chain, trust=trust, at=at, crls=lookup, policy=policy)
    if not verdict.accepted:
        raise RuntimeError(f"bench client refused: {verdict.primary}")
    calls = bench.pick(2_000, 100)
    for how, fn in (("same objects", same), ("freshly parsed chain", fresh)):
        per = min(timeit.repeat(fn, repeat=3, number=calls)) / calls
        bench.record(NAME, f"validate_peer, one call, {label}, {how}", per * 1e6, "us")


def run(bench: Bench) -> None:
    material = bench.material(2048)
    count = bench.big_crl_size
    index = CrlIndex.from_bytes(bench.crls.der(count))
    index.signed_by(material.issuing.cert)  # the fetcher checks it once, on arrival
    small, big = lookup_for(material), lookup_for(material, index)
    _validate_cost(bench, material, small, "small CRLs")
    _validate_cost(bench, material, big, f"{count:,}-entry CRL")

    # Interleaved rounds: the machine may be shared and its load drifts, so
    # every contender gets a trial in every round. Rates shown are the best of
    # the rounds; ratios are the median over rounds of (contender / pair in
    # the same round), which cancels drift better than best-over-best.
    seconds = bench.pick(2.0, 0.2)
    pair_seconds = bench.pick(2, 1)  # s_time counts whole seconds
    rounds = bench.pick(5, 1)
    contenders: dict[tuple[str, str], Callable[[], Rate]] = {
        Key.OPENSSL_RATE: lambda: _openssl_trial(bench, material, pair_seconds),
        Key.STDLIB_RATE: lambda: stdlib_rate(material, seconds),
        Key.MESH_PLAIN: lambda: mesh_rate(material, seconds, validate=False),
        Key.MESH_VALIDATED: lambda: mesh_rate(material, seconds, lookup=small),
        Key.MESH_BIG_CRL: lambda: mesh_rate(material, seconds, lookup=big),
        Key.MESH_ENGINE_PATH: lambda: mesh_rate(material, seconds, engine_path=bench.crl_port),
    }
    best: dict[tuple[str, str], Rate] = {}
    trials: dict[tuple[str, str], list[Rate]] = {key: [] for key in contenders}
    for _ in range(rounds):
        for key, trial in contenders.items():
            rate = trial()
            trials[key].append(rate)
            if key not in best or rate.per_second > best[key].per_second:
                best[key] = rate
    note = f"best of {rounds} x {seconds} s, interleaved"
    for key, rate in best.items():
        name = key[1] if key[0] == NAME else f"{key[1]} (interleaved)"
        extra = f", {count:,}-entry CRL cached" if key == Key.MESH_BIG_CRL else ""
        bench.record(NAME, name, rate.per_second, "handshakes/s", note + extra)
        bench.record(NAME, f"  CPU per handshake (both ends), {key[1]}", rate.cpu_per_handshake * 1e3, "ms")
    pairs = [r.per_second for r in trials[Key.OPENSSL_RATE]]
    for key, ratio_key in (
        (Key.STDLIB_RATE, None),
        (Key.MESH_PLAIN, None),
        (Key.MESH_VALIDATED, Key.VALIDATED_RATIO),
        (Key.MESH_BIG_CRL, Key.BIG_CRL_RATIO),
        (Key.MESH_ENGINE_PATH, None),
    ):
        name = ratio_key[1] if ratio_key else f"{key[1]} / openssl pair"
        per_round = [r.per_second / p for r, p in zip(trials[key], pairs)]
        spread = ", ".join(f"{x:.2f}" for x in per_round)
        bench.record(
            NAME, name, statistics.median(per_round), "x", f"median of rounds [{spread}]"
        )
    # CPU per handshake is steadier than a rate on a shared machine (another
    # process's load stretches wall time, not our CPU time): shown beside.
    pair_cpu = best[Key.OPENSSL_RATE].cpu_per_handshake
    for key in (Key.MESH_VALIDATED, Key.MESH_BIG_CRL):
        bench.record(
            NAME,
            f"CPU per handshake, openssl pair / {key[1]}",
            pair_cpu / best[key].cpu_per_handshake,
            "x",
            "above 1: mesh spends less CPU per handshake than the pair",
        )


def _openssl_trial(bench: Bench, material: Material, seconds: int) -> Rate:
    rate, cpu = openssl_pair.measure(material, seconds, bench.workdir / "s_server-rounds.log")
    handshakes = max(1, round(rate * seconds))
    return Rate(handshakes=handshakes, seconds=handshakes / rate, cpu_seconds=cpu * handshakes, failures=0)
