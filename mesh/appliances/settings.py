"""The engine's timeouts, backoff and limits: one value for a whole mesh or ``mesh node``."""

from __future__ import annotations

import datetime as dt

from attrs import define

from mesh.net.framing import MAX_FRAME
from mesh.validation.expiry import DEFAULT_EXPIRY_WINDOW

__all__ = ["EngineSettings"]


@define(frozen=True, kw_only=True)
class EngineSettings:
    """Timeouts and backoff (trio seconds for I/O, emulated seconds for backoff).

    ``verdict_timeout`` is how long an end waits for the peer's verdict after
    sending its own; the peer may first have to fetch CRLs, so keep it above
    ``crl_timeout`` (a peer that misses it is taken as down, not as refusing).

    ``raw_verdict_wait`` is how long a dialer waits, after its TLS 1.3
    handshake with a third-party server (no verdict exchange), for that
    server's first record: a TLS 1.3 server judges the client's certificate
    after the client's handshake is done, so an alert then is its refusal
    (the link halts), and a session ticket, data or silence for this long
    its acceptance.

    ``expiry_window``: an appliance whose own certificate comes this close to
    its notAfter says so with a ``certificate-expiring`` event (None: never).

    ``dial_slots``: how many of a process's dial attempts may be connecting,
    handshaking or exchanging verdicts at once (``RetryGate``); the others
    wait for a slot before their ``handshake_timeout`` starts. Why: a
    re-check or a start makes every dialer of a process dial at once, and
    thousands of handshakes sharing the CPU all finish late together, past
    their timeout, reporting links down that nothing is wrong with. With a
    bound, each handshake takes its share of the CPU in turn.
    """

    handshake_timeout: float = 10.0
    verdict_timeout: float = 10.0
    raw_verdict_wait: float = 1.0
    crl_timeout: float = 5.0
    backoff_initial: float = 1.0
    backoff_cap: float = 60.0
    max_frame: int = MAX_FRAME
    expiry_window: dt.timedelta | None = DEFAULT_EXPIRY_WINDOW
    dial_slots: int = 32
