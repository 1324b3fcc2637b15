"""``mesh pki`` and ``mesh cert``: placeholders until the PKI commands land."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    return None
