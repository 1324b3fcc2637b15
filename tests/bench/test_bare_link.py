"""The bare link: mesh's transport parts alone, every link completed or no figure.

Real sockets and TLS in this process; nothing here asserts on timing.
"""

from __future__ import annotations

from mesh.bench.bare_link import bare_links


async def test_every_bare_link_completes_and_costs_some_cpu(keys):
    assert await bare_links(keys, 12, at_once=4) > 0
