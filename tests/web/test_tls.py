"""The console's TLS contexts: built per certificate, keys never left on disk."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

from mesh.web.tls import IdentityContexts, build_context


def test_context_built_once_per_certificate(pki):
    current = {"identity": pki.self_signed}
    contexts = IdentityContexts(lambda: current["identity"], lambda: (pki.root.cert,))
    first = contexts.context()
    assert contexts.context() is first
    current["identity"] = pki.leaf
    second = contexts.context()
    assert second is not first and contexts.builds == 2
    assert second.verify_mode is ssl.CERT_OPTIONAL
    assert second.minimum_version is ssl.TLSVersion.TLSv1_2


def test_no_key_file_stays_behind(pki, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    build_context(pki.leaf)
    assert list(Path(tmp_path).iterdir()) == []
