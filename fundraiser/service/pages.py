"""A backer's private pages (their link from the mail), in the site's own layout.

The service cannot run Pelican, so it renders the theme's templates itself: each
page here (templates/<page>.html) extends the theme's `private.html`, which
extends the theme's `base.html`, the layout of every page of the site. Templates
are looked up as the site build looks them up: the co-op's own theme/templates
first, then the kit's, so a co-op's changes to its layout reach these pages too.
The context is what a build gives base.html (the site's name and address, its
language, the campaign, menus), the filters of fundraiser.formatting in the
campaign's locale and time zone, and the kit's catalogs in the campaign's
language (fundraiser.i18n), as the site build installs them. The stylesheet and
pledge.js are the site's, loaded from its address (SITE_ORIGIN; the pages'
content security policy allows it), so the site's look is these pages' look
without a second copy.

What a pledge's page says is decided here once (`stage`), in words the backer
reads; the templates never print a status name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from fundraiser import i18n, kit
from fundraiser.bank import instructions
from fundraiser.bank.instructions import Transfer
from fundraiser.bankfiles import epc
from fundraiser.config import Campaign, Mode
from fundraiser.errors import FundraiserError
from fundraiser.formatting import jinja_filters
from fundraiser.money import Money
from fundraiser.pledges import BY_HAND, Source, Status

#: The pages the service renders, and what they are made of, checked when it starts.
PAGES = (
    "manage.html",
    "cancel.html",
    "cancelled.html",
    "message.html",
    # A member's own page (service/member.py).
    "member.html",
    "member_signin.html",
    "member_signin_link.html",
    "member_email.html",
    "member_card.html",
    "member_withdraw.html",
    "member_end.html",
)
PARTS = ("_state.html", "_contact.html", "_member_words.html")
LAYOUT = ("private.html", "base.html")
#: The site's pages every kit site has (`fundraiser init` writes them; the pledge
#: page links to the share offer), so a private page can link to them.
SHARE_OFFER = "share-offer.html"
PLEDGE_PAGE = "pledge.html"
UPDATES = "updates/index.html"


class ThemeError(FundraiserError):
    """The theme's templates cannot make the private pages; the service does not start."""


class Stage(enum.StrEnum):
    """Where a pledge stands, as its backer is told: a status, read with what it means now."""

    UNFINISHED = "unfinished"  # online, no card saved yet
    AWAITING_TRANSFER = "awaiting-transfer"  # recorded by hand, the transfer not in
    SAVED = "saved"  # card saved, to be charged at the deadline if the goal is met
    SAVED_CLOSED = "saved-closed"  # card saved, the campaign closed: charged soon
    PROCESSING = "processing"
    PAID = "paid"
    PART_REFUNDED = "part-refunded"
    PAYMENT_FAILED = "payment-failed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASED = "released"
    REFUNDED = "refunded"
    DISPUTED = "disputed"


#: How each stage looks: good news, waiting, action needed, over, or a problem.
TONES: dict[Stage, str] = {
    Stage.UNFINISHED: "wait",
    Stage.AWAITING_TRANSFER: "wait",
    Stage.SAVED: "good",
    Stage.SAVED_CLOSED: "good",
    Stage.PROCESSING: "wait",
    Stage.PAID: "good",
    Stage.PART_REFUNDED: "good",
    Stage.PAYMENT_FAILED: "action",
    Stage.FAILED: "over",
    Stage.CANCELLED: "over",
    Stage.RELEASED: "over",
    Stage.REFUNDED: "over",
    Stage.DISPUTED: "action",
}


