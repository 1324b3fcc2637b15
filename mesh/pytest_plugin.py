"""pytest plugin for regression suites that pin mesh's validation behaviour.

Installed with mesh (a ``pytest11`` entry point), so any project with mesh
and pytest-trio gets these fixtures without a conftest:

``mesh_run``
    ``await mesh_run(source)`` plays a whole scenario in-process and returns
    its :class:`~mesh.scenario.result.RunResult`. ``source`` is a path to a
    scenario file, TOML text, or a :class:`~mesh.scenario.model.Scenario`
    built in Python. ``await mesh_run(source, validation="off")`` plays its
    validation off run (every appliance off from the start, ``set-validation``
    steps skipped); expectations of the other run come back not judged.
``mesh_start``
    ``async with mesh_start(source) as run:`` starts the mesh and hands over a
    :class:`~mesh.scenario.runner.ScenarioRun` to act on between steps
    (``await run.step(Step(...))``, ``run.links()``, ``run.mesh``).
``mesh_key_pool``
    The session's RSA keys: each is generated once, so a suite of fifty
    scenarios pays for key generation once.

And helpers for the asserts a regression suite writes::

    from mesh.pytest_plugin import assert_link

    async def test_revoked_sensor_halts(mesh_run):
        result = await mesh_run("scenarios/troubleshoot-revoked.toml")
        assert_link(result, "sensor-1.contoso.test -> cm.contoso.test", state="up")

Tests run under pytest-trio (``trio_mode = true``, or mark them
``@pytest.mark.trio``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

import pytest

from mesh.pki.keys import KeyPool
from mesh.scenario.load import load_scenario, loads_scenario
from mesh.scenario.model import ApplianceDef, Expectation, PkiSpec, Scenario, Step
from mesh.scenario.result import LinkRow, RunResult

if TYPE_CHECKING:  # the engine loads only when a fixture runs a scenario
    from mesh.scenario.runner import ScenarioRun

__all__ = [
    "assert_link",
    "assert_expectations_hold",
    "as_scenario",
    "Scenario",
    "ApplianceDef",
    "PkiSpec",
    "Step",
    "Expectation",
]


def as_scenario(source: Scenario | str | os.PathLike[str]) -> Scenario:
    """A Scenario from a Scenario, a path to a scenario file, or TOML text.

    A string is TOML text when it spans lines or holds ``=`` or ``[``;
    otherwise it is a path.
    """
    if isinstance(source, Scenario):
        return source
    if isinstance(source, os.PathLike):
        return load_scenario(Path(source))
    if isinstance(source, str):
        if "\n" in source or "=" in source or "[" in source:
            return loads_scenario(source, source="<inline scenario>", default_name="inline")
        return load_scenario(Path(source))
    raise TypeError(f"expected a Scenario, a .toml path or TOML text, got {type(source).__name__}")


def assert_link(
    result: RunResult | ScenarioRun,
    link: str,
    *,
    state: str | None = None,
    code: str | None = None,
) -> LinkRow:
    """Assert a link's state (and code); returns the row for further checks.

    ``result`` is a RunResult or a running ScenarioRun. ``code`` accepts the
    dashed spelling too (``crl-unreachable``). The failure message shows the
    link's actual state, code and operator message.
    """
    rows = result.links if isinstance(result, RunResult) else result.links()
    dialer, _, listener = (part.strip() for part in link.partition("->"))
    row = next((r for r in rows if r.dialer == dialer and r.listener == listener), None)
    if row is None:
        known = ", ".join(r.link for r in rows[:10])
        raise AssertionError(f"no link {link!r} in this run; links: {known}")
    if code is not None:
        code = code.replace("-", "_")
    problems = []
    if state is not None and row.state != state:
        problems.append(f"state {row.state!r}, expected {state!r}")
    if code is not None and row.code != code:
        problems.append(f"code {row.code!r}, expected {code!r}")
    if problems:
        detail = f" ({row.message})" if row.message else ""
        raise AssertionError(f"link {link}: " + "; ".join(problems) + detail)
    return row


def assert_expectations_hold(result: RunResult) -> None:
    """Assert every expectation the run judged held, listing the ones that did not
    (those of the other validation run are not judged, see ``mode``)."""
    if result.ok:
        return
    lines = [
        f"expect[{v.index}] {v.subject}: expected {v.expected} {v.when}, got {v.actual}"
        + (f" ({v.message})" if v.message else "")
        for v in result.failures
    ]
    raise AssertionError(f"{result.scenario.name}: " + "\n".join(lines))


@pytest.fixture(scope="session")
def mesh_key_pool() -> KeyPool:
    """RSA keys generated once per test session, shared by every scenario."""
    return KeyPool()


@pytest.fixture
def mesh_run(mesh_key_pool: KeyPool) -> Callable[..., Awaitable[RunResult]]:
    """``await mesh_run(source)`` -> RunResult (source: Scenario, .toml path or TOML text)."""
    from mesh.scenario.runner import run_scenario

    async def run(source: Scenario | str | os.PathLike[str], **kwargs: Any) -> RunResult:
        return await run_scenario(as_scenario(source), keys=mesh_key_pool.cursor(), **kwargs)

    return run


@pytest.fixture
def mesh_start(mesh_key_pool: KeyPool) -> Callable[..., Any]:
    """``async with mesh_start(source) as run:`` a running mesh to act on step by step."""
    from mesh.scenario.runner import start_scenario

    @contextlib.asynccontextmanager
    async def start(
        source: Scenario | str | os.PathLike[str], **kwargs: Any
    ) -> AsyncIterator[ScenarioRun]:
        async with start_scenario(
            as_scenario(source), keys=mesh_key_pool.cursor(), **kwargs
        ) as run:
            yield run

    return start
