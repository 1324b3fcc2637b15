"""Text from outside (a server's reason phrase, a certificate's names) made safe to show.

Why: such text reached the terminal as it came. A CRL server answering
``404 Not Found \\x1b]0;pwned\\x07`` set the window title of whoever ran
``mesh cert check``; other escapes move the cursor, rewrite earlier lines or
(on some terminals) answer back. :func:`printable` shows every control or
format character as a Python-style escape (``\\x1b``, ``\\u202e``), so what
was sent stays visible without acting, and cuts the text at a length limit.
"""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]

#: Control (Cc), format (Cf: bidi overrides, zero-width), line and paragraph
#: separators (Zl, Zp), and unassigned or private-use code points.
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Co", "Cs"})


def _escape(char: str) -> str:
    if unicodedata.category(char) not in _UNSAFE:
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str, limit: int = 200) -> str:
    """``text`` with unsafe characters escaped, at most ``limit`` characters of it.

    A cut is marked with "…" and the number of characters left out.
    """
    shown = "".join(_escape(c) for c in text[:limit])
    if len(text) > limit:
        shown += f"… ({len(text) - limit} more characters)"
    return shown