def stage(
    status: Status,
    *,
    by_bank: bool,
    refunded: int,
    closed: bool,
    mode: Mode,
    attempted: bool = False,
) -> Stage:
    """What the backer is told about a pledge in `status` (every status has one).

    `attempted`: a charge was tried already (collection has begun, so the goal was
    met), as for a card saved again after a failed charge.
    """
    if status is Status.PENDING:
        return Stage.AWAITING_TRANSFER if by_bank else Stage.UNFINISHED
    if status is Status.AUTHORIZED:
        later = mode is Mode.ALL_OR_NOTHING and not closed and not attempted
        return Stage.SAVED if later else Stage.SAVED_CLOSED
    if status is Status.PAID and refunded > 0:
        return Stage.PART_REFUNDED
    return {
        Status.PROCESSING: Stage.PROCESSING,
        Status.PAID: Stage.PAID,
        Status.PAYMENT_FAILED: Stage.PAYMENT_FAILED,
        Status.FAILED: Stage.FAILED,
        Status.CANCELLED: Stage.CANCELLED,
        Status.RELEASED: Stage.RELEASED,
        Status.REFUNDED: Stage.REFUNDED,
        Status.DISPUTED: Stage.DISPUTED,
    }[status]


@dataclass(frozen=True)
class PledgeView:
    """One pledge as its private page shows it (money as Money, dates as ISO text)."""

    id: int
    stage: Stage
    status: Status
    amount: Money
    shares: int | None
    price: Money
    tier: str | None  # the tier's name, as the pledge page showed it
    created: str
    name: str
    display_name: str | None
    by_bank: bool
    paid: Money
    refunded: Money
    fix_until: str | None
    transfer_reference: str
    can_cancel: bool  # by the rule in fundraiser.cancel, with a link that may cancel
    can_fix: bool
    allotted: bool
    attempted: bool  # a charge was tried: the goal was met and collection began
    #: How to pay by bank, while the transfer is awaited and the co-op gave an account.
    transfer: Transfer | None = None

    @property
    def tone(self) -> str:
        return TONES[self.stage]


def pledge_view(
    row: Any, campaign: Campaign, *, now: datetime, can_cancel: bool, transfer_reference: str
) -> PledgeView:
    """The view of a pledge's row (payments.events.pledge_row) for its page."""
    status = Status(row.status)
    currency = row.currency
    by_bank = Source(row.source) in BY_HAND
    refunded = int(row.refunded_amount)
    attempted = int(row.attempts or 0) > 0
    tier = campaign.tier(row.tier) if row.tier else None
    where = stage(
        status,
        by_bank=by_bank,
        refunded=refunded,
        closed=now >= campaign.campaign.deadline,
        mode=campaign.campaign.mode,
        attempted=attempted,
    )
    due = Money(max(int(row.amount) - int(row.paid_amount), 0), currency)
    awaited = where is Stage.AWAITING_TRANSFER
    return PledgeView(
        id=row.id,
        stage=where,
        status=status,
        amount=Money(int(row.amount), currency),
        shares=row.shares,
        price=campaign.shares.price,
        tier=tier.name if tier else None,
        created=row.created_at,
        name=row.name,
        display_name=row.display_name,
        by_bank=by_bank,
        paid=Money(int(row.paid_amount), currency),
        refunded=Money(refunded, currency),
        fix_until=row.fix_until,
        transfer_reference=transfer_reference,
        can_cancel=can_cancel,
        can_fix=status is Status.PAYMENT_FAILED,
        allotted=bool(row.allotted_at),
        attempted=attempted,
        transfer=instructions.for_pledge(campaign.bank, row.id, due) if awaited else None,
    )


def paycode(transfer: Transfer | None, title: str) -> Markup | None:
    """The EPC payment QR code as inline SVG, for a transfer a scan can pay."""
    code = epc.for_transfer(transfer) if transfer else None
    return Markup(epc.svg(code, title=title)) if code else None


def site_address(campaign: Campaign, site_origin: str) -> str:
    """The site's address for links and its stylesheet: coop.website when it is on
    SITE_ORIGIN (a site under a path keeps its path), else SITE_ORIGIN itself."""
    website = (campaign.coop.website or "").rstrip("/")
    parts = urlsplit(website)
    if website and f"{parts.scheme}://{parts.netloc}".lower() == site_origin.lower():
        return website
    return site_origin


