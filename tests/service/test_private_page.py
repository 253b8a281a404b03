"""A backer's private pages, as the service sends them: the site's layout, the pledge in words,
a cancel asked first and confirmed, the link in the "we have your pledge" mail."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fundraiser import kit
from fundraiser.config import Mode, load_campaign
from fundraiser.pledges import Status
from fundraiser.service.app import create_app
from fundraiser.service.pages import Pages, Stage, ThemeError, pledge_view, stage
from fundraiser.service.settings import SettingsError
from tests import stripe_fixtures
from tests.conftest import Cli
from tests.documents.test_mail_truth import only, send, text_of
from tests.payments.test_collect import DECLINE, after, authorized
from tests.service.test_pledges import PLEDGE, confirm, post, save_card
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture
from tests.stripe_fixtures import NOW, TestClient, make_settings

localstripe = stripe_fixtures.localstripe
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env
service = stripe_fixtures.service

SITE = "http://127.0.0.1:9"  # the stripe_env fixture's SITE_ORIGIN
#: Status names a backer must never read (English words like "cancelled" are allowed).
RAW_NAMES = re.compile(r"\b(authorized|payment_failed|pending|processing|unfinished)\b|_")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


class Page(HTMLParser):
    """A page's visible text (no attributes, scripts or styles) and its tags."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.words: list[str] = []
        self.main_words: list[str] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._skip = 0
        self._in_main = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("script", "style", "title"):
            self._skip += 1
        self._in_main = self._in_main or tag == "main"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title"):
            self._skip -= 1
        if tag == "main":
            self._in_main = False

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.words.append(data)
            if self._in_main:
                self.main_words.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.words).split())

    @property
    def main(self) -> str:
        """The page's own words (the footer's "registration pending" is the site's)."""
        return " ".join(" ".join(self.main_words).split())

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]


def token_of(body: dict[str, Any]) -> str:
    return str(body["manage_url"]).rsplit("/", 1)[1]


def saved_pledge(service: TestClient, env: dict[str, str], **fields: str) -> dict[str, Any]:
    body = post(service, {**PLEDGE, **fields}).json()
    save_card(env, body["client_secret"])
    assert confirm(service, body).json()["secured"]
    return dict(body)


# -- the layout: the site's header, footer, stylesheet ---------------------------------------


def test_the_private_page_is_in_the_sites_layout_with_its_stylesheet(
    service: TestClient, stripe_env: dict[str, str]
) -> None:
    body = saved_pledge(service, stripe_env)
    answer = service.get(f"/manage/{token_of(body)}")
    assert answer.status_code == 200
    page = Page(answer.text)
    # The site's own stylesheet and its header, footer and name, all from SITE_ORIGIN.
    sheets = [a["href"] for a in page.find("link", rel="stylesheet")]
    assert sheets == [f"{SITE}/theme/css/site.css", f"{SITE}/theme/css/private.css"]
    assert page.find("header", **{"class": "site-header"})
    assert page.find("footer", **{"class": "site-footer"})
    home = page.find("a", href=f"{SITE}/index.html")
    assert home and home[0]["class"] == "site-name"
    assert page.find("html", lang="en-GB")
    assert page.find("meta", name="robots", content="noindex, nofollow")
    text = page.text
    assert "Hearth Social Co-operative, a co-operative society in England and Wales" in text
    # The content security policy lets the site's stylesheet in, and nothing else outside.
    csp = answer.headers["content-security-policy"]
    assert f"style-src 'self' {SITE};" in csp and "unsafe-inline" not in csp
    assert answer.headers["cache-control"] == "no-store"


