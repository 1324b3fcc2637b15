"""The topology as a picture: Graphviz DOT, Mermaid, or a self-contained SVG.

``mesh graph FILE.toml [--from-run REPORT.json] --format dot|mermaid|svg``
(:mod:`mesh.scenario.graph_command`) draws the appliances of a scenario and the
links between them; with a run's JSON report, each link takes the colour of
its state at the end of the run (halted red with its code and message,
unvalidated amber and dashed, down grey). The web console draws its graph
with the same :func:`render_svg`.

The SVG needs no Graphviz: a small layered layout puts consoles on the first
row, sensors below them and forwarding targets last, wrapping long rows.
Every label and message is XML-escaped; halted links carry their message as a
hover title and in a legend under the graph.
"""

from __future__ import annotations

import html
import math
from typing import Any, Iterable, Mapping

from attrs import define, evolve, field

from mesh.errors import FailureCode, InputError

__all__ = [
    "FORMATS",
    "STATE_STYLES",
    "Node",
    "Edge",
    "Graph",
    "render",
    "render_dot",
    "render_mermaid",
    "render_svg",
    "states_from_report",
    "GROUP_ABOVE",
    "NAMED_AT_MOST",
    "grouped",
]

FORMATS = ("dot", "mermaid", "svg")


@define(frozen=True, kw_only=True)
class StateStyle:
    colour: str
    dash: str = ""  # SVG stroke-dasharray; "" = solid
    dot_style: str = "solid"


#: How each link state is drawn, everywhere. ``None`` = no run (just the topology).
STATE_STYLES: dict[str | None, StateStyle] = {
    None: StateStyle(colour="#455a64"),
    "up": StateStyle(colour="#2e7d32"),
    "up-unvalidated": StateStyle(colour="#ef6c00", dash="8 4", dot_style="dashed"),
    "halted": StateStyle(colour="#c62828"),
    "connecting": StateStyle(colour="#1565c0", dash="2 4", dot_style="dotted"),
    "down": StateStyle(colour="#9e9e9e", dash="2 4", dot_style="dotted"),
}

#: Layout rows: forwarding targets on top, consoles, then sensors (so no
#: forwarding link crosses the sensors' row).
_ROW_OF_ROLE = {
    "forwarding-target": 0,
    "management-console": 1,
    "ha-console": 1,
    "sensor": 2,
}
_DEFAULT_ROW = 2


def _style(state: str | None) -> StateStyle:
    return STATE_STYLES.get(state, STATE_STYLES[None])


@define(frozen=True, kw_only=True)
class Node:
    name: str
    role: str = ""


@define(frozen=True, kw_only=True)
class Edge:
    """A link: ``dialer`` opens it to ``listener``; ``forward`` for forwarding rules."""

    dialer: str
    listener: str
    forward: bool = False
    state: str | None = None
    code: str | None = None
    message: str | None = None

    @property
    def name(self) -> str:
        return f"{self.dialer} -> {self.listener}"

    @property
    def label(self) -> str:
        """Short text drawn on the edge: the state, and the code when halted."""
        if self.state is None:
            return "forwards" if self.forward else ""
        if self.state == "up-unvalidated":
            return "unvalidated"
        if self.code:
            return f"{self.state}: {self.code}"
        return self.state


