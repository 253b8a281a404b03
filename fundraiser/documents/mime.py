"""A mail as SMTP carries it: headers and MIME parts written by hand, in ASCII.

The email package's generator took most of the time per mail (bench_members.py);
the structure here is fixed and small enough to write directly. Tests parse the
result with the email package.
"""

from __future__ import annotations

import base64
import binascii
from email.header import Header
from email.utils import formataddr, parseaddr


def wire_message(
    headers: dict[str, str],
    text: str,
    html: str,
    files: list[tuple[str, bytes]],
    *,
    boundary: str,
) -> bytes:
    """MIME by hand: the email package's generator took most of the time per mail.

    The structure is fixed (multipart/alternative of text and HTML, inside
    multipart/mixed when files are attached), the bodies are quoted-printable and
    base64, whose output can never contain "=_", so boundaries starting "=_"
    cannot collide with content. Tests parse the result with the email package.
    """
    alt, mixed = boundary + "a", boundary + "m"
    lines = [f"{name}: {_header(name, value)}" for name, value in headers.items()]
    lines.append("MIME-Version: 1.0")
    body = [
        f"--{alt}",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _qp(text),
        f"--{alt}",
        'Content-Type: text/html; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _qp(html),
        f"--{alt}--",
    ]
    if files:
        lines += [f'Content-Type: multipart/mixed; boundary="{mixed}"', ""]
        lines += [f"--{mixed}", f'Content-Type: multipart/alternative; boundary="{alt}"', ""]
        lines += body
        for filename, content in files:
            lines += [
                "",
                f"--{mixed}",
                f'Content-Type: {_file_type(filename)}; name="{filename}"',
                "Content-Transfer-Encoding: base64",
                f'Content-Disposition: attachment; filename="{filename}"',
                "",
                base64.encodebytes(content).decode("ascii").rstrip("\n").replace("\n", "\r\n"),
            ]
        lines.append(f"--{mixed}--")
    else:
        lines += [f'Content-Type: multipart/alternative; boundary="{alt}"', ""]
        lines += body
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _file_type(filename: str) -> str:
    return "image/png" if filename.endswith(".png") else "application/pdf"


def _qp(text: str) -> str:
    normal = text.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(normal.encode("utf-8"), istext=True).decode("ascii")
    # A final newline is content; the CRLF the join adds belongs to the boundary.
    return encoded.replace("\n", "\r\n")


#: SMTP's limit on a line (RFC 5321): a longer header must be folded.
_MAX_LINE = 998
#: A display name in From/To is a courtesy; the body carries the name in full.
_MAX_DISPLAY = 100


def _header(name: str, value: str) -> str:
    """A header value in ASCII (RFC 2047 words for names and subjects that need them)."""
    if value.isascii() and len(name) + 2 + len(value) <= _MAX_LINE:
        return value
    if name in ("From", "To", "Reply-To"):
        display, address = parseaddr(value)
        encoded = formataddr((display, address), charset="utf-8")
    else:
        # Folded onto short lines: a long subject must not break the line limit.
        encoded = Header(value, "utf-8", header_name=name).encode()
    return encoded.replace("\n", "\r\n")


def display_name(name: str) -> str:
    """A person's name for a From/To header: one line, and short enough for one.

    A backer may give a name thousands of characters long; written into the
    header in full it would break the line limit servers enforce.
    """
    line = one_line(name)
    return line if len(line) <= _MAX_DISPLAY else line[: _MAX_DISPLAY - 3].rstrip() + "..."


def one_line(value: str) -> str:
    """Header text on one line: a CR or LF in a name must not start a new header."""
    return " ".join(value.split())
