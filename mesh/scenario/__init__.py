"""Scenarios: TOML topologies with timelines and expectations, run on the engine.

The stable API: the model (:class:`Scenario`, :class:`PkiSpec`,
:class:`ApplianceDef`, :class:`Step`, :class:`Expectation`), the loader
(:func:`load_scenario`, :func:`loads_scenario`, :class:`ScenarioInvalid`) and
what a run returns (:class:`RunResult`, :class:`LinkRow`). Running needs the
engine, so it lives in :mod:`mesh.scenario.runner` (``run_scenario``,
``start_scenario``) and :mod:`mesh.scenario.processes`, imported on use.
"""

from mesh.scenario.load import ScenarioInvalid, load_scenario, loads_scenario
from mesh.scenario.model import ApplianceDef, Expectation, PkiSpec, Scenario, Step
from mesh.scenario.result import ExpectationVerdict, LinkRow, RunResult, StepRecord

__all__ = [
    "ApplianceDef",
    "Expectation",
    "ExpectationVerdict",
    "LinkRow",
    "PkiSpec",
    "RunResult",
    "Scenario",
    "ScenarioInvalid",
    "Step",
    "StepRecord",
    "load_scenario",
    "loads_scenario",
]
