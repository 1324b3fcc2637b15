"""Kubernetes objects as plain data, and the YAML they are written as.

Why the size rules live here: the API server refuses a ConfigMap or Secret
whose data passes 1 MiB, and no schema says so. Every object's data is kept
under :data:`OBJECT_BUDGET` (measured as written: base64 for Secrets): files
are spread over as many Secrets as it takes, which a pod sees as one folder
through a projected volume; a single file or node config over the budget is
one line.

Secret and ConfigMap keys may not hold '/': a file in a subfolder of the
mounted folder (the driver's ``pki/ca/...``) gets a flat key and an
``items`` entry that puts it back in place.
"""

from __future__ import annotations

import base64
from typing import Any, Mapping, Sequence

import yaml

from mesh.errors import InputError

__all__ = [
    "LABELS", "OBJECT_BUDGET", "RUN_AS", "config_map", "container_security", "encoded_size",
    "metadata", "pod_security", "projected", "render", "secrets",
]

#: Every object's labels.
LABELS = {"app.kubernetes.io/name": "mesh", "app.kubernetes.io/managed-by": "mesh-export"}

#: Bytes of data one ConfigMap or Secret may carry here (Kubernetes refuses more than 1 MiB).
OBJECT_BUDGET = 900_000

#: The user and group the Containerfile creates and every pod runs as.
RUN_AS = 10001

#: Mode of every file of a mounted Secret (0400; ``fsGroup`` adds group read).
SECRET_MODE = 0o400


def metadata(name: str, namespace: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": {**LABELS, **(labels or {})}}


def encoded_size(data: bytes) -> int:
    """Bytes ``data`` takes in a Secret's ``data`` (base64)."""
    return (len(data) + 2) // 3 * 4


def _key(path: str) -> str:
    return path.replace("/", ".")


def config_map(name: str, namespace: str, texts: Mapping[str, str], *,
               binary: Mapping[str, bytes] | None = None,
               labels: Mapping[str, str] | None = None, where: str) -> dict[str, Any]:
    """A ConfigMap of text files (and binary ones).

    Raises:
        InputError: its data would pass :data:`OBJECT_BUDGET`.
    """
    size = sum(len(t.encode()) for t in texts.values())
    size += sum(encoded_size(b) for b in (binary or {}).values())
    if size > OBJECT_BUDGET:
        raise InputError(where, f"would hold {size:,} bytes, more than one ConfigMap may "
                         f"({OBJECT_BUDGET:,} here; Kubernetes refuses 1 MiB)",
                         "spread the appliances over more shards (--workers)")
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": metadata(name, namespace, labels), "data": dict(texts)}
    if binary:
        out["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
    return out


def secrets(prefix: str, namespace: str, files: Mapping[str, bytes], *,
            labels: Mapping[str, str] | None = None,
            where: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``files`` ({path in the mounted folder: bytes}) as Secrets ``prefix-0``, ``prefix-1``...

    Returns the Secrets and the projected-volume sources that mount them.

    Raises:
        InputError: one file alone passes :data:`OBJECT_BUDGET`.
    """
    chunks: list[dict[str, bytes]] = [{}]
    size = 0
    for path, data in files.items():
        need = encoded_size(data)
        if need > OBJECT_BUDGET:
            raise InputError(f"{where}: {path}", f"is {len(data):,} bytes, more than one Secret "
                             f"may hold ({OBJECT_BUDGET:,} here; Kubernetes refuses 1 MiB)",
                             "keep it smaller")
        if size + need > OBJECT_BUDGET and chunks[-1]:
            chunks.append({})
            size = 0
        chunks[-1][path] = data
        size += need
    objects, sources = [], []
    for number, chunk in enumerate(chunks):
        name = f"{prefix}-{number}"
        keys = {_key(path): path for path in chunk}
        assert len(keys) == len(chunk), "two files with one Secret key"
        objects.append({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": metadata(name, namespace, labels),
            "data": {_key(path): base64.b64encode(data).decode() for path, data in chunk.items()},
        })
        source: dict[str, Any] = {"name": name}
        if any(key != path for key, path in keys.items()):
            source["items"] = [{"key": key, "path": path} for key, path in keys.items()]
        sources.append({"secret": source})
    return objects, sources


def projected(name: str, sources: Sequence[dict[str, Any]], *, mode: int = SECRET_MODE) -> dict[str, Any]:
    """A volume of several ConfigMaps and Secrets in one folder, files ``mode`` (0400)."""
    return {"name": name, "projected": {"defaultMode": mode, "sources": list(sources)}}


def pod_security() -> dict[str, Any]:
    """Non-root, the Containerfile's user; ``fsGroup`` so it reads its 0400 Secret files."""
    return {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}}


class _Dumper(yaml.CSafeDumper if hasattr(yaml, "CSafeDumper") else yaml.SafeDumper):  # type: ignore[misc]
    """Block style, and multi-line strings (node configs) as literal blocks."""


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _text)


def render(documents: Sequence[Mapping[str, Any]]) -> str:
    """``documents`` as one YAML file (``---`` between them)."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                         width=1 << 30, allow_unicode=True)
