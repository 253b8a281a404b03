"""A person's text is never read as Markdown in a mail's HTML part.

Mail templates are Markdown with Jinja; the HTML part is the Markdown converted.
A value (a backer's name, an address) must reach the HTML as the text it is,
not as a link or an image someone typed: each {{ value }} is held back behind a
placeholder while Markdown runs, then put back escaped. The catalogs' own words
(a translator's **bold**) stay Markdown.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import escape

from fundraiser import i18n


class Slots:
    """Values of one HTML render, held back from Markdown behind placeholders.

    A placeholder is letters and digits only (Markdown leaves those alone) and
    carries a random part new for each render, so no text a person typed can
    forge one.
    """

    def __init__(self) -> None:
        self.prefix = f"zq{secrets.token_hex(6)}v"
        self.values: list[object] = []
        self.pattern = re.compile(rf"{self.prefix}(\d+)z")

    def hold(self, value: object) -> str:
        self.values.append(value)
        return f"{self.prefix}{len(self.values) - 1}z"

    def fill(self, html: str) -> str:
        """Each placeholder replaced by its value, escaped for HTML (Markup kept as it is)."""
        return self.pattern.sub(lambda m: str(escape(self.values[int(m.group(1))])), html)


SLOTS = "_fundraiser_slots"


class Words(str):
    """A message from the catalogs, its values already held: Markdown, like the
    template's own text, never a value to hold back."""

    __slots__ = ()


@pass_context
def hold(context: Context, value: object) -> object:
    """Jinja's `finalize` for the HTML part: every {{ value }} becomes a placeholder."""
    slots = context.get(SLOTS)
    if slots is None or isinstance(value, Words):
        return value
    return slots.hold(value)


def _held(context: Context, values: dict[str, Any]) -> dict[str, Any]:
    slots = context.get(SLOTS)
    return values if slots is None else {k: slots.hold(v) for k, v in values.items()}


def html_gettext(words: i18n.Language) -> tuple[Any, Any]:
    """gettext and ngettext for the HTML part: each value held back from Markdown, the
    message's own words (a translator's `**bold**` too) left to Markdown."""

    @pass_context
    def gettext(context: Context, message: str, **values: Any) -> Words:
        return Words(words.gettext(message) % _held(context, values))

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, num: int, **values: Any) -> Words:
        values.setdefault("num", num)
        return Words(words.ngettext(singular, plural, num) % _held(context, values))

    return gettext, ngettext
