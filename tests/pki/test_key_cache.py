"""The persistent key cache: filled once, reused, private, and never in the way."""

from __future__ import annotations

import os
import stat
from collections import Counter

import pytest

from mesh.pki import key_cache
from mesh.pki.key_cache import KeyCache


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_filled_cache_is_private_and_a_second_fill_generates_nothing(tmp_path, monkeypatch):
    cache = KeyCache(tmp_path / "keys")
    first = cache.fill(Counter({1024: 3}))
    assert [len(first[1024])] == [3]
    assert _mode(tmp_path / "keys") == 0o700
    assert _mode(tmp_path / "keys" / "rsa-1024.der") == 0o600

    def never(sizes, **kwargs):
        raise AssertionError(f"generated {sizes} although the cache holds them")

    monkeypatch.setattr(key_cache, "generate_keys", never)
    assert cache.fill(Counter({1024: 3})) == first
    assert cache.fill(Counter({1024: 2}))[1024] == first[1024]  # asking for fewer: all kept


def test_a_source_hands_out_distinct_keys_the_same_ones_every_run(tmp_path):
    cache = KeyCache(tmp_path)
    take = cache.source(Counter({1024: 2}))
    run1 = [take(1024) for _ in range(3)]  # the third is beyond the estimate: made on demand
    assert len({k.private_numbers().p for k in run1}) == 3
    take = cache.source(Counter({1024: 2}))
    run2 = [take(1024) for _ in range(2)]
    assert [k.private_numbers().p for k in run2] == [k.private_numbers().p for k in run1[:2]]
    assert len(cache.stored(1024)) == 2  # on-demand keys are not kept


def test_more_keys_are_appended_after_the_old_ones(tmp_path):
    cache = KeyCache(tmp_path)
    old = cache.fill(Counter({1024: 1}))[1024]
    grown = cache.fill(Counter({1024: 2, 2048: 1}))
    assert grown[1024][:1] == old and len(grown[1024]) == 2 and len(grown[2048]) == 1


@pytest.mark.parametrize("damage", [b"", b"not DER at all", b"\x30\x82\xff\xff\x00"])
def test_a_damaged_file_is_ignored_and_rewritten(tmp_path, damage):
    cache = KeyCache(tmp_path)
    (tmp_path / "rsa-1024.der").write_bytes(damage)
    assert cache.stored(1024) == []
    assert len(cache.fill(Counter({1024: 1}))[1024]) == 1
    assert len(cache.stored(1024)) == 1


def test_a_cache_that_cannot_be_written_still_gives_keys(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    take = KeyCache(blocked / "keys").source(Counter({1024: 1}))
    assert take(1024).key_size == 1024


def test_the_default_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("MESH_KEY_CACHE", str(tmp_path / "named"))
    assert KeyCache.default().directory == tmp_path / "named"
    monkeypatch.delenv("MESH_KEY_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert KeyCache.default().directory == tmp_path / "xdg" / "mesh" / "keys"
