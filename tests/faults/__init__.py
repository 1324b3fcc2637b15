"""Faults survived, nothing lost, nothing let in (issue 7)."""
