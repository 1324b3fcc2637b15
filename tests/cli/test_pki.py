"""``mesh.cli.pki``: its copies of the engine's names stay equal to the originals."""

from mesh.cli import pki
from mesh.pki import deployment
from mesh.pki.faults import RECIPES


def test_recipe_names_are_the_recipes():
    assert pki.RECIPE_NAMES == tuple(RECIPES)


def test_defaults_are_the_deployments():
    assert (pki.DEFAULT_ROOT, pki.DEFAULT_INTERMEDIATE, pki.DEFAULT_CRL_BASE_URL) == (
        deployment.DEFAULT_ROOT,
        deployment.DEFAULT_INTERMEDIATE,
        deployment.DEFAULT_CRL_BASE_URL,
    )