def test_the_page_says_where_the_pledge_stands_in_words_and_the_campaigns_locale(
    service: TestClient, stripe_env: dict[str, str]
) -> None:
    body = saved_pledge(service, stripe_env, display_name="Ada L.")
    text = Page(service.get(f"/manage/{token_of(body)}").text).text
    said = "Your card is saved. It will be charged £200.00 on 28 February 2027 if the goal is met."
    assert said in text
    assert "If the goal of £100 is not met, nothing is charged and your card is released." in text
    assert "£200.00 (4 shares at £50.00)" in text and "Good neighbour" in text
    assert "Thanked by name as “Ada L.”" in text
    assert "You can cancel this pledge until 28 February 2027, 18:00 GMT." in text
    assert f"Pledge number {body['pledge_id']}, made on 10 December 2026." in text
    main = Page(service.get(f"/manage/{token_of(body)}").text).main
    assert not RAW_NAMES.search(main), RAW_NAMES.search(main)
    assert not ISO_DATE.search(main)


def test_an_unfinished_card_form_says_nothing_is_charged(service: TestClient) -> None:
    body = post(service, PLEDGE).json()
    page = Page(service.get(f"/manage/{token_of(body)}").text)
    assert "Your card is not saved yet" in page.text
    assert "this pledge is not complete and nothing has been charged" in page.text
    assert page.find("a", href=f"{SITE}/pledge.html")  # "pledge again"
    assert not RAW_NAMES.search(page.main)


# -- every status, in words ---------------------------------------------------------------------


def row(status: Status, **changes: Any) -> SimpleNamespace:
    """A pledge's row as the ledger has it (payments.events.pledge_row's columns)."""
    values: dict[str, Any] = {
        "id": 7,
        "status": status.value,
        "currency": "GBP",
        "source": "online",
        "amount": 20000,
        "refunded_amount": 0,
        "paid_amount": 20000 if status in (Status.PAID, Status.REFUNDED, Status.DISPUTED) else 0,
        "tier": "neighbour",
        "shares": 4,
        "created_at": "2026-12-10T12:00:00+00:00",
        "name": "Ada <b>Lovelace</b>",
        "display_name": None,
        "fix_until": "2027-03-08T09:00:00+00:00" if status is Status.PAYMENT_FAILED else None,
        "allotted_at": None,
        "attempts": 0,
    }
    values.update(changes)
    return SimpleNamespace(**values)


#: The sentence each status (with its circumstances) must show, as the backer reads it.
SAYS: list[tuple[Status, dict[str, Any], str]] = [
    (Status.PENDING, {}, "We do not have your card details, so this pledge is not complete"),
    (
        Status.PENDING,
        {"source": "offline"},
        "Please send £200.00 by bank transfer with the reference below, so that we can "
        "match it to your pledge.",
    ),
    (
        Status.AUTHORIZED,
        {},
        "Your card is saved. It will be charged £200.00 on 28 February 2027 if the goal is met.",
    ),
    (Status.AUTHORIZED, {"attempts": 1}, "Your card is saved and will be charged £200.00 shortly."),
    (Status.PROCESSING, {}, "We are taking your payment of £200.00."),
    (Status.PAID, {}, "We have received your payment of £200.00."),
    (Status.PAID, {"allotted_at": "2027-03-02"}, "Your shares have been issued"),
    (
        Status.PAID,
        {"refunded_amount": 5000},
        "We have received your payment of £200.00 and have refunded £50.00 of it.",
    ),
    (
        Status.PAYMENT_FAILED,
        {},
        "Enter a card below by 8 March 2027 to keep your pledge; after that it lapses.",
    ),
    (Status.FAILED, {}, "We could not take the payment for this pledge, so it has lapsed."),
    (Status.CANCELLED, {}, "Nothing has been charged for it, and nothing will be."),
    (Status.CANCELLED, {"source": "import"}, "Please do not send money for it."),
    (Status.RELEASED, {}, "The campaign closed without reaching its goal"),
    (Status.REFUNDED, {}, "Your payment of £200.00 has been refunded in full."),
    (Status.DISPUTED, {}, "Your bank has told us that you dispute the payment of £200.00."),
]


