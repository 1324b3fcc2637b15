"""The single-flight primitive on its own: in-memory work, trio's MockClock for deadlines.

``settle`` lets every runnable task run until all are blocked; the clock moves
only when a test jumps it.
"""

from __future__ import annotations

import traceback

import pytest
import trio
import trio.testing

from mesh.net.single_flight import Flight, SingleFlight


class Boom(Exception):
    """The failure the flights under test share."""


def fresh(exc: BaseException) -> BaseException:
    return Boom(*exc.args)


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


async def ask_into(
    flights: SingleFlight, key, work, got: dict, name: str, options: dict | None = None
) -> None:
    """``flights.run(key, work, **options)``, its outcome (value or exception) under ``name``."""
    try:
        got[name] = await flights.run(key, work, **(options or {}))
    except (Boom, RuntimeError, trio.TooSlowError) as exc:
        got[name] = exc


def gated(gate: trio.Event, calls: list, value: str = "value"):
    """Work that waits for ``gate``, then answers ``value``; each call noted in ``calls``."""

    async def work(flight: Flight) -> str:
        calls.append(flight)
        await gate.wait()
        return value

    return work


# -- the leader's outcome --


async def test_the_leader_works_once_and_every_joiner_gets_its_value():
    flights: SingleFlight[str, str] = SingleFlight()
    gate, calls, got = trio.Event(), [], {}
    async with trio.open_nursery() as nursery:
        for name in ("a", "b", "c"):
            nursery.start_soon(ask_into, flights, "k", gated(gate, calls, name), got, name)
        await settle()
        assert "k" in flights and len(calls) == 1
        gate.set()
    assert "k" not in flights
    assert len(set(got.values())) == 1 and set(got) == {"a", "b", "c"}  # the leader's value
    assert len(calls) == 1


async def test_only_a_flight_is_shared_never_a_finished_outcome():
    flights: SingleFlight[str, str] = SingleFlight()
    gate, calls = trio.Event(), []
    gate.set()
    assert await flights.run("k", gated(gate, calls, "first")) == "first"
    assert await flights.run("k", gated(gate, calls, "second")) == "second"
    assert len(calls) == 2


async def test_different_keys_fly_apart():
    flights: SingleFlight[str, str] = SingleFlight()
    gate, calls, got = trio.Event(), [], {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask_into, flights, "x", gated(gate, calls, "x"), got, "x")
        nursery.start_soon(ask_into, flights, "y", gated(gate, calls, "y"), got, "y")
        await settle()
        gate.set()
    assert got == {"x": "x", "y": "y"} and len(calls) == 2


async def test_a_shared_failure_reaches_every_joiner_as_its_own_copy():
    flights: SingleFlight[str, str] = SingleFlight(shares=Boom, fresh=fresh)
    gate, got = trio.Event(), {}
    body = bytearray(b"what the work read")

    async def failing(flight: Flight) -> str:
        read = body  # noqa: F841 - a local the leader's traceback keeps
        await gate.wait()
        raise Boom("the server said no")

    async with trio.open_nursery() as nursery:
        for name in ("leader", "b", "c"):
            nursery.start_soon(ask_into, flights, "k", failing, got, name)
            await settle()
        gate.set()
    assert [str(got[name]) for name in ("leader", "b", "c")] == ["the server said no"] * 3
    assert len({id(failure) for failure in got.values()}) == 3  # each raised its own
    leader_frames = [f.name for f in traceback.extract_tb(got["leader"].__traceback__)]
    assert "failing" in leader_frames
    for name in ("b", "c"):
        frames = [f.name for f in traceback.extract_tb(got[name].__traceback__)]
        assert "failing" not in frames  # nothing of the leader's work
        assert got[name].__context__ is None and got[name].__cause__ is None


def test_sharing_exceptions_needs_a_way_to_copy_them():
    with pytest.raises(TypeError, match="needs fresh= to copy them"):
        SingleFlight(shares=Boom)


# -- take-over --


