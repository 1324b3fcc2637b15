"""Which appliances have a console, and the api-listening event that announces one."""

from __future__ import annotations

import json
import stat

import httpx
import pytest
import trio

from mesh.appliances.spec import Role
from mesh.clock import EmulatedClock
from mesh.consoles import CONSOLE_ROLES, ApiListening, has_console, open_console
from mesh.errors import InputError
from mesh.eventlog import EventLog
from mesh.events import EVENT_KINDS
from mesh.pki.issue import Issued, self_signed_leaf


@pytest.mark.parametrize("role", list(Role))
def test_sensors_and_consoles_have_one_forwarding_targets_do_not(role):
    expected = role is not Role.FORWARDING_TARGET
    assert has_console(role) is expected
    assert has_console(role.value) is expected
    assert (role.value in CONSOLE_ROLES) is expected


def test_the_event_is_one_json_line(epoch):
    event = ApiListening(at=epoch, appliance="s", role="sensor", url="https://127.0.0.1:9443")
    assert json.loads(event.to_json()) == {
        "kind": "api-listening", "severity": "note", "at": "2027-01-15T09:00:00Z",
        "appliance": "s", "role": "sensor", "url": "https://127.0.0.1:9443", "token_file": "",
    }
    assert "https://127.0.0.1:9443/" in event.describe()
    assert EVENT_KINDS["api-listening"] is ApiListening


class _Backend:
    """The least a console needs to answer /api/v1/status."""

    def __init__(self, identity: Issued, at) -> None:
        self.name, self.role = "s", "sensor"
        self._identity, self._at = identity, at

    def identity(self) -> Issued:
        return self._identity

    def trust_roots(self):
        return ()

    def now(self):
        return self._at

    def validation_enabled(self) -> bool:
        return True

    def links(self):
        return ()

    def roles(self):
        return {self.name: self.role}

    def events_since(self, index: int):
        return ()

    def events_first(self) -> int:
        return 0

    def conflicts(self):
        return ()

    async def upload(self, **files) -> None:  # pragma: no cover - not used here
        raise NotImplementedError

    def set_validation(self, enabled: bool) -> None:  # pragma: no cover - not used here
        raise NotImplementedError


async def test_open_console_serves_and_records_the_url(epoch, keys, nursery, tmp_path):
    issued = self_signed_leaf("s", not_before=epoch, key=keys(2048))
    clock = EmulatedClock(epoch)
    events = EventLog()
    token_file = tmp_path / "s.api-token"
    event = await open_console(nursery, _Backend(issued, epoch), events=events, now=clock.now,
                               token_file=token_file)
    assert events.events == [event]
    assert event.at == epoch and event.url.startswith("https://127.0.0.1:")
    assert event.token_file == str(token_file)
    token = token_file.read_text().strip()
    assert len(token) >= 43 and token not in event.to_json() + event.log_line()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    async with httpx.AsyncClient(verify=False, timeout=10) as client:
        answer = await client.get(f"{event.url}/api/v1/status")
    assert answer.status_code == 200 and answer.json()["appliance"]["name"] == "s"


async def test_a_taken_port_names_the_setting(epoch, keys, nursery, tmp_path):
    issued = self_signed_leaf("s", not_before=epoch, key=keys(2048))
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError) as info:
            await open_console(
                nursery, _Backend(issued, epoch), events=EventLog(), now=lambda: epoch,
                port=port, where="node.toml: api_port", token_file=tmp_path / "s.api-token",
            )
    assert info.value.where == "node.toml: api_port" and "already in use" in info.value.problem