@pytest.mark.parametrize(("status", "changes", "sentence"), SAYS)
def test_every_status_reads_as_a_sentence_with_no_state_name(
    status: Status, changes: dict[str, Any], sentence: str
) -> None:
    campaign = load_campaign(Path(kit.example_campaign()))
    pages = Pages(campaign, SITE)
    view = pledge_view(
        row(status, **changes),
        campaign,
        now=NOW,
        can_cancel=status in (Status.PENDING, Status.AUTHORIZED),
        transfer_reference="PLEDGE-7",
    )
    html = pages.render("manage.html", title="Your pledge", p=view, token="t", closed=False)
    page = Page(html)
    assert sentence in page.text, page.text
    assert not RAW_NAMES.search(page.main), RAW_NAMES.search(page.main)
    assert not ISO_DATE.search(page.main)
    assert "Ada <b>Lovelace</b>" in page.text and not page.find("b")  # a name stays text
    assert page.find("h2", id="pledge-status")  # the one place the state is named


def test_every_status_has_a_stage() -> None:
    for status in Status:
        for by_bank in (False, True):
            for closed in (False, True):
                for mode in Mode:
                    assert isinstance(
                        stage(status, by_bank=by_bank, refunded=0, closed=closed, mode=mode), Stage
                    )
    assert {s for _, _, s in SAYS} and len({(s, str(c)) for s, c, _ in SAYS}) == len(SAYS)
    assert {st for st, _, _ in SAYS} == set(Status)


# -- cancelling: asked first, works without a script, confirmed --------------------------------


