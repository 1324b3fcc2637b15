"""``mesh.cli.graph``: its copy of the formats stays equal to the original."""

from mesh import graph
from mesh.cli import graph as cli_graph


def test_formats_are_the_graphs():
    assert cli_graph.FORMATS == graph.FORMATS
