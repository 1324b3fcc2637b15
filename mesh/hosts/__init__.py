"""Hosts of their own for ``mesh run --hosts``: see :mod:`mesh.hosts.netns`."""
