"""The CRLs an appliance keeps on disk, so a restarted node starts with the CRLs it had.

Why: a real appliance keeps its CRLs across a restart, and uses a cached one
until its nextUpdate when the CRL server is down. A ``mesh node`` restarted
at every step (``mesh run --hosts``) would otherwise start with an empty
cache, and a CRL server that is down would halt links at once that stay up
in a long-running appliance (the ``crl-server-down`` scenario).

A store is a folder (the node config's ``crl_cache``): one DER file per URL
and ``index.json`` mapping each URL to its file, written atomically, files
0600. A CRL is saved when the fetcher caches it (never one it refused to
cache). A :class:`~mesh.net.crl_fetch.CrlFetcher` with a store starts with
what it holds, every entry marked for refresh: the first use refetches, and
a failed refetch keeps the stored CRL while it is current, the cache's own
rule (:mod:`mesh.net.crl_cache`). A file that is missing or does not parse
is left out, never an error: the appliance then fetches, as it would have.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mesh.errors import InputError, ValidationFailed
from mesh.pki.file_output import write_file
from mesh.validation.revocation import CrlIndex

__all__ = ["CrlStore"]

_INDEX = "index.json"


class CrlStore:
    """CRLs by URL in ``folder`` (made 0700 at the first save)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def load(self) -> dict[str, CrlIndex]:
        """Every stored CRL that still parses, by URL."""
        try:
            names = json.loads((self.folder / _INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        out: dict[str, CrlIndex] = {}
        if not isinstance(names, dict):
            return out
        for url, name in names.items():
            if not isinstance(url, str) or not isinstance(name, str) or "/" in name:
                continue
            try:
                out[url] = CrlIndex.from_bytes((self.folder / name).read_bytes(), source=url)
            except (OSError, ValidationFailed):
                continue
        return out

    def save(self, url: str, index: CrlIndex) -> None:
        """Keep ``index`` for ``url`` (a CRL known only parsed, without its DER, is not kept).

        Best effort: a folder that cannot be written (read-only, full) keeps
        nothing, and the fetch that brought the CRL goes on as without a store.
        """
        if index.der is None:
            return
        try:
            self._save(url, index.der)
        except (OSError, InputError):
            return

    def _save(self, url: str, der: bytes) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = hashlib.sha256(url.encode()).hexdigest()[:32] + ".crl"
        write_file(self.folder / name, der, mode=0o600)
        try:
            names = json.loads((self.folder / _INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            names = {}
        if not isinstance(names, dict) or names.get(url) != name:
            names = dict(names) if isinstance(names, dict) else {}
            names[url] = name
            write_file(self.folder / _INDEX, json.dumps(names, indent=1).encode(), mode=0o600)