@define(frozen=True, kw_only=True)
class Graph:
    nodes: tuple[Node, ...] = field(converter=tuple[Node, ...])
    edges: tuple[Edge, ...] = field(converter=tuple[Edge, ...])
    title: str = ""

    @classmethod
    def from_scenario(cls, scenario: Any) -> Graph:
        """A graph of a ``mesh.scenario.model.Scenario`` (appliances and whom they dial)."""
        nodes = [Node(name=a.name, role=a.role) for a in scenario.appliances]
        roles = {a.name: a.role for a in scenario.appliances}
        # One link per pair, dialer chosen as the engine does (Scenario.links()).
        edges = [
            Edge(dialer=dialer, listener=listener, forward=roles.get(listener) == "forwarding-target")
            for dialer, listener in scenario.links()
        ]
        return cls(nodes=nodes, edges=edges, title=scenario.name)

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> Graph:
        """A graph of one appliance's status document (``mesh.web.status``)."""
        roles: dict[str, str] = dict(status.get("roles", {}))
        nodes = [Node(name=name, role=role) for name, role in roles.items()]
        edges = [
            Edge(
                dialer=link["dialer"],
                listener=link["listener"],
                forward=roles.get(link["listener"]) == "forwarding-target",
                state=link.get("state"),
                code=link.get("code"),
                message=link.get("message"),
            )
            for link in status.get("links", ())
        ]
        return cls(nodes=nodes, edges=edges, title=status.get("appliance", {}).get("name", ""))

    def with_states(self, states: Mapping[tuple[str, str], Mapping[str, Any]]) -> Graph:
        """The same graph with each link's state, code and message from ``states``."""
        edges = []
        for edge in self.edges:
            seen = states.get((edge.dialer, edge.listener))
            if seen is None:
                edges.append(edge)
                continue
            code = seen.get("code")
            message = seen.get("message")
            if code and not message:
                try:
                    message = FailureCode.from_code(code).message
                except ValueError:
                    pass
            edges.append(evolve(edge, state=seen.get("state"), code=code, message=message))
        return evolve(self, edges=edges)


# -- big meshes --

#: Above this many links a drawing folds them (:func:`grouped`).
GROUP_ABOVE = 60
#: Links not up sharing a role, listener, state and code are drawn by name up
#: to this many; more are folded too (a CRL outage halts every sensor).
NAMED_AT_MOST = 12


def grouped(graph: Graph, *, above: int = GROUP_ABOVE, named: int = NAMED_AT_MOST) -> Graph:
    """The graph with its links folded, when it has more than ``above`` links.

    Why: a thousand sensor boxes make a drawing nobody reads and a page that
    crawls, while what a person looks for is the few links that are not up.
    So every appliance whose links are all up is folded into one node per
    (role, listener), named for what it stands for ("998 sensors up"), with
    one up link to that listener; appliances with a link not up keep their
    own box and every link of their own, named and labelled as usual, unless
    more than ``named`` of them share a role, listener, state and code: then
    those are one node too ("1000 sensors halted"), its link labelled with the
    code and carrying the message. A fold of one appliance is not worth a
    node: it stays as it is.
    """
    if len(graph.edges) <= above:
        return graph
    roles = {node.name: node.role for node in graph.nodes}
    troubled = {edge.dialer for edge in graph.edges if edge.state != "up"}
    folds: dict[tuple[str, str, str | None, str | None], list[Edge]] = {}
    for edge in graph.edges:
        if edge.state == "up" and edge.dialer in troubled:
            continue  # drawn beside its other links
        key = (roles.get(edge.dialer, ""), edge.listener, edge.state, edge.code)
        folds.setdefault(key, []).append(edge)
    chosen = {
        key: members for key, members in folds.items()
        if len({e.dialer for e in members}) >= (2 if key[2] == "up" else named + 1)
    }
    several = len({listener for _, listener, _, _ in chosen}) > 1
    codes: dict[tuple[str, str, str | None], int] = {}
    for role, listener, state, _ in chosen:
        codes[role, listener, state] = codes.get((role, listener, state), 0) + 1
    nodes_added: list[Node] = []
    edges_added: list[Edge] = []
    gone: set[tuple[str, str]] = set()  # (dialer, listener) a fold draws
    for (role, listener, state, code), members in chosen.items():
        count = len({e.dialer for e in members})
        name = f"{count} {role or 'appliance'}s {state or 'declared'}"
        if codes[role, listener, state] > 1:  # the same state with several codes
            name += f" ({code})"
        if several:
            name += f" to {listener}"
        first = members[0]
        nodes_added.append(Node(name=name, role=f"{role} group" if role else "group"))
        edges_added.append(evolve(first, dialer=name))
        gone |= {(e.dialer, e.listener) for e in members}
    kept = [e for e in graph.edges if (e.dialer, e.listener) not in gone]
    drawn = {n for e in kept for n in (e.dialer, e.listener)}
    folded = {dialer for dialer, _ in gone}
    nodes = [n for n in graph.nodes if n.name not in folded or n.name in drawn]
    return evolve(graph, nodes=[*nodes, *nodes_added], edges=[*kept, *edges_added])


