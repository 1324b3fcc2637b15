"""``mesh.cli.cert``: its copy of the validator profiles stays equal to the original."""

from mesh.cli import cert
from mesh.validation.policy import PROFILES


def test_profiles_are_the_policys():
    assert cert.PROFILES == PROFILES
