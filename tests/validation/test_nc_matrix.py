"""The name-constraint matrix and the RFC 4158 path-building graphs, on a sample.

``nc_matrix.py`` generates the cases (after the public test design of
Netflix's bettertls) and measures the whole matrix; this runs a
deterministic sample of it, a few hundred cases, in a few seconds:

* mesh (strict profile, purpose server, the case's host as expected name)
  must give the expected answer, except for the classes in
  :data:`DOCUMENTED_CLASSES` — mesh's documented rules, where the matrix's
  rules differ;
* pyca's verifier must give the expected answer on every sampled case (it
  does on the whole matrix): this checks the generator, not mesh;
* the ``nc-rollover`` variant (the constrained ICA has rolled its key over)
  must agree the same way: a self-issued intermediate changes nothing.

Full-matrix figures (``python tests/validation/nc_matrix.py``): nc 8,748
cases, mesh agrees on 8,747, the other one is the CN-only class below;
nc-extra 737, pb 81, pb-sweep 520 and pb-pairs 90: mesh agrees on all; the
nc-rollover variant gives the nc figures.
"""

from __future__ import annotations

import pytest

from nc_matrix import (
    REPRODUCTION,
    Builder,
    NcSpec,
    Result,
    disagreement_class,
    judge,
    nc_specs,
    run,
    select,
)

#: Disagreement classes that are mesh's documented rule, with their count over
#: the full nc matrix (8,748 cases) and why mesh answers otherwise.
DOCUMENTED_CLASSES: dict[str, tuple[int, str]] = {
    "false accept: cn-only-host-match": (
        1,
        ("mesh names a leaf that has no SAN at all by its subject CN (RFC 6125 6.4.4; "
        "ValidationPolicy.expected_name: 'in its SAN (or CN when it has no SAN)'), the source "
        "document's CN-named certificates need it. The matrix's rule never uses the CN. Under "
        "name constraints mesh does not read a name from the CN either "
        "(identity.check_constrained_cn), so the one case left is the CN-only leaf on a path "
        "without any name constraints."),
    ),
}

#: Per family, how many cases the sample draws (every case of a smaller family).
SAMPLE = 120
SEED = 4158


@pytest.fixture(scope="module")
def results() -> list[Result]:
    return run(select(REPRODUCTION, SAMPLE, SEED))


def test_the_sample_covers_every_family_both_ways(results: list[Result]):
    for family in REPRODUCTION:
        answers = [r.case.expect_valid for r in results if r.case.family == family]
        assert answers, family
        if family != "nc-extra":  # every smuggled-SAN case is a refusal
            assert any(answers) and not all(answers), family
    assert len(results) >= 400


def test_mesh_agrees_except_for_documented_classes(results: list[Result]):
    undocumented = [
        f"{r.case.id}: expected {'accept' if r.case.expect_valid else 'refusal'}; "
        f"mesh {r.mesh_code or 'valid'}: {r.mesh_detail} [{disagreement_class(r)}]"
        for r in results
        if not r.mesh_agrees and disagreement_class(r) not in DOCUMENTED_CLASSES
    ]
    assert not undocumented, "\n".join(undocumented)


def test_pyca_agrees_on_every_sampled_case(results: list[Result]):
    wrong = [f"{r.case.id}: pyca {r.pyca_detail}" for r in results if not r.pyca_agrees]
    assert not wrong, "\n".join(wrong)


def _cn_only_host_match() -> list[NcSpec]:
    return [s for s in nc_specs()
            if s.host == "dns" and s.cn_type == "dns" and s.cn == "v"
            and s.dns_san == "n" and s.ip_san == "n"]


def test_the_cn_only_class_is_exactly_the_documented_one():
    specs = _cn_only_host_match()
    assert len(specs) == 81
    builder = Builder()
    outcomes = [judge(builder.build("nc", s), with_pyca=False) for s in specs]
    accepted = [r for r in outcomes if r.mesh]
    assert all(disagreement_class(r) in DOCUMENTED_CLASSES for r in accepted)
    assert len(accepted) == DOCUMENTED_CLASSES["false accept: cn-only-host-match"][0]
    # Accepted exactly when no CA on the path constrains names.
    for r, s in zip(outcomes, specs):
        unconstrained = {s.permit_dns, s.exclude_dns, s.permit_ip, s.exclude_ip} == {"n"}
        assert r.mesh is unconstrained, r.case.id


def _rollover_specs() -> list[NcSpec]:
    """IP host, IP SAN only, a CN: where OpenSSL holds the CN to DNS constraints."""
    return [s for s in nc_specs()
            if s.host == "ip" and s.dns_san == "n" and s.ip_san == "v" and s.cn != "n"
            and s.permit_ip in ("n", "v") and s.exclude_ip in ("n", "i")][::4]


def test_a_self_issued_intermediate_changes_no_answer():
    """A key rollover below the constrained CA: pyca settles OpenSSL's objection
    to the CN of a leaf that has a SAN (strict.StrictChecker._maintained)."""
    builder = Builder()
    outcomes = [judge(builder.build("nc-rollover", s), with_pyca=False) for s in _rollover_specs()]
    wrong = [f"{r.case.id}: mesh {r.mesh_code}: {r.mesh_detail}" for r in outcomes
             if not r.mesh_agrees and disagreement_class(r) not in DOCUMENTED_CLASSES]
    assert not wrong, "\n".join(wrong)
    assert len(outcomes) == 36
