"""Faults survived, nothing lost, nothing let in."""