# -- text formats --


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(graph: Graph) -> str:
    """Graphviz DOT text (``dot -Tsvg`` draws it where Graphviz is installed)."""
    lines = [f"digraph {_dot_quote(graph.title or 'mesh')} {{", "  rankdir=LR;"]
    lines.append('  node [shape=box, style="rounded", fontname="Helvetica"];')
    lines.append('  edge [fontname="Helvetica", fontsize=10];')
    for node in graph.nodes:
        label = f"{node.name}\\n{node.role}" if node.role else node.name
        lines.append(f'  {_dot_quote(node.name)} [label="{label.replace(chr(34), "")}"];')
    for edge in graph.edges:
        style = _style(edge.state)
        attrs = [f'color="{style.colour}"', f'fontcolor="{style.colour}"', f"style={style.dot_style}"]
        if edge.label:
            attrs.append(f"label={_dot_quote(edge.label)}")
        if edge.message:
            attrs.append(f"tooltip={_dot_quote(edge.message)}")
        if edge.state == "halted":
            attrs.append("penwidth=2")
        lines.append(
            f"  {_dot_quote(edge.dialer)} -> {_dot_quote(edge.listener)} [{', '.join(attrs)}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return html.escape(text, quote=True).replace("&quot;", "#quot;").replace("&#x27;", "'")


def render_mermaid(graph: Graph) -> str:
    """A Mermaid ``flowchart``: nodes by id, edges labelled and coloured by state."""
    ids = {node.name: f"n{i}" for i, node in enumerate(graph.nodes)}
    for edge in graph.edges:
        for end in (edge.dialer, edge.listener):
            ids.setdefault(end, f"n{len(ids)}")
    lines = ["flowchart LR"]
    roles = {node.name: node.role for node in graph.nodes}
    for name, ident in ids.items():
        role = roles.get(name, "")
        text = _mermaid_text(name) + (f"<br/><small>{_mermaid_text(role)}</small>" if role else "")
        lines.append(f'  {ident}["{text}"]')
    for edge in graph.edges:
        arrow = "-.->" if _style(edge.state).dash else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {ids[edge.dialer]} {arrow}{label} {ids[edge.listener]}")
    for index, edge in enumerate(graph.edges):
        style = _style(edge.state)
        width = "3px" if edge.state == "halted" else "2px"
        lines.append(f"  linkStyle {index} stroke:{style.colour},stroke-width:{width}")
    return "\n".join(lines) + "\n"


# -- SVG --

_BOX_W, _BOX_H = 180, 46
_GAP_X, _GAP_Y = 110, 90
_CHAR_W = 7.0  # rough width of one 13px Helvetica character, for the legend
_PER_ROW = 6
_MARGIN = 20


def _layout(graph: Graph) -> dict[str, tuple[float, float]]:
    """Node centres: rows by role, wrapped at ``_PER_ROW``, each row centred."""
    names = [node.name for node in graph.nodes]
    roles = {node.name: node.role for node in graph.nodes}
    for edge in graph.edges:
        for end in (edge.dialer, edge.listener):
            if end not in roles:
                roles[end] = ""
                names.append(end)
    rows: list[list[str]] = []
    for band in sorted({_ROW_OF_ROLE.get(roles[n], _DEFAULT_ROW) for n in names}):
        members = [n for n in names if _ROW_OF_ROLE.get(roles[n], _DEFAULT_ROW) == band]
        for start in range(0, len(members), _PER_ROW):
            rows.append(members[start : start + _PER_ROW])
    widest = max((len(row) for row in rows), default=1)
    full = widest * _BOX_W + (widest - 1) * _GAP_X
    centres = {}
    for r, row in enumerate(rows):
        span = len(row) * _BOX_W + (len(row) - 1) * _GAP_X
        left = _MARGIN + (full - span) / 2
        for c, name in enumerate(row):
            centres[name] = (
                left + c * (_BOX_W + _GAP_X) + _BOX_W / 2,
                _MARGIN + 30 + r * (_BOX_H + _GAP_Y) + _BOX_H / 2,
            )
    return centres


def _clip(cx: float, cy: float, dx: float, dy: float) -> tuple[float, float]:
    """Where the ray from a box centre along (dx, dy) leaves the box."""
    if dx == 0 and dy == 0:
        return cx, cy
    scale = min(
        (_BOX_W / 2) / abs(dx) if dx else math.inf,
        (_BOX_H / 2) / abs(dy) if dy else math.inf,
    )
    return cx + dx * scale, cy + dy * scale


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def render_svg(graph: Graph, *, highlight: str | None = None, ids: str = "") -> str:
    """A standalone SVG document; ``highlight`` outlines one appliance (the page's own).

    ``ids`` prefixes the SVG's element ids (its arrow markers): a page that
    inlines several drawings gives each its own, so no id appears twice.
    """
    centres = _layout(graph)
    roles = {node.name: node.role for node in graph.nodes}
    width = max((x for x, _ in centres.values()), default=0) + _BOX_W / 2 + _MARGIN
    height = max((y for _, y in centres.values()), default=0) + _BOX_H / 2 + _MARGIN
    notes = [e for e in graph.edges if e.message and e.state in ("halted", "up-unvalidated", "down")]
    legend_top = height + 10
    height = legend_top + 22 * (len(notes) + 1) + 4
    longest = max((len(_note(e)) for e in notes), default=0)
    width = max(width, 640, _MARGIN * 2 + longest * _CHAR_W)
    pairs = {(e.dialer, e.listener) for e in graph.edges}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="mesh-graph" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="13">',
        "<defs>",
    ]
    for state, style in STATE_STYLES.items():
        marker = f"{ids}arrow-{state or 'none'}"
        out.append(
            f'<marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="10" '
            f'markerHeight="10" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" '
            f'fill="{style.colour}"/></marker>'
        )
    out.append("</defs>")
    if graph.title:
        out.append(f'<text x="{_MARGIN}" y="{_MARGIN + 4}" font-weight="bold">{_esc(graph.title)}</text>')
    for edge in graph.edges:
        if edge.dialer not in centres or edge.listener not in centres:
            continue
        (x1, y1), (x2, y2) = centres[edge.dialer], centres[edge.listener]
        dx, dy = x2 - x1, y2 - y1
        length = math.hypot(dx, dy) or 1.0
        # Two links between the same pair (console <-> HA) run side by side.
        shift = 6.0 if (edge.listener, edge.dialer) in pairs else 0.0
        ox, oy = -dy / length * shift, dx / length * shift
        sx, sy = _clip(x1, y1, dx, dy)
        tx, ty = _clip(x2, y2, -dx, -dy)
        style = _style(edge.state)
        marker = f"{ids}arrow-{edge.state if edge.state in STATE_STYLES else 'none'}"
        dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
        stroke = 3 if edge.state == "halted" else 2
        title = edge.name + (f": {edge.state}" if edge.state else "")
        if edge.message:
            title += f" ({edge.code}) {edge.message}" if edge.code else f" {edge.message}"
        out.append(
            f'<g class="link link-{_esc(edge.state or "declared")}" data-link="{_esc(edge.name)}">'
            f"<title>{_esc(title)}</title>"
            f'<line x1="{sx + ox:.1f}" y1="{sy + oy:.1f}" x2="{tx + ox:.1f}" y2="{ty + oy:.1f}" '
            f'stroke="{style.colour}" stroke-width="{stroke}"{dash} marker-end="url(#{marker})"/>'
        )
        if edge.label:
            mx, my = (sx + tx) / 2 + ox * 2, (sy + ty) / 2 + oy * 2
            if abs(dy) < 1:  # a horizontal link: the label sits above it
                my -= 6 + shift
            out.append(
                f'<text x="{mx:.1f}" y="{my - 4:.1f}" text-anchor="middle" font-size="11" '
                f'fill="{style.colour}" stroke="#fff" stroke-width="3" paint-order="stroke">'
                f"{_esc(edge.label)}</text>"
            )
        out.append("</g>")
    for name, (cx, cy) in centres.items():
        role = roles.get(name, "")
        outline = ' stroke-width="3" stroke="#1a237e"' if name == highlight else ' stroke="#607d8b"'
        out.append(
            f'<g class="node" data-node="{_esc(name)}"><title>{_esc(name)}'
            f"{' (' + _esc(role) + ')' if role else ''}</title>"
            f'<rect x="{cx - _BOX_W / 2:.1f}" y="{cy - _BOX_H / 2:.1f}" width="{_BOX_W}" '
            f'height="{_BOX_H}" rx="8" fill="#eceff1"{outline}/>'
            f'<text x="{cx:.1f}" y="{cy - 3:.1f}" text-anchor="middle" font-weight="bold">'
            f"{_esc(_shorten(name))}</text>"
            f'<text x="{cx:.1f}" y="{cy + 14:.1f}" text-anchor="middle" font-size="11" '
            f'fill="#546e7a">{_esc(role)}</text></g>'
        )
    y = legend_top + 14
    legend = "  ".join(
        f"{state}" for state in STATE_STYLES if state is not None
    )
    out.append(f'<text x="{_MARGIN}" y="{y:.0f}" font-size="11" fill="#546e7a">'
               f"link states: {_esc(legend)}</text>")
    for edge in notes:
        y += 22
        style = _style(edge.state)
        out.append(
            f'<text class="note" x="{_MARGIN}" y="{y:.0f}" fill="{style.colour}">'
            f"{_esc(_note(edge))}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _note(edge: Edge) -> str:
    """The legend line of a link that needs explaining."""
    code = f" ({edge.code})" if edge.code else ""
    return f"{edge.name}: {edge.state or ''}{code}: {edge.message or ''}"


def _shorten(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def render(graph: Graph, fmt: str) -> str:
    if fmt == "dot":
        return render_dot(graph)
    if fmt == "mermaid":
        return render_mermaid(graph)
    if fmt == "svg":
        return render_svg(graph)
    raise ValueError(f"unknown graph format {fmt!r}; use one of {', '.join(FORMATS)}")


# -- run reports --


def _link_key(item: Mapping[str, Any]) -> tuple[str, str] | None:
    if "dialer" in item and "listener" in item:
        return str(item["dialer"]), str(item["listener"])
    if "from" in item and "to" in item:
        return str(item["from"]), str(item["to"])
    text = item.get("link") or item.get("name")
    if isinstance(text, str) and "->" in text:
        dialer, _, listener = text.partition("->")
        return dialer.strip(), listener.strip()
    return None


def _link_lists(document: Any) -> Iterable[list[Any]]:
    """Every list called ``links`` in the report, outermost first."""
    if isinstance(document, Mapping):
        if isinstance(document.get("links"), list):
            yield document["links"]
        for key, value in document.items():
            if key != "links":
                yield from _link_lists(value)
    elif isinstance(document, list):
        for value in document:
            yield from _link_lists(value)


def states_from_report(
    document: Any, *, where: str = "report", scenario: str | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """Link states at the end of a run, from its JSON report.

    Reads the outermost ``links`` list whose items name a link (``from`` and
    ``to`` as ``mesh run --json`` writes them, ``dialer`` and ``listener``, or
    ``link: "a -> b"``) and carry a ``state``. A report of several runs (a
    list) is searched for the one whose ``scenario`` is ``scenario``.
    """
    if isinstance(document, list) and scenario is not None:
        runs = [r for r in document if isinstance(r, Mapping) and r.get("scenario") == scenario]
        if not runs:
            names = ", ".join(str(r.get("scenario")) for r in document if isinstance(r, Mapping))
            raise InputError(
                where,
                f"has no run of scenario {scenario!r} (it has: {names or 'none'})",
                "pass the report of a run of this scenario",
            )
        document = runs[-1]
    for links in _link_lists(document):
        found = {}
        for item in links:
            if isinstance(item, Mapping) and "state" in item:
                key = _link_key(item)
                if key is not None:
                    found[key] = dict(item)
        if found:
            return found
    raise InputError(
        where,
        "has no link states (no 'links' list of objects with from, to and state)",
        "pass the JSON report of a run: mesh run SCENARIO.toml --json REPORT.json",
    )