def theme_dirs(campaign: Campaign) -> list[str]:
    """The template folders, in the site build's order: the co-op's copies, the kit's."""
    own = kit.template_overrides(campaign.directory / kit.OWN_THEME)
    return [*own, str(kit.theme() / "templates")]


class Pages:
    """Renders the private pages for one campaign; templates are loaded once."""

    def __init__(self, campaign: Campaign, site_origin: str) -> None:
        self.campaign = campaign
        self.site = site_address(campaign, site_origin)
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(
                [
                    jinja2.PrefixLoader(
                        {"service": jinja2.PackageLoader("fundraiser.service", "templates")}
                    ),
                    jinja2.FileSystemLoader(theme_dirs(campaign)),
                ]
            ),
            # As the site's settings have it (JINJA_ENVIRONMENT): a person's text is text.
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            # base.html is Pelican's template too: what a build sets and we do not
            # (a canonical address, an article) is simply absent here.
            undefined=jinja2.ChainableUndefined,
        )
        coop = campaign.coop
        #: The campaign's language: the pages' words and how they show money and dates.
        self.language = language = i18n.for_campaign(campaign)
        i18n.install(self.env, language.translations)
        self.env.filters.update(jinja_filters(language.locale, campaign.campaign.timezone))
        self.env.filters["absolute_url"] = lambda relative: f"{self.site}/{relative}"
        share_offer = {
            "slug": "share-offer",
            "title": language.gettext("Share offer"),
            "url": SHARE_OFFER,
        }
        own_static = kit.static_paths(campaign.directory / kit.OWN_THEME)[1:]
        scripts = i18n.script_files([kit.theme() / "static", *map(Path, own_static)])
        self.globals: dict[str, Any] = {
            "SITENAME": coop.name,
            "SITEURL": self.site,
            "HTML_LANG": language.tag,
            "DEFAULT_LANG": language.primary,
            "FUNDRAISER_LOCALE": language.locale,
            "OG_LOCALE": language.og_locale,
            # The words of pledge.js (the fix-card form), as the site's pages carry them.
            "script_messages": i18n.script_messages(language, scripts),
            "UPDATES_SAVE_AS": UPDATES,
            "campaign": campaign,
            # The site's menus are made from its pages at build time; these pages
            # link to those every kit site has. No "Pledge" button: this backer has.
            "menus": {"main": [share_offer], "footer": [share_offer], "pledge": []},
            "coop": coop,
            "deadline": campaign.campaign.deadline,
            "all_or_nothing": campaign.campaign.mode is Mode.ALL_OR_NOTHING,
            "goal": campaign.campaign.goal,
            "bank": campaign.bank,
            "paycode": paycode,
            "pledge_page": f"{self.site}/{PLEDGE_PAGE}",
        }
        self._check()

    def _check(self) -> None:
        """Compile every page and the theme's layout, and make one page, now: a theme
        that cannot make them stops the service's start, not a backer's visit."""
        names = [f"service/{name}" for name in (*PAGES, *PARTS)] + list(LAYOUT)
        try:
            for name in names:
                self.env.get_template(name)
            self.render("message.html", title="Check", message="Check.")
        except jinja2.TemplateError as exc:
            where = getattr(exc, "filename", None) or getattr(exc, "name", None) or "a template"
            line = getattr(exc, "lineno", None)
            raise ThemeError(
                f"the pledge service's private pages cannot be made from the theme "
                f"({Path(str(where)).name}{f', line {line}' if line else ''}: {exc}): fix "
                "that template, or remove your copy of it from theme/templates/"
            ) from None

    def render(
        self, name: str, *, stripe_form: bool = False, member: bool = False, **context: Any
    ) -> str:
        """A page; `stripe_form` when it loads Stripe's card form (the footer says so),
        `member` for a member's own pages (the footer names their sign-in cookie)."""
        # base.html's footer names Stripe on the page whose template is "pledge".
        kind = "member" if member else "pledge" if stripe_form else "private"
        page = {"template": kind, "slug": None}
        return self.env.get_template(f"service/{name}").render(**self.globals, page=page, **context)
