"""What a benchmark run produces: figures, targets and the machine they ran on.

Every number the harness prints is a :class:`Figure` with a unit, recorded
under the measurement that made it. Targets are ratios between
figures of the same run (never against a number measured elsewhere), so a
:class:`Target` is judged after every measurement has finished and says
"not measured" when one of its inputs is missing (``--only``, a module that
has not landed, a tool that is not installed).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

from attrs import define, field

__all__ = ["Figure", "Target", "Results", "machine", "loadavg"]


@define(frozen=True, kw_only=True)
class Figure:
    """One measured number."""

    measurement: str
    name: str
    value: float
    unit: str
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "measurement": self.measurement,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
        }
        if self.note:
            out["note"] = self.note
        return out


@define(frozen=True, kw_only=True)
class Target:
    """A goal, judged on this run's figures.

    ``value`` is None when an input figure is missing; ``met`` is then None too.
    ``higher_is_better`` says which side of ``threshold`` passes.
    """

    name: str
    threshold: float
    unit: str
    higher_is_better: bool
    value: float | None
    basis: str

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.higher_is_better:
            return self.value >= self.threshold
        return self.value <= self.threshold

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT MET", None: "not measured"}[self.met]

    @property
    def goal(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        return f"{op} {self.threshold:g} {self.unit}".rstrip()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "goal": self.goal,
            "threshold": self.threshold,
            "unit": self.unit,
            "value": self.value,
            "met": self.met,
            "basis": self.basis,
        }


@define(kw_only=True)
class Results:
    """Everything one run produced, in the order it was measured."""

    quick: bool
    started: dt.datetime
    figures: list[Figure] = field(factory=list)
    #: measurement name -> "ok", "skipped: <why>" or "failed: <why>"
    status: dict[str, str] = field(factory=dict)
    targets: list[Target] = field(factory=list)
    seconds: float = 0.0
    load_before: str = field(factory=lambda: loadavg())
    load_after: str = ""

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def get(self, measurement: str, name: str) -> float | None:
        """The value of a figure, or None if this run did not make it."""
        for figure in reversed(self.figures):
            if figure.measurement == measurement and figure.name == name:
                return figure.value
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(),
            "quick": self.quick,
            "seconds": round(self.seconds, 3),
            "machine": machine(),
            "loadavg_before": self.load_before,
            "loadavg_after": self.load_after,
            "status": dict(self.status),
            "figures": [f.to_json() for f in self.figures],
            "targets": [t.to_json() for t in self.targets],
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _openssl_cli() -> str:
    exe = shutil.which("openssl")
    if exe is None:
        return "not installed"
    done = subprocess.run([exe, "version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def loadavg() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews every figure."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare two runs' figures."""
    import cryptography
    import OpenSSL
    import trio
    from cryptography.hazmat.backends.openssl import backend

    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "openssl_cli": _openssl_cli(),
        "openssl_stdlib_ssl": ssl.OPENSSL_VERSION,
        "openssl_pyopenssl_cryptography": backend.openssl_version_text(),
        "pyopenssl": OpenSSL.__version__,
        "cryptography": cryptography.__version__,
        "trio": trio.__version__,
    }