def test_cancel_is_asked_first_then_done_by_a_form_and_confirmed(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, smtp_server: SmtpServer
) -> None:
    body = saved_pledge(service, stripe_env, email="second-thoughts@example.org")
    token = token_of(body)
    manage = Page(service.get(f"/manage/{token}").text)
    # One link, not a button that acts: the page itself changes nothing.
    assert manage.find("a", href=f"/manage/{token}/cancel")
    assert not manage.find("form", method="post")

    ask = service.get(f"/manage/{token}/cancel")
    assert ask.status_code == 200
    page = Page(ask.text)
    assert "Cancel this pledge?" in page.text
    assert "Cancel your pledge of £200.00 (4 shares) to Hearth Social Co-operative?" in page.text
    assert "you can pledge again until 28 February 2027" in page.text
    [form] = page.find("form", method="post")
    assert form["action"] == f"/manage/{token}/cancel"
    assert page.find("a", href=f"/manage/{token}")  # "No, keep my pledge"
    assert service.get(f"/api/manage/{token}").json()["status"] == "authorized"  # asking is free

    done = service.post(f"/manage/{token}/cancel", follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/manage/{token}/cancelled"
    shown = Page(service.get(done.headers["location"]).text).text
    assert "Your pledge is cancelled" in shown
    assert (
        f"Your pledge of £200.00 to Hearth Social Co-operative (pledge number "
        f"{body['pledge_id']}) is cancelled." in shown
    )
    assert "We are sending you an email to confirm it." in shown
    assert service.get(f"/api/manage/{token}").json()["status"] == "cancelled"
    # The manage page says so, and offers no cancel any more.
    after_page = Page(service.get(f"/manage/{token}").text)
    assert "This pledge is cancelled" in after_page.text
    assert not after_page.find("a", href=f"/manage/{token}/cancel")
    # A second POST (a reload of the form) cancels nothing twice and says why.
    again = service.post(f"/manage/{token}/cancel", follow_redirects=False)
    assert again.status_code == 409
    assert "This pledge cannot be cancelled" in Page(again.text).text
    # And the mail that confirms it.
    send(sqlite_cli, smtp_server)
    msg = only(smtp_server, "second-thoughts@example.org")
    assert msg["Subject"] == "Your pledge to Hearth Social Co-operative is cancelled (£200.00)"
    assert "Nothing has been charged for it, and nothing will be." in text_of(msg)


def test_the_cancelled_page_of_a_pledge_not_cancelled_goes_back_to_the_pledge(
    service: TestClient, stripe_env: dict[str, str]
) -> None:
    token = token_of(saved_pledge(service, stripe_env))
    answer = service.get(f"/manage/{token}/cancelled", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == f"/manage/{token}"


def test_a_pledge_that_cannot_be_cancelled_says_why_and_offers_no_button(
    service: TestClient, stripe_env: dict[str, str]
) -> None:
    body = saved_pledge(service, stripe_env)
    token = token_of(body)
    assert service.post(f"/manage/{token}/cancel").status_code == 200  # cancelled
    ask = Page(service.get(f"/manage/{token}/cancel").text)
    assert "This pledge can no longer be cancelled." in ask.main
    assert "This pledge is cancelled" in ask.main
    assert not ask.find("form", method="post")


def test_after_the_deadline_the_link_has_expired_and_cancels_nothing(
    small_goal: Path, campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]
) -> None:
    from datetime import datetime

    from tests.stripe_fixtures import AFTER_DEADLINE

    early = make_settings(campaign_dir, sqlite_url, stripe_env)
    with TestClient(create_app(early)) as before:
        token = token_of(saved_pledge(before, stripe_env))
    late = make_settings(
        campaign_dir, sqlite_url, stripe_env, now=datetime.fromisoformat(AFTER_DEADLINE)
    )
    with TestClient(create_app(late)) as client:
        ask = client.get(f"/manage/{token}/cancel")
        assert ask.status_code == 403
        assert "This link has expired" in Page(ask.text).main
        refused = client.post(f"/manage/{token}/cancel", follow_redirects=False)
        assert refused.status_code == 403
    with TestClient(create_app(early)) as before:
        assert before.get(f"/api/manage/{token}").json()["status"] == "authorized"


def test_a_fix_link_cannot_cancel_and_bad_links_say_what_to_do(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli
) -> None:
    [pid] = authorized(service, stripe_env, [DECLINE])
    sqlite_cli.ok("collect", env=after(stripe_env))
    from tests.journeys.test_pledge_browser import fix_link

    fix_token = fix_link(sqlite_cli.db_url, pid).rsplit("/", 1)[1]
    page = Page(service.get(f"/manage/{fix_token}").text)
    assert "Action needed: your payment did not go through" in page.text
    assert not page.find("a", href=f"/manage/{fix_token}/cancel")
    refused = service.get(f"/manage/{fix_token}/cancel")
    assert refused.status_code == 403
    assert "This link cannot do that" in Page(refused.text).text
    broken = service.get(f"/manage/{fix_token[:-3]}")
    assert broken.status_code == 403
    text = Page(broken.text).text
    assert "This link does not work" in text and "opened the whole link" in text
    assert "Write to us at members@hearth.example" in text


# -- the fix-your-card form as sent, before any script runs ----------------------------------


def test_the_fix_form_is_sent_disabled_with_what_to_do_if_it_never_loads(
    small_goal: Path,
    campaign_dir: Path,
    sqlite_url: str,
    stripe_env: dict[str, str],
    sqlite_cli: Cli,
) -> None:
    js = "http://127.0.0.1:8420/js.stripe.com/v3/"
    settings = make_settings(campaign_dir, sqlite_url, {**stripe_env, "STRIPE_JS_URL": js})
    with TestClient(create_app(settings)) as client:
        [pid] = authorized(client, stripe_env, [DECLINE])
        sqlite_cli.ok("collect", env=after(stripe_env))
        from tests.journeys.test_pledge_browser import fix_link

        answer = client.get(f"/manage/{fix_link(sqlite_url, pid).rsplit('/', 1)[1]}")
    page = Page(answer.text)
    [button] = page.find("button", type="submit")
    assert "disabled" in button
    assert "The card form is loading. If it does not appear, reload this page" in page.text
    scripts = [a["src"] for a in page.find("script")]
    assert scripts == [js, f"{SITE}/theme/js/pledge.js"]  # the site build's Stripe.js
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self' http://127.0.0.1:9 http://127.0.0.1:8420;" in csp
    # The footer says the page carries Stripe's form, as the pledge page's does.
    assert "except Stripe\u2019s card form on this page" in page.text


def test_stripe_js_must_be_https_or_a_local_emulator(
    campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]
) -> None:
    with pytest.raises(SettingsError) as caught:
        make_settings(
            campaign_dir, sqlite_url, {**stripe_env, "STRIPE_JS_URL": "http://cdn.example/v3/"}
        )
    assert "STRIPE_JS_URL" in str(caught.value.problems)
    real = make_settings(campaign_dir, sqlite_url, stripe_env)
    assert real.stripe_js == "https://js.stripe.com/v3/"


