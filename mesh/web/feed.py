"""One appliance's event feed: the events that concern it, paged by stream position.

In an in-process mesh every appliance appends to the mesh's one event stream,
so a console reading it whole would list every other appliance's handshakes,
uploads and switches as if they were its own. An event concerns an appliance
when one of its party fields (:data:`PARTY_FIELDS`) names it; an event with
none of them (``clock-advanced``, ``crl-server-changed``) is the whole mesh's
and every console lists it. A stand-alone node's stream holds its own events
only, and the rule leaves it as it is.

Positions stay those of the whole stream, so the API's ``since``/``next``/
``dropped`` contract holds as it did before the filter: ``next`` is the
position after the last event looked at (listed or passed over), so a poller
never waits on events that are not its appliance's, and ``dropped`` counts the
positions the backend no longer keeps, whoever those events concerned.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

__all__ = ["PARTY_FIELDS", "EventStream", "concerns", "event_dict", "event_page"]

#: The fields that name the appliances an event is about.
PARTY_FIELDS = ("appliance", "dialer", "listener", "refused_by", "sender", "receiver")

_ABSENT = object()


class EventStream(Protocol):
    """The part of :class:`~mesh.web.backend.ConsoleBackend` a feed reads."""

    @property
    def name(self) -> str: ...
    def events_since(self, index: int) -> Any: ...
    def events_first(self) -> int: ...


def _field(event: Any, name: str) -> Any:
    if isinstance(event, Mapping):
        return event.get(name, _ABSENT)
    return getattr(event, name, _ABSENT)


def concerns(event: Any, name: str) -> bool:
    """Whether ``event`` (an ``Event`` or its ``as_dict()``) is appliance ``name``'s to list.

    True when a party field names ``name``, or when the event has no party
    field at all (the whole mesh's).
    """
    parties = [value for field in PARTY_FIELDS if (value := _field(event, field)) is not _ABSENT]
    return not parties or name in parties


def event_dict(event: Any) -> dict[str, Any]:
    """An event as the API sends it: ``as_dict()`` with its one-line ``text``."""
    if hasattr(event, "as_dict"):
        data = dict(event.as_dict())
        if hasattr(event, "describe"):
            data.setdefault("text", event.describe())
        return data
    return dict(event)


def event_page(stream: EventStream, *, since: int, limit: int) -> dict[str, Any]:
    """The answer to ``GET /api/v1/events?since=&limit=`` for ``stream``'s appliance.

    ``{"since", "next", "dropped", "events"}``: at most ``limit`` events that
    concern the appliance, from position ``since`` on; ``next`` the position
    to ask from next time.
    """
    first = max(since, stream.events_first())
    items: list[dict[str, Any]] = []
    following = first
    for offset, event in enumerate(stream.events_since(since)):
        if concerns(event, stream.name):
            if len(items) == limit:
                break
            items.append(event_dict(event))
        following = first + offset + 1
    return {"since": since, "next": following, "dropped": first - since, "events": items}
