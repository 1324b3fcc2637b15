"""ConfigMaps and Secrets within Kubernetes' size limit; files in subfolders put back in place."""

from __future__ import annotations

import base64

import pytest
import yaml

from mesh.errors import InputError
from mesh.export import objects
from mesh.export.objects import OBJECT_BUDGET, config_map, encoded_size, render, secrets


def test_files_spread_over_as_many_secrets_as_the_budget_needs():
    files = {f"f{n}.key": bytes([n]) * 300_000 for n in range(7)}  # 400,000 bytes each as base64
    made, sources = secrets("shard", "ns", files, where="here")
    assert [s["metadata"]["name"] for s in made] == ["shard-0", "shard-1", "shard-2", "shard-3"]
    assert all(sum(len(v) for v in s["data"].values()) <= OBJECT_BUDGET for s in made)
    assert sources == [{"secret": {"name": f"shard-{n}"}} for n in range(4)]
    together = {k: base64.b64decode(v) for s in made for k, v in s["data"].items()}
    assert together == files


def test_a_file_in_a_subfolder_gets_a_flat_key_and_an_item_that_puts_it_back():
    made, sources = secrets("driver", "ns", {"pki/ca/root.key": b"k", "inventory": b"i"}, where="w")
    assert set(made[0]["data"]) == {"pki.ca.root.key", "inventory"}
    assert sources[0]["secret"]["items"] == [{"key": "pki.ca.root.key", "path": "pki/ca/root.key"},
                                            {"key": "inventory", "path": "inventory"}]


def test_one_file_or_config_over_the_budget_is_one_line(monkeypatch):
    with pytest.raises(InputError) as caught:
        secrets("s", "ns", {"big.crl": b"x" * OBJECT_BUDGET}, where="fleet.toml: mesh-shard-0")
    assert caught.value.line() == (
        "fleet.toml: mesh-shard-0: big.crl: is 900,000 bytes, more than one Secret may hold "
        "(900,000 here; Kubernetes refuses 1 MiB); keep it smaller")
    with pytest.raises(InputError) as caught:
        config_map("c", "ns", {"node.toml": "x" * (OBJECT_BUDGET + 1)}, where="w")
    assert "spread the appliances over more shards (--workers)" in caught.value.line()


def test_encoded_size_is_base64s():
    for n in range(10):
        assert encoded_size(b"x" * n) == len(base64.b64encode(b"x" * n))


def test_multi_line_text_is_a_literal_block_and_reads_back_the_same():
    text = render([{"data": {"node.toml": 'name = "cm"\n\n[connects_to]\n"a" = "b:1"\n', "n": "1"}}])
    assert "node.toml: |" in text
    assert yaml.safe_load(text)["data"]["node.toml"] == 'name = "cm"\n\n[connects_to]\n"a" = "b:1"\n'
    assert yaml.safe_load(text)["data"]["n"] == "1"  # a string, quoted as one


def test_pods_drop_every_privilege():
    assert objects.container_security()["capabilities"] == {"drop": ["ALL"]}
    assert objects.pod_security()["runAsNonRoot"] is True
