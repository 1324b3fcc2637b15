"""A node's console moves its clock and stops/starts its appliance (mesh.node_control).

Real nodes (``run_node``/``run_shard`` in this trio run, on loopback), real
HTTPS requests with the console's token.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import trio

from mesh.node import load_shard, run_shard
from tests.test_node import Capture, _config, _started_node, _token, _write
import tests.test_node as _node_tests

#: The two-node deployment of tests/test_node.py (fixtures).
written, files = _node_tests.written, _node_tests.files

EPOCH = dt.datetime(2027, 1, 15, 9, tzinfo=dt.timezone.utc)


def _listening(out: Capture, name: str | None = None) -> dict[str, Any]:
    (event,) = [e for e in out.events() if e["kind"] == "api-listening"
                and (name is None or e["appliance"] == name)]
    return event


async def _call(listening: dict[str, Any], method: str, path: str, body: Any = None,
                *, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=listening["url"], verify=False, timeout=30) as client:
        return await client.request(method, path, json=body,
                                    headers=_token(listening) if headers is None else headers)


async def test_the_clock_moves_forward_by_seconds_or_to_an_instant_never_back(tmp_path, nursery):
    out = Capture()
    await _started_node(nursery, _write(tmp_path, 'name = "a"\nrole = "sensor"\n'
                                        'start = "2027-01-15T09:00:00Z"\n'), out)
    api = _listening(out)
    answer = await _call(api, "POST", "/api/v1/clock", {"advance_seconds": 86400})
    assert answer.status_code == 200, answer.text
    moved = dt.datetime.fromisoformat(answer.json()["now"])
    assert EPOCH + dt.timedelta(days=1) <= moved < EPOCH + dt.timedelta(days=1, minutes=1)
    answer = await _call(api, "POST", "/api/v1/clock", {"now": "2028-01-15T09:00:00Z"})
    assert answer.status_code == 200
    later = dt.datetime.fromisoformat(answer.json()["now"])
    assert dt.datetime(2028, 1, 15, 9, tzinfo=dt.timezone.utc) <= later
    # An instant already past moves nothing: the clock never runs backwards.
    answer = await _call(api, "POST", "/api/v1/clock", {"now": "2027-06-01T00:00:00+00:00"})
    assert answer.status_code == 200
    assert dt.datetime.fromisoformat(answer.json()["now"]) >= later
    status = (await _call(api, "GET", "/api/v1/status")).json()
    assert dt.datetime.fromisoformat(status["now"]) >= later
    advanced = [e for e in out.events() if e["kind"] == "clock-advanced"]
    assert len(advanced) == 2


async def test_a_clock_request_of_another_shape_is_400_and_changes_nothing(tmp_path, nursery):
    out = Capture()
    await _started_node(nursery, _write(tmp_path, 'name = "a"\nrole = "sensor"\n'), out)
    api = _listening(out)
    for body in ({"advance_seconds": -1}, {"advance_seconds": "60"}, {"advance_seconds": True},
                 {"now": "2028-01-15T09:00:00"}, {"now": "soon"}, {"now": 1, "x": 2}, [1], {}):
        answer = await _call(api, "POST", "/api/v1/clock", body)
        assert answer.status_code == 400, body
        assert answer.json()["code"] == "bad_request"
    assert "clock-advanced" not in [e["kind"] for e in out.events()]


async def test_control_needs_the_token(tmp_path, nursery):
    out = Capture()
    await _started_node(nursery, _write(tmp_path, 'name = "a"\nrole = "sensor"\n'), out)
    api = _listening(out)
    answer = await _call(api, "POST", "/api/v1/clock", {"advance_seconds": 60}, headers={})
    assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    answer = await _call(api, "PUT", "/api/v1/running", {"running": False},
                         headers={"Authorization": "Bearer not-the-token"})
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    kinds = [e["kind"] for e in out.events()]
    assert "clock-advanced" not in kinds and "appliance-stopped" not in kinds
    assert [e["path"] for e in out.events() if e["kind"] == "api-denied"] == [
        "/api/v1/clock", "/api/v1/running"]


async def test_stopping_a_node_closes_its_links_and_starting_it_brings_them_back(files, nursery):
    """The console stays up while its appliance is stopped; the sensor redials the same address."""
    console_out, sensor_out = Capture(), Capture()
    console = await _started_node(
        nursery, _config(files, "console", "management-console", "127.0.0.1:0"), console_out)
    address = console.address
    peer = f'console = {{ address = "{address}", hostname = "console.contoso.test" }}\n'
    await _started_node(
        nursery, _config(files, "sensor-1", "sensor", "127.0.0.1:0", "[connects_to]\n" + peer),
        sensor_out)
    api = _listening(console_out)
    with trio.fail_after(30):
        await console_out.wait_for("link-up")
        answer = await _call(api, "PUT", "/api/v1/running", {"running": False})
        assert answer.status_code == 200 and answer.json() == {"running": False}
        await sensor_out.wait_for("link-down")
        assert "appliance-stopped" in [e["kind"] for e in console_out.events()]
        # The console still answers while its appliance is stopped.
        status = (await _call(api, "GET", "/api/v1/status")).json()
        assert status["appliance"]["name"] == "console"
        answer = await _call(api, "PUT", "/api/v1/running", {"running": True})
        assert answer.status_code == 200 and answer.json() == {"running": True}
        started = [e for e in console_out.events() if e["kind"] == "appliance-started"]
        assert [e["address"] for e in started] == [address, address]
        while len([e for e in console_out.events() if e["kind"] == "link-up"]) < 2:
            await console_out.changed()
    answer = await _call(api, "PUT", "/api/v1/running", {"running": "yes"})
    assert answer.status_code == 400


async def test_a_shards_consoles_share_one_clock_and_stop_their_own_appliance(tmp_path, nursery):
    path = _write(tmp_path, """\
