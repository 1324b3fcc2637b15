"""Writing a scenario's fleet for somewhere else to run it: ``mesh export kubernetes``.

Nothing here runs a node: the modules build files (manifests, node configs,
an inventory) from a scenario and its PKI, and the command writes them.
"""
