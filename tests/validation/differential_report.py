"""One line per hard PKI case: expected answer, mesh, pyca and openssl.

    .venv/bin/python tests/validation/differential_report.py [-k TEXT] [--diff] [-v]

``-k`` keeps the cases whose id or family contains TEXT; ``--diff`` prints
only the cases where a judge disagrees with the expected answer; ``-v`` adds
each disagreeing judge's reason. A judge "agrees" when its accept/reject
matches ``expect_valid``; for mesh the primary code must match too (or be
one of the case's ``also_accept`` codes), shown as ``code!`` when it does not.
Marks: ``G`` a known mesh gap (``KNOWN_GAPS``), ``D`` a documented oracle
difference (``DOCUMENTED_ORACLE_DIFFERENCES``), both in test_differential.py.
The summary counts agreement per judge and lists what the two tables no
longer describe: mesh disagreements that are not known gaps, known gaps that
now agree, oracle answers that differ from what is documented.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hardpki import HardCase, cases  # noqa: E402
from oracles import (  # noqa: E402
    mesh_takes_crl_files,
    mesh_verdict,
    openssl_available,
    openssl_verdict,
    pyca_verdict,
)


def mesh_agrees(case: HardCase, accepted: bool, code: str | None) -> bool:
    if accepted != case.expect_valid:
        return False
    return case.expect_valid or code == case.expect_code or code in case.also_accept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only cases whose id or family contains this")
    parser.add_argument("--diff", action="store_true", help="only cases with a disagreement")
    parser.add_argument("-v", "--verbose", action="store_true", help="print reasons")
    args = parser.parse_args(argv)

    from test_differential import (
        DOCUMENTED_ORACLE_DIFFERENCES,
        KNOWN_GAPS,
        documented_oracles,
    )

    started = time.perf_counter()
    selected = [c for c in cases() if args.k in c.id or args.k in c.family]
    with_openssl = openssl_available()
    agree = {"mesh": 0, "pyca": 0, "openssl": 0}
    mesh_wrong: list[str] = []
    undocumented: list[str] = []
    width = max(len(c.id) for c in selected) if selected else 10
    print(f"{'case':<{width}}  {'expected':<22} {'mesh':<24} {'pyca':<8} {'openssl':<8} marks")
    for case in selected:
        accepted, code, detail = mesh_verdict(case)
        mesh_ok = mesh_agrees(case, accepted, code)
        if accepted:
            mesh_text = "valid" if code is None else f"valid({code})"
        else:
            mesh_text = code or "reject"
        if not mesh_ok:
            mesh_text += "!"
            mesh_wrong.append(case.id)
        pyca_answer, pyca_why = pyca_verdict(case)
        pyca_ok = pyca_answer == case.expect_valid
        if with_openssl:
            ossl_answer, ossl_why = openssl_verdict(case)
            ossl_ok = ossl_answer == case.expect_valid
            ossl_text = ("valid" if ossl_answer else "reject") + ("" if ossl_ok else "!")
        else:
            ossl_why, ossl_ok, ossl_text = "openssl not installed", True, "-"
        agree["mesh"] += mesh_ok
        agree["pyca"] += pyca_ok
        agree["openssl"] += ossl_ok and with_openssl
        documented = documented_oracles(case.id)
        if (not pyca_ok) != ("pyca" in documented) or (
            with_openssl and (not ossl_ok) != ("openssl" in documented)
        ):
            undocumented.append(case.id)
        if args.diff and mesh_ok and pyca_ok and ossl_ok:
            continue
        marks = ("G" if case.id in KNOWN_GAPS else "") + (
            "D" if case.id in DOCUMENTED_ORACLE_DIFFERENCES else ""
        )
        pyca_text = ("valid" if pyca_answer else "reject") + ("" if pyca_ok else "!")
        print(
            f"{case.id:<{width}}  {case.expected:<22} {mesh_text:<24} {pyca_text:<8} "
            f"{ossl_text:<8} {marks}"
        )
        if args.verbose:
            if not mesh_ok:
                print(f"{'':<{width}}    mesh: {detail} (expected {case.expected}: {case.rule})")
            if not pyca_ok:
                print(f"{'':<{width}}    pyca: {pyca_why}")
            if not ossl_ok:
                print(f"{'':<{width}}    openssl: {ossl_why}")
    total = len(selected)
    print()
    mode = "crl_files=" if mesh_takes_crl_files() else "crl_lookup by CDP URL"
    print(f"{total} cases in {time.perf_counter() - started:.1f} s (mesh CRLs via {mode})")
    for judge, count in agree.items():
        if judge == "openssl" and not with_openssl:
            print("openssl: not installed")
            continue
        print(f"{judge:>8}: {count}/{total} agree with the expected answer")
    ids = {c.id for c in selected}
    new_gaps = sorted(set(mesh_wrong) - set(KNOWN_GAPS))
    closed = sorted(set(KNOWN_GAPS) & ids - set(mesh_wrong))
    print(f"mesh disagrees on {len(mesh_wrong)}: {len(new_gaps)} not in KNOWN_GAPS"
          + (f" ({', '.join(new_gaps)})" if new_gaps else "")
          + f"; known gaps now agreeing: {len(closed)}"
          + (f" ({', '.join(closed)})" if closed else ""))
    print(f"oracle answers that do not match DOCUMENTED_ORACLE_DIFFERENCES: {len(undocumented)}"
          + (f" ({', '.join(undocumented)})" if undocumented else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
