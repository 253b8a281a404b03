"""The share image for Open Graph and Twitter cards, drawn with the campaign's figures.

A link to the site shared on a social network shows this 1200 x 630 PNG: the
co-op's name, what has been pledged towards the goal, a progress bar, backers
and days left. It is drawn at build time and again by `fundraiser site figures`,
from the same aggregates as campaign.json, so it never shows more than the site.

Pillow draws it with a font already on the machine (DejaVu or Liberation, which
WeasyPrint's fontconfig brings along), else Pillow's own bundled font: nothing is
fetched. The image depends only on its inputs, so a rebuild with the same figures
writes the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from fundraiser.figures import Figures
from fundraiser.i18n import Language
from fundraiser.sitegen.filters import money, number

if TYPE_CHECKING:
    from PIL.ImageDraw import ImageDraw
    from PIL.ImageFont import FreeTypeFont

SHARE_IMAGE = "share.png"
#: PNG text keys recording what the image was drawn with.
KEY_NAME, KEY_LOCALE, KEY_WEBSITE = "fundraiser:name", "fundraiser:locale", "fundraiser:website"
#: ... and a digest of everything it shows, so unchanged figures are not drawn again.
KEY_INPUTS = "fundraiser:inputs"
#: Part of that digest: change it when the drawing changes.
DRAWING = "1"
WIDTH, HEIGHT = 1200, 630

#: The theme's colours (theme/static/css/site.css).
INK = (28, 27, 25)
MUTED = (87, 83, 78)
PAPER = (251, 250, 246)
PANEL = (241, 239, 232)
ACCENT = (31, 92, 61)
ON_ACCENT = (255, 255, 255)

#: Fonts tried in order: the first one present is used (free licences: DejaVu, Liberation).
BOLD_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/Library/Fonts/Arial Bold.ttf",
    "C:/Windows/Fonts/arialbd.ttf",
)
REGULAR_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:/Windows/Fonts/arial.ttf",
)


@dataclass(frozen=True)
class ShareText:
    """What the image says, already formatted in the campaign's locale."""

    name: str
    locale: str
    website: str
    raised: str
    goal_line: str
    stats: tuple[str, ...]
    footer: str
    pledged: int  # minor units: the bar is drawn from these, not the rounded percentage
    goal: int


def share_text(name: str, figures: Figures, website: str | None, language: Language) -> ShareText:
    """The image's words, in the co-op's language."""
    locale = language.locale
    pledged = money(figures.pledged, whole=True, locale=locale)
    goal = money(figures.goal, whole=True, locale=locale)
    backers = language.ngettext("%(count)s backer", "%(count)s backers", figures.backers) % {
        "count": number(figures.backers, locale=locale)
    }
    if figures.state == "open":
        days = figures.days_left
        timing = language.ngettext("%(count)s day left", "%(count)s days left", days) % {
            "count": number(days, locale=locale)
        }
    elif figures.state == "upcoming":
        timing = language.gettext("Pledges open soon")
    else:
        timing = language.gettext("Offer closed")
    if figures.mode == "all-or-nothing":
        mode = language.gettext("All or nothing")
    else:
        mode = language.gettext("Keep it all")
    address = (website or "").removeprefix("https://").removeprefix("http://").rstrip("/")
    footer = language.gettext("Pledge for shares and become a founding member")
    return ShareText(
        name=name,
        locale=language.locale,
        website=website or "",
        raised=pledged,
        goal_line=language.gettext("pledged of a %(goal)s goal") % {"goal": goal},
        stats=(
            language.gettext("%(percent)s%% of the goal") % {"percent": figures.percent},
            backers,
            timing,
            mode,
        ),
        footer=f"{footer} · {address}" if address else footer,
        pledged=figures.pledged.amount,
        goal=figures.goal.amount,
    )


@cache
def _font(bold: bool, size: int) -> FreeTypeFont:
    from PIL import ImageFont

    for path in BOLD_FONTS if bold else REGULAR_FONTS:
        if os.path.isfile(path):
            return ImageFont.truetype(path, size)
    # Pillow's own font (bundled with Pillow, FreeType builds): plainer, always there.
    font = ImageFont.load_default(size)
    assert isinstance(font, ImageFont.FreeTypeFont)
    return font


def _fit(text: str, bold: bool, size: int, width: int, smallest: int) -> FreeTypeFont:
    """The largest font up to `size` in which `text` fits `width` pixels."""
    while size > smallest and _font(bold, size).getlength(text) > width:
        size -= 2
    return _font(bold, size)


