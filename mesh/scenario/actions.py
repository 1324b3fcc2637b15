"""Timeline actions: what a step does, as an enum whose members know how.

Each member is the action's TOML word (a ``StrEnum``, so it reads and
prints as that word) and carries its behaviour as data: whether it names a
target appliance and which :class:`~mesh.scenario.backend.Backend` method it
calls with which fields of the step. The driver has no ``if action == ...``
ladder: adding an action is one member here, one row in :data:`_CALLS`, and
one method on each backend.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from mesh.scenario.backend import Backend
    from mesh.scenario.model import Step

__all__ = ["Action", "NETWORK_KEYS"]


class Action(enum.StrEnum):
    """A step's action. ``advance`` only jumps the clock (every step's ``after``
    does that); the others act once the clock has jumped."""

    ADVANCE = "advance"
    REVOKE = "revoke"
    UPLOAD = "upload"
    SET_VALIDATION = "set-validation"
    CRL_DOWN = "crl-down"
    CRL_UP = "crl-up"
    CRL_SLOW = "crl-slow"
    CRL_GARBAGE = "crl-garbage"
    STOP = "stop"
    START = "start"
    #: Network policy steps: only a hosts run has a kernel between the
    #: appliances to enforce them (:attr:`network`).
    BLOCK = "block"
    UNBLOCK = "unblock"
    PARTITION = "partition"
    HEAL = "heal"
    LOSS = "loss"
    BANDWIDTH = "bandwidth"

    @property
    def targeted(self) -> bool:
        """Does the step name the appliance it acts on?"""
        return self in _TARGETED

    @property
    def network(self) -> bool:
        """Does it change the network between hosts (so needs ``--hosts``)?"""
        return self in NETWORK_KEYS

    @property
    def keys(self) -> tuple[str, ...]:
        """The step keys of a network action (``from``, ``to``, ``port``...), else ()."""
        return NETWORK_KEYS.get(self, ())

    async def apply(self, backend: Backend, step: Step) -> Any:
        """Run this action on ``backend``; returns what the backend method returns
        (an :class:`~mesh.scenario.backend.UploadVerdict` for an upload, else None)."""
        call = _CALLS.get(self)
        if call is None:
            return None
        method, arguments = call
        return await getattr(backend, method)(*arguments(step))


_TARGETED = frozenset(
    {Action.REVOKE, Action.UPLOAD, Action.SET_VALIDATION, Action.STOP, Action.START}
)

#: action -> (Backend method, the step's fields it is called with).
_CALLS: dict[Action, tuple[str, Callable[[Step], tuple[Any, ...]]]] = {
    Action.REVOKE: ("revoke", lambda step: (step.target,)),
    Action.UPLOAD: ("upload", lambda step: (step.target, step.certificate)),
    Action.SET_VALIDATION: ("set_validation", lambda step: (step.target, step.enabled)),
    Action.CRL_DOWN: ("crl_fault", lambda step: ("down",)),
    Action.CRL_UP: ("crl_fault", lambda step: ("ok",)),
    Action.CRL_SLOW: ("crl_fault", lambda step: ("slow",)),
    Action.CRL_GARBAGE: ("crl_fault", lambda step: ("garbage",)),
    Action.STOP: ("stop", lambda step: (step.target,)),
    Action.START: ("start", lambda step: (step.target,)),
    Action.BLOCK: ("block", lambda step: (step.source, step.destination, step.port, step.drop)),
    Action.UNBLOCK: ("unblock", lambda step: (step.source, step.destination, step.port)),
    Action.PARTITION: ("partition", lambda step: (step.between, step.drop)),
    Action.HEAL: ("heal", lambda step: ()),
    Action.LOSS: ("loss", lambda step: (step.target, step.percent)),
    Action.BANDWIDTH: ("bandwidth", lambda step: (step.target, step.rate)),
}

#: Network action -> the step keys it takes (required ones first; see
#: :meth:`mesh.scenario.model.Scenario.problems`). ``target`` of ``loss`` and
#: ``bandwidth`` is any host (an appliance, ``crl``, ``proxy``), not only an
#: appliance, which is why they are not :attr:`Action.targeted`.
NETWORK_KEYS: dict[Action, tuple[str, ...]] = {
    Action.BLOCK: ("from", "to", "port", "drop"),
    Action.UNBLOCK: ("from", "to", "port"),
    Action.PARTITION: ("between", "drop"),
    Action.HEAL: (),
    Action.LOSS: ("target", "percent"),
    Action.BANDWIDTH: ("target", "rate"),
}
