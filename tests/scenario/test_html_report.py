"""The HTML run report from hand-made results: escaping, drawings, changes, index, timeline."""

from __future__ import annotations

import datetime as dt
import re

from attrs import evolve

from mesh.errors import FailureCode
from mesh.events import LinkHalted, LinkUp
from mesh.scenario.both import BothResult
from mesh.scenario.html_report import EVENTS_SHOWN, Played, Timeline, html_report, write_html
from mesh.scenario.model import Expectation
from mesh.scenario.result import CertificateFacts, not_judged
from scenario.test_report import T0, T1, make_result


def _sections(page: str) -> list[str]:
    return re.findall(r'<section class="scenario.*?</section>', page, flags=re.S)


def test_one_scenario_has_its_name_description_and_no_index():
    page = html_report([Played(result=make_result())])
    assert page.startswith("<!DOCTYPE html>")
    assert '<h2>revoked-sensor <span class="badge">FAILED</span></h2>' in page
    assert 'data-testid="index"' not in page
    assert len(_sections(page)) == 1


def test_every_text_is_escaped():
    result = make_result()
    hostile = "<script>alert(1)</script> & \"quotes\""
    scenario = evolve(result.scenario, description=hostile)
    step = evolve(result.steps[1], message=hostile)
    result = evolve(result, scenario=scenario, steps=[result.steps[0], step])
    page = html_report([Played(result=result)])
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    assert page.count("<script>") == 1  # the page's own filters


def test_a_drawing_per_moment_and_the_links_each_step_changed():
    page = html_report([Played(result=make_result())])
    moments = re.findall(r'<div class="moment" data-testid="moment" data-step="(\d+)">(.*?)'
                         r'(?=<div class="moment"|<h3>)', page, flags=re.S)
    assert [step for step, _ in moments] == ["0", "1", "2"]
    assert all(body.count("<svg") == 1 for _, body in moments)
    start, revoke, upload = (body for _, body in moments)
    assert "every link up" in start
    assert 'class="link link-halted" data-link="s1.test -&gt; cm.test"' in revoke
    assert "halted: revoked" in revoke  # the code on the drawn link
    changes = re.findall(r'<li class="change">(.*?)</li>', revoke)
    assert changes == [f"s1.test -&gt; cm.test: up -&gt; halted/revoked &quot;"
                       f"{FailureCode.REVOKED.message}&quot;"]
    assert "no link changed" in upload
    assert "→ refused (passphrase_mismatch)" in upload
    assert FailureCode.PASSPHRASE_MISMATCH.message in upload


def test_a_big_mesh_is_drawn_grouped():
    page = html_report([Played(result=make_result(100))])
    drawing = re.search(r'data-step="1">.*?</svg>', page, flags=re.S).group(0)
    assert 'data-node="99 sensors up"' in drawing
    assert 'data-node="s1.test"' in drawing and 'data-node="s2.test"' not in drawing


def test_expectations_pass_fail_and_not_judged():
    result = make_result()
    off = Expectation(link="s2.test -> cm.test", state="up-unvalidated", mode="off")
    verdicts = [*result.expectations, not_judged(4, off, checked_after=2, at=T1)]
    page = html_report([Played(result=evolve(result, expectations=verdicts))])
    assert re.findall(r'data-verdict="([a-z-]+)"', page) == ["pass", "fail", "pass", "not-judged"]
    assert "judged only in the validation off run" in page


def test_several_scenarios_get_an_index_linking_each_section():
    second = evolve(make_result(wrong=False),
                    scenario=evolve(make_result().scenario, name="second <one>"))
    page = html_report([Played(result=make_result()), Played(result=second)])
    index = re.search(r'<nav class="index".*?</nav>', page, flags=re.S).group(0)
    assert re.findall(r'href="#(scenario-\d)">([^<]*)</a>', index) == [
        ("scenario-1", "revoked-sensor"), ("scenario-2", "second &lt;one&gt;")]
    assert [re.search(r'id="(scenario-\d)"', s).group(1) for s in _sections(page)] == [
        "scenario-1", "scenario-2"]
    assert "1/2 scenarios passed" in page


def test_both_validation_runs_get_a_part_each():
    on = make_result(wrong=False)
    off = evolve(on, validation="off")
    page = html_report([Played(result=BothResult(on=on, off=off), timelines=[None, None])])
    assert re.findall(r'data-testid="run" data-validation="(on|off)"', page) == ["on", "off"]
    assert "validation on (as written) — passed" in page and "validation off — passed" in page


def test_certificates_in_play():
    facts = CertificateFacts(
        appliance="s1.test", recipe="revoked", subject="CN=s1.test", issuer="CN=Issuing CA",
        not_before=T0, not_after=T0 + dt.timedelta(days=365),
        cdp="http://127.0.0.1:1/crl/issuing.crl", key="RSA 2048 bits",
    )
    page = html_report([Played(result=evolve(make_result(), certificates=[facts]))])
    row = re.search(r'<tr data-appliance="s1.test">(.*?)</tr>', page).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", row) == [
        "s1.test", "revoked", "CN=s1.test", "CN=Issuing CA", "2027-01-15 09:00:00Z",
        "2028-01-15 09:00:00Z", "http://127.0.0.1:1/crl/issuing.crl", "RSA 2048 bits"]


def test_the_timeline_is_filterable_and_says_what_it_left_out():
    events = [LinkUp(at=T0, dialer="s2.test", listener="cm.test"),
              LinkHalted(at=T1, dialer="s1.test", listener="cm.test", refused_by="cm.test",
                         code=FailureCode.REVOKED)]
    played = Played(result=make_result(), timelines=[Timeline(events=events, total=EVENTS_SHOWN * 3)])
    page = html_report([played])
    assert 'data-kind="link-halted" data-appliances="s1.test cm.test"' in page
    assert '<option value="link-halted">link-halted</option>' in page
    assert "the first 2 of 6,000 events; 5,998 left out" in page
    assert "+90d" in page  # on the emulated clock, from the start
    assert html_report([Played(result=make_result())]).count("no events were kept") == 1


def test_the_page_needs_nothing_from_the_network():
    page = html_report([Played(result=make_result(100))])
    assert not re.search(r'<(script|link|img)[^>]*(src|href)=', page)
    assert "@import" not in page and "url(http" not in page


def test_written_atomically(tmp_path):
    path = tmp_path / "report.html"
    write_html([Played(result=make_result())], path, interrupted="next <one>")
    text = path.read_text()
    assert 'data-testid="interrupted"' in text and "next &lt;one&gt;" in text
    assert list(tmp_path.iterdir()) == [path]


def test_no_element_id_appears_twice_in_a_page_of_several_drawings():
    page = html_report([Played(result=make_result()), Played(result=make_result())])
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)) > 10
    used = set(re.findall(r'url\(#([^)]+)\)', page))
    assert used and used <= set(ids)
