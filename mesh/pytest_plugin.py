"""pytest plugin for regression suites that pin mesh's validation behaviour.

Registered through the ``pytest11`` entry point. Fixtures arrive with the
scenario runner.
"""
