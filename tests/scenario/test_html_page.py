"""The HTML report of a library scenario in Debian's headless chromium, with no network.

A report is opened from a CI artefact or a mail: it must show everything with
nothing fetched, and its timeline filters must work in a real browser.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh.cli import main
from web.browser import dump_dom, need_chromium, open_webdriver

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.fixture
def report(tmp_path: Path) -> tuple[Path, dict]:
    """The showcase played with --html and --json (a sync fixture: mesh run runs its own trio)."""
    need_chromium()
    page, data = tmp_path / "report.html", tmp_path / "report.json"
    assert main(["run", "-q", str(LIBRARY / "showcase.toml"), "--html", str(page),
                 "--json", str(data)]) == 0
    return page, json.loads(data.read_text())


async def test_the_page_shows_every_moment_and_the_halted_links_offline(report, tmp_path):
    page, data = report
    dom = await dump_dom(page.as_uri(), profile=tmp_path / "profile", cert=None, offline=True)
    tables = [data["start"]["links"], *(step["links"] for step in data["steps"])]
    halted = {(row["code"], row["message"]) for table in tables for row in table
              if row["state"] == "halted"}
    assert halted  # the showcase halts links, or this test proves nothing
    for code, message in halted:
        assert f"halted: {code}" in dom  # drawn on the link
        assert message in dom  # the operator's words, under the drawing
    assert dom.count('data-testid="moment"') == len(tables) == dom.count("<svg")


async def test_the_timeline_filters_in_the_browser_and_nothing_is_fetched(nursery, report, tmp_path):
    page, _ = report
    driver = await open_webdriver(nursery, profile=tmp_path / "profile", cert=None, offline=True)
    await driver.get(page.as_uri())
    total = await driver.execute("return document.querySelectorAll('tr.event').length;")
    assert total > 0
    shown = await driver.text(".timeline .shown")
    assert shown == f"{total} of {total} shown"
    counts = await driver.execute("""
        const box = document.querySelector('.timeline');
        const kind = box.querySelector('.filter-kind');
        kind.value = 'link-halted';
        kind.dispatchEvent(new Event('change'));
        const visible = [...box.querySelectorAll('tr.event')].filter(r => !r.hidden);
        return [visible.length, visible.every(r => r.dataset.kind === 'link-halted'),
                box.querySelector('.shown').textContent];
    """)
    assert counts[0] > 0 and counts[1] is True and counts[2] == f"{counts[0]} of {total} shown"
    chosen = await driver.execute("""
        const box = document.querySelector('.timeline');
        box.querySelector('.filter-kind').value = '';
        const who = box.querySelector('.filter-appliance');
        who.value = who.options[1].value;
        who.dispatchEvent(new Event('change'));
        const visible = [...box.querySelectorAll('tr.event')].filter(r => !r.hidden);
        return [who.value, visible.length,
                visible.every(r => r.dataset.appliances.split(' ').includes(who.value))];
    """)
    assert chosen[1] > 0 and chosen[2] is True
    # Nothing but the file itself was loaded: no font, script, style or image.
    assert await driver.execute("return performance.getEntriesByType('resource').length;") == 0
