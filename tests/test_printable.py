"""Text from outside, escaped and cut before it is shown."""

import pytest

from mesh.printable import printable


@pytest.mark.parametrize(("text", "shown"), [
    ("Not Found", "Not Found"),
    ("Not Found \x1b]0;pwned\x07", "Not Found \\x1b]0;pwned\\x07"),
    ("a\tb\r\nc\x7f\x9b", "a\\x09b\\x0d\\x0ac\\x7f\\x9b"),
    ("evil\u202etxt.exe\u200b", "evil\\u202etxt.exe\\u200b"),
    ("line\u2028sep", "line\\u2028sep"),
    ("Zürich, 東京", "Zürich, 東京"),
])
def test_unsafe_characters_are_escaped(text, shown):
    assert printable(text) == shown


def test_long_text_is_cut_and_says_so():
    assert printable("x" * 250, 200) == "x" * 200 + "… (50 more characters)"
    assert printable("x" * 200, 200) == "x" * 200