start = "2027-01-15T09:00:00Z"

[[appliance]]
name = "console"
role = "management-console"
api_port = 0

[[appliance]]
name = "sensor-1"
role = "sensor"
api_port = 0
[appliance.connects_to]
console = "local"
""", name="shard.toml")
    out = Capture()
    mesh = await nursery.start(lambda task_status: run_shard(load_shard(path), out=out,
                                                             task_status=task_status))
    console, sensor = _listening(out, "console"), _listening(out, "sensor-1")
    target = {"now": "2027-03-01T00:00:00Z"}
    first = await _call(console, "POST", "/api/v1/clock", target)
    second = await _call(sensor, "POST", "/api/v1/clock", target)
    assert first.status_code == second.status_code == 200
    # One clock: the second request for the same instant moved nothing.
    assert len([e for e in out.events() if e["kind"] == "clock-advanced"]) == 1
    assert mesh.clock.now() >= dt.datetime(2027, 3, 1, tzinfo=dt.timezone.utc)
    with trio.fail_after(30):
        answer = await _call(sensor, "PUT", "/api/v1/running", {"running": False})
        assert answer.json() == {"running": False}
        assert not mesh.appliance("sensor-1").running and mesh.appliance("console").running
        answer = await _call(sensor, "PUT", "/api/v1/running", {"running": True})
        assert answer.json() == {"running": True}
        assert mesh.appliance("sensor-1").running



async def test_a_shards_refreshes_are_whole_shard_and_asked_together_run_at_most_twice(
        tmp_path, nursery):
    """Every console of a shard asks at once: one round runs, the rest share the next;
    each answer lists every link of the shard (process_links)."""
    path = _write(tmp_path, """\
start = "2027-01-15T09:00:00Z"

[[appliance]]
name = "console"
role = "management-console"
api_port = 0
validation = false

[[appliance]]
name = "sensor-1"
role = "sensor"
api_port = 0
validation = false
[appliance.connects_to]
console = "local"

[[appliance]]
name = "sensor-2"
role = "sensor"
api_port = 0
validation = false
[appliance.connects_to]
console = "local"
""", name="shard.toml")
    out = Capture()
    await nursery.start(lambda task_status: run_shard(load_shard(path), out=out,
                                                      task_status=task_status))
    apis = [_listening(out, name) for name in ("console", "sensor-1", "sensor-2")]
    answers = {}

    async def ask(api):
        answers[api["appliance"]] = await _call(api, "POST", "/api/v1/crls/refresh")

    with trio.fail_after(30):
        while len(await out.wait_for("link-up-unvalidated")) < 2:
            await out.changed()
        async with trio.open_nursery() as asking:
            for api in apis:
                asking.start_soon(ask, api)
    for name, answer in answers.items():
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["pending"] == []
        assert sorted(link["name"] for link in body["process_links"]) == [
            "sensor-1 -> console", "sensor-2 -> console"]
        assert {link["state"] for link in body["process_links"]} == {"up-unvalidated"}
    # Each round refreshes all three appliances; three requests made at most two rounds.
    refreshed = [e for e in out.events() if e["kind"] == "crls-refreshed"]
    assert len(refreshed) in (3, 6)