async def test_a_cancelled_leader_is_taken_over_by_a_joiner():
    """Each caller brings its own work; one joiner's runs (trio's choice), the other joins it."""
    flights: SingleFlight[str, str] = SingleFlight()
    gate, calls, got = trio.Event(), [], {}

    async def leader(task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            got["leader"] = await flights.run("k", gated(trio.Event(), calls, "never"))

    async with trio.open_nursery() as nursery:
        scope = await nursery.start(leader)
        nursery.start_soon(ask_into, flights, "k", gated(gate, calls, "b"), got, "b")
        nursery.start_soon(ask_into, flights, "k", gated(gate, calls, "c"), got, "c")
        await settle()
        assert len(calls) == 1
        scope.cancel()
        await settle()
        assert len(calls) == 2 and "k" in flights  # one joiner leads a new flight
        gate.set()
    assert "leader" not in got
    assert got["b"] == got["c"] and got["b"] in {"b", "c"}


async def test_a_leader_that_crashes_is_taken_over_and_the_crash_stays_its_own():
    """Only the types the flight shares are outcomes; a bug is not handed on."""
    flights: SingleFlight[str, str] = SingleFlight(shares=Boom, fresh=fresh)
    gate, calls, got = trio.Event(), [], {}

    async def crashing(flight: Flight) -> str:
        await gate.wait()
        raise RuntimeError("a bug")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask_into, flights, "k", crashing, got, "leader")
        await settle()
        nursery.start_soon(ask_into, flights, "k", gated(gate, calls, "joiner's own"), got, "b")
        await settle()
        gate.set()
    assert isinstance(got["leader"], RuntimeError)
    assert got["b"] == "joiner's own" and len(calls) == 1


# -- each caller's deadline --


async def test_a_joiner_stops_waiting_at_its_own_deadline(mock_clock):
    flights: SingleFlight[str, str] = SingleFlight()
    gate, calls, got = trio.Event(), [], {}

    async def work(flight: Flight) -> str:
        flight.progress = "headers in"
        await gate.wait()
        return "done"

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask_into, flights, "k", work, got, "leader")
        await settle()
        nursery.start_soon(ask_into, flights, "k", work, got, "b", {"deadline": start + 2})
        nursery.start_soon(
            ask_into, flights, "k", work, got, "c",
            {"deadline": start + 3, "late": lambda flight: f"late, {flight.progress}"},
        )
        await settle()
        mock_clock.jump(1.9)
        await settle()
        assert got == {}
        mock_clock.jump(0.2)  # +2.1 s
        await settle()
        assert set(got) == {"b"} and isinstance(got["b"], trio.TooSlowError)
        mock_clock.jump(1)  # +3.1 s
        await settle()
        assert got["c"] == "late, headers in"
        assert "leader" not in got  # the flight goes on for the others
        gate.set()
    assert got["leader"] == "done"


async def test_once_the_leader_is_untimed_a_joiner_waits_past_its_deadline(mock_clock):
    """What a deadline covers is over (the body is in): the joiner's own would be too."""
    flights: SingleFlight[str, str] = SingleFlight()
    received, parsed, got = trio.Event(), trio.Event(), {}

    async def work(flight: Flight) -> str:
        await received.wait()
        flight.untimed = True
        await parsed.wait()
        return "parsed"

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask_into, flights, "k", work, got, "leader")
        await settle()
        nursery.start_soon(ask_into, flights, "k", work, got, "b", {"deadline": start + 2})
        await settle()
        received.set()
        await settle()
        mock_clock.jump(5)
        await settle()
        assert got == {}
        parsed.set()
    assert got == {"leader": "parsed", "b": "parsed"}


async def test_a_leader_whose_deadline_passed_fails_each_joiner_at_its_own(mock_clock):
    """A joiner with a later deadline would still be waiting; one with none gets it at once."""
    flights: SingleFlight[str, str] = SingleFlight(shares=Boom, fresh=fresh)
    got: dict = {}
    start = trio.current_time()

    async def timed(flight: Flight) -> str:
        with trio.move_on_at(start + 5):
            await trio.sleep_forever()
        flight.expired = True
        raise Boom("no answer within 5 s")

    async def steps(*seconds: float) -> list[set[str]]:
        seen = []
        for step in seconds:
            mock_clock.jump(step)
            await settle()
            seen.append(set(got))
        return seen

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask_into, flights, "k", timed, got, "leader")
        await settle()
        mock_clock.jump(2)
        nursery.start_soon(ask_into, flights, "k", timed, got, "b", {"deadline": start + 7})
        nursery.start_soon(ask_into, flights, "k", timed, got, "patient")
        await settle()
        assert await steps(2.9, 0.2, 1.8, 0.2) == [
            set(),  # +4.9 s
            {"leader", "patient"},  # +5.1 s
            {"leader", "patient"},  # +6.9 s: b's own request would still be waiting
            {"leader", "patient", "b"},  # +7.1 s
        ]
    assert {str(failure) for failure in got.values()} == {"no answer within 5 s"}