def _clip(text: str, font: FreeTypeFont, width: int) -> str:
    """Shorten text that still does not fit, with an ellipsis (a very long name)."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def render(text: ShareText) -> bytes:
    """The PNG's bytes."""
    from PIL import Image, ImageDraw
    from PIL.PngImagePlugin import PngInfo

    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    margin = 72
    inner = WIDTH - 2 * margin

    # A band in the site's header colour carries the co-op's name.
    draw.rectangle((0, 0, WIDTH, 132), fill=ACCENT)
    name_font = _fit(text.name, True, 52, inner, 30)
    draw.text(
        (margin, 66),
        _clip(text.name, name_font, inner),
        font=name_font,
        fill=ON_ACCENT,
        anchor="lm",
    )

    raised_font = _fit(text.raised, True, 124, inner, 60)
    draw.text((margin, 262), text.raised, font=raised_font, fill=ACCENT, anchor="ls")
    goal_font = _fit(text.goal_line, False, 40, inner, 24)
    draw.text((margin, 318), text.goal_line, font=goal_font, fill=INK, anchor="ls")

    # The progress bar: its filled part is the share of the goal pledged (at most all),
    # cut from the same rounded shape so a small share is drawn to scale.
    bar = (margin, 356, WIDTH - margin, 396)
    draw.rounded_rectangle(bar, radius=20, fill=PANEL)
    filled = inner * min(max(text.pledged, 0), text.goal) // text.goal if text.goal > 0 else 0
    if filled > 0:
        mask = Image.new("L", (WIDTH, HEIGHT), 0)
        shape = ImageDraw.Draw(mask)
        shape.rounded_rectangle(bar, radius=20, fill=255)
        shape.rectangle((margin + filled, 0, WIDTH, HEIGHT), fill=0)
        image.paste(ACCENT, (0, 0, WIDTH, HEIGHT), mask)
    draw.rounded_rectangle(bar, radius=20, outline=MUTED, width=2)

    _stats_row(draw, text.stats, margin, 470, inner)
    footer_font = _fit(text.footer, False, 30, inner, 18)
    draw.text(
        (margin, 572),
        _clip(text.footer, footer_font, inner),
        font=footer_font,
        fill=MUTED,
        anchor="ls",
    )

    # What `fundraiser site figures` needs to draw it again without the Pelican
    # settings: the name and locale the build used (all public already).
    info = PngInfo()
    info.add_text(KEY_INPUTS, inputs(text))
    info.add_text(KEY_NAME, text.name)
    info.add_text(KEY_LOCALE, text.locale)
    info.add_text(KEY_WEBSITE, text.website)
    buffer = io.BytesIO()
    # Light compression: twice as quick to write as the default, a fifth larger (about 55 KB).
    image.save(buffer, format="PNG", compress_level=1, pnginfo=info)
    return buffer.getvalue()


def inputs(text: ShareText) -> str:
    """A digest of what the image shows (the dataclass's repr lists every field)."""
    return hashlib.sha256(f"{DRAWING} {text!r}".encode()).hexdigest()


def _png_text(path: Path) -> dict[str, str]:
    """The text chunks before a PNG's pixels, which is where `render` puts them.

    Read from `info` as the file is opened: `Image.text` would decode every pixel
    to look for more chunks after them.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return {str(k): v for k, v in image.info.items() if isinstance(v, str)}
    except (FileNotFoundError, UnidentifiedImageError):
        return {}


def built_with(path: Path) -> tuple[str, str, str] | None:
    """(name, locale, website) of an image this module wrote, or None if there is none."""
    text = _png_text(path)
    if KEY_NAME not in text or KEY_LOCALE not in text:
        return None
    return text[KEY_NAME], text[KEY_LOCALE], text.get(KEY_WEBSITE, "")


def _stats_row(draw: ImageDraw, stats: Sequence[str], left: int, baseline: int, width: int) -> None:
    """The stats side by side, separated by dots, shrunk to fit one line."""
    line = "   ·   ".join(stats)
    font = _fit(line, True, 36, width, 20)
    draw.text((left, baseline), _clip(line, font, width), font=font, fill=INK, anchor="ls")


def write_share_image(output_dir: Path, text: ShareText) -> Path:
    """Write share.png atomically (a crawler never fetches half a file)."""
    target = output_dir / SHARE_IMAGE
    if _png_text(target).get(KEY_INPUTS) == inputs(text):
        return target  # the same figures: nothing to draw
    data = render(text)
    handle, temporary = tempfile.mkstemp(prefix=".share-", suffix=".png", dir=output_dir)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the site is public
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
