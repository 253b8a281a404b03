"""The live figures' conditional answers: an If-None-Match header read as RFC 9110 says.

(The figures served from memory during writes are tested in test_app.py, through the app.)"""

from __future__ import annotations

import pytest

from fundraiser.service.live import etag_matches


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"zzz", "abc"', True),
        ('"zzz",W/"abc" ', True),
        ("*", True),
        ("abc", False),  # unquoted: not the tag
        ('"ABC"', False),  # tags are compared exactly
        ('"abc' + "x" * 20_000 + '"', False),
        ("\u201cabc\u201d", False),  # typographic quotes are not quotes
        ('"zzz"', False),
    ],
)
def test_if_none_match_is_read_as_rfc_9110_says(header: str | None, matches: bool) -> None:
    assert etag_matches(header, '"abc"') is matches
