"""The validation core is sans-IO: importing it must not import trio."""

import subprocess
import sys


def test_validation_does_not_import_trio():
    code = (
        "import sys\n"
        "import mesh.validation, mesh.validation.verdict, mesh.validation.chain\n"
        "import mesh.validation.revocation, mesh.validation.identity\n"
        "import mesh.validation.strength, mesh.validation.period, mesh.validation.policy\n"
        "import mesh.validation.expiry\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('trio', 'httpx'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert "trio" not in out.split(","), out
    assert "httpx" not in out.split(","), out