# -- a co-op's own theme reaches these pages; a broken one stops the start --------------------


def test_a_coops_own_base_template_is_the_private_pages_layout_too(
    small_goal: Path, campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]
) -> None:
    own = campaign_dir / "theme" / "templates"
    own.mkdir(parents=True)
    base = (kit.theme() / "templates" / "base.html").read_text(encoding="utf-8")
    (own / "base.html").write_text(
        base.replace("<body>", '<body><p class="banner">Our own banner</p>'), encoding="utf-8"
    )
    settings = make_settings(campaign_dir, sqlite_url, stripe_env)
    with TestClient(create_app(settings)) as client:
        token = token_of(post(client, PLEDGE).json())
        assert "Our own banner" in Page(client.get(f"/manage/{token}").text).text


def test_a_theme_that_cannot_make_the_private_pages_stops_the_start_and_names_it(
    campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]
) -> None:
    own = campaign_dir / "theme" / "templates"
    own.mkdir(parents=True)
    shutil.copy(kit.theme() / "templates" / "private.html", own / "private.html")
    text = (own / "private.html").read_text(encoding="utf-8")
    (own / "private.html").write_text(text.replace("{{ title }}", "{{ title|nosuch }}"))
    settings = make_settings(campaign_dir, sqlite_url, stripe_env)
    with pytest.raises(ThemeError) as caught:
        create_app(settings)
    message = str(caught.value)
    assert "private.html" in message and "nosuch" in message
    assert "remove your copy of it from theme/templates/" in message


# -- the link reaches the backer ---------------------------------------------------------------


def test_the_we_have_your_pledge_mail_carries_the_private_link(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, smtp_server: SmtpServer
) -> None:
    body = saved_pledge(service, stripe_env, email="keeps-links@example.org")
    send(sqlite_cli, smtp_server)
    msg = only(smtp_server, "keeps-links@example.org")
    text = text_of(msg)
    assert (
        "Your private page for this pledge shows where it stands, and lets you cancel it until "
        "28 February 2027. Keep this link to yourself:" in text
    ), text
    assert body["manage_url"] in text
    html = msg.get_body(("html",)).get_content()
    assert f'href="{body["manage_url"]}"' in html
    # The link opens the page, which names the pledge.
    page = service.get("/manage/" + token_of(body))
    assert f"Pledge number {body['pledge_id']}" in Page(page.text).text


def test_an_offline_pledge_is_told_to_reply_and_gets_no_link(
    sqlite_cli: Cli, smtp_server: SmtpServer
) -> None:
    sqlite_cli.ok(
        "pledges", "add", "--name", "Grace Hopper", "--email", "grace@example.org",
        "--address", "9 Navy Yard", "--amount", "500.00", "--round", "seed",
        "--notify", env={"FUNDRAISER_NOW": "2026-10-01T12:00:00+00:00"},
    )  # fmt: skip
    send(sqlite_cli, smtp_server, now="2026-10-01T12:00:00+00:00")
    text = text_of(only(smtp_server, "grace@example.org"))
    assert "To change or cancel your pledge, reply to this email." in text
    assert "/manage/" not in text
