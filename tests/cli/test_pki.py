"""``mesh.cli.pki``: its copies of the engine's names stay equal to the originals."""

from mesh.cli import pki
from mesh.pki import folder
from mesh.pki.faults import RECIPES


def test_recipe_names_are_the_recipes():
    assert pki.RECIPE_NAMES == tuple(RECIPES)


def test_defaults_are_the_folders():
    assert (pki.DEFAULT_ROOT, pki.DEFAULT_INTERMEDIATE, pki.DEFAULT_CRL_BASE_URL) == (
        folder.DEFAULT_ROOT,
        folder.DEFAULT_INTERMEDIATE,
        folder.DEFAULT_CRL_BASE_URL,
    )
