"""The launch site: our Pelican plugin and the helpers that build the site.

Pelican itself is imported only by `build` and `plugin`, so refreshing the
figures (`fundraiser site figures`) stays fast.
"""

from __future__ import annotations

from fundraiser.errors import FundraiserError


class SiteBuildError(FundraiserError):
    """The site cannot be built; the message says what to fix."""
