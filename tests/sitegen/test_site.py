"""The launch site: real Pelican builds into temporary folders, read back as a visitor would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from fundraiser.ledger import open_ledger
from fundraiser.money import Money
from fundraiser.pledges import Status
from fundraiser.sitegen.data import JSON_KEYS
from fundraiser.sitegen.shareimage import ACCENT
from tests.sitehelpers import (
    ROOT,
    Backer,
    Element,
    add_pledges,
    build,
    copy_campaign,
    copy_content,
    internal_target,
    parse_html,
    run_cli,
    settings_for,
    sqlite_url,
)

PRICE = Money(5000, "GBP")
STRIPE_JS = "http://127.0.0.1:8420/js.stripe.com/v3/"
PLEDGE_API = "http://127.0.0.1:8421"
SCRIPT_NAME = "<script>alert(1)</script>"


def person(n: int) -> tuple[str, str, str]:
    """A legal name, email and address that appear nowhere else: privacy markers."""
    return (f"Legalname Qx7v{n}", f"marker-qx7v{n}@example.org", f"{n} Addressline Qx7v")


def backer(n: int, shares: int, at: str, **kwargs: object) -> Backer:
    name, email, address = person(n)
    return Backer(name, email, address, shares, at, **kwargs)  # type: ignore[arg-type]


BACKERS = [
    backer(1, 1, "2026-09-02T10:00:00+00:00", tier="member", display_name="Ada from Leeds"),
    # 23:30 UTC is 00:30 the next day in London (BST): counted on 3 September.
    backer(2, 4, "2026-09-02T23:30:00+00:00", tier="neighbour", status=Status.PENDING),
    backer(3, 20, "2026-10-01T08:00:00+00:00", tier="founder", display_name=SCRIPT_NAME),
    backer(4, 200, "2026-10-01T09:00:00+00:00", tier="cornerstone", display_name="  "),
    backer(5, 7, "2026-11-20T12:00:00+00:00", display_name="Zed & Co"),
    # Cancelled: counts nowhere, and its public name is not shown.
    backer(6, 10, "2026-11-20T12:30:00+00:00", status=Status.CANCELLED, display_name="Gone Away"),
    # Backer 1 again (same email): a second pledge, still one backer.
    Backer(*person(1), shares=2, at="2026-11-20T13:00:00+00:00"),
]
LIVE_SHARES = 1 + 4 + 20 + 200 + 7 + 2
PAGES = [
    "index.html",
    "manifesto.html",
    "roadmap.html",
    "bylaws.html",
    "share-offer.html",
    "privacy.html",
    "faq.html",
    "pledge.html",
    "transparency.html",
    "updates/index.html",
]


@dataclass(frozen=True)
class Site:
    folder: Path
    campaign: Path
    db_url: str
    output: Path
    build_output: str

    def page(self, name: str) -> Element:
        return parse_html(self.output / name)

    def html_files(self) -> list[Path]:
        return sorted(self.output.rglob("*.html"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    folder = tmp_path_factory.mktemp("site")
    campaign = copy_campaign(folder)
    url = sqlite_url(folder)
    add_pledges(url, BACKERS, PRICE)
    output = folder / "out"
    env = {
        "STRIPE_JS_URL": STRIPE_JS,
        "PLEDGE_API": PLEDGE_API,
        "STRIPE_PUBLISHABLE_KEY": "pk_test_123",
    }
    result = build(campaign, url, output, env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return Site(folder, campaign, url, output, result.output)


def test_build_reports_what_it_did(site: Site) -> None:
    assert "Built" in site.build_output
    assert "£11,700.00 of £250,000.00 pledged, 5 backers" in site.build_output


def test_every_page_exists(site: Site) -> None:
    for name in PAGES:
        assert (site.output / name).is_file(), name
    updates = [p for p in (site.output / "updates").glob("*.html") if p.name != "index.html"]
    assert len(updates) >= 2
    for name in ("feeds/updates.atom.xml", "sitemap.xml", "campaign.json", "theme/css/site.css"):
        assert (site.output / name).is_file(), name


def test_every_internal_link_and_asset_resolves(site: Site) -> None:
    broken = []
    for page in site.html_files():
        tree = parse_html(page)
        ids = {e.attrs["id"] for e in tree.iter() if "id" in e.attrs}
        for element in tree.iter():
            for attr in ("href", "src"):
                url = element.attrs.get(attr)
                if url is None:
                    continue
                if url.startswith("#"):
                    if url[1:] not in ids:
                        broken.append(f"{page.name}: {url}")
                    continue
                target = internal_target(page, url, site.output)
                if target is not None and not target.is_file():
                    broken.append(f"{page.relative_to(site.output)}: {url}")
    assert not broken


def test_no_third_party_resources_and_stripe_only_on_the_payment_pages(site: Site) -> None:
    for page in site.html_files():
        tree = parse_html(page)
        outside = [
            e.attrs.get("src") or e.attrs.get("href")
            for e in tree.iter()
            if e.tag in ("script", "img", "iframe")
            or (e.tag == "link" and e.attrs.get("rel") in ("stylesheet", "icon", "preload"))
            if internal_target(page, e.attrs.get("src") or e.attrs.get("href") or "", site.output)
            is None
            and (e.attrs.get("src") or e.attrs.get("href"))
        ]
        expected = [STRIPE_JS] if page.name in ("pledge.html", "join.html") else []
        assert outside == expected, page
    css = (site.output / "theme/css/site.css").read_text()
    assert "http" not in css and "@import" not in css


def test_skip_link_landmarks_and_language(site: Site) -> None:
    for name in PAGES:
        tree = site.page(name)
        html = tree.find("html")
        assert html is not None and html.attrs.get("lang") == "en-GB"
        skip = tree.find("a", class_="skip-link")
        assert skip is not None and skip.attrs["href"] == "#main"
        assert tree.by_id("main") is not None and tree.find("main") is not None
        assert len(tree.find_all("h1")) == 1, name


def test_home_figures_match_the_ledger(site: Site) -> None:
    home = site.page("index.html")
    pledged = home.find(data_figure="pledged")
    assert pledged is not None
    assert pledged.attrs["data-money"] == str(LIVE_SHARES * PRICE.amount)
    assert pledged.text == "£11,700"
    goal = home.find(data_figure="goal")
    assert goal is not None and goal.text == "£250,000"
    backers = home.find(data_figure="backers")
    assert backers is not None and backers.text == "5"
    percent = home.find(data_figure="percent")
    assert percent is not None and percent.text == str(LIVE_SHARES * 5000 * 100 // 25_000_000)
    days = home.find(data_figure="days_left")
    assert days is not None and days.text == "94"  # 93 days and 6 hours to the deadline
    founder = home.find(data_tier_left="founder")
    assert founder is not None and founder.text == "999 of 1,000 left"
    cornerstone = home.find(data_tier_left="cornerstone")
    assert cornerstone is not None and cornerstone.text == "49 of 50 left"
    progress = home.find("progress")
    assert progress is not None and progress.attrs["value"] == "4"


def test_campaign_json_holds_aggregates_only(site: Site) -> None:
    data = json.loads((site.output / "campaign.json").read_text())
    assert set(data) == JSON_KEYS
    assert data["pledged"] == LIVE_SHARES * PRICE.amount
    assert data["backers"] == 5
    assert data["tiers_left"] == {
        "member": None,
        "neighbour": None,
        "founder": 999,
        "cornerstone": 49,
    }
    assert data["generated_at"] == "2026-11-27T12:00:00+00:00"
    for tier in data["tiers"]:
        assert set(tier) == {"id", "name", "shares", "price", "limit", "taken", "left"}


def test_pledge_form_is_complete_and_every_field_is_labelled(site: Site) -> None:
    page = site.page("pledge.html")
    form = page.by_id("pledge-form")
    assert form is not None
    assert form.attrs["data-api"] == PLEDGE_API
    assert form.attrs["data-stripe-js"] == STRIPE_JS
    assert form.attrs["data-mode"] == "all-or-nothing"
    assert form.attrs["data-currency"] == "GBP"
    assert form.attrs["data-stripe-key"] == "pk_test_123"
    assert form.attrs["method"] == "post"  # never GET: details must not end up in a URL

    radios = form.find_all("input", name="tier")
    assert {r.attrs["value"] for r in radios} == {
        "member",
        "neighbour",
        "founder",
        "cornerstone",
        "custom",
    }
    assert all(r.attrs["type"] == "radio" for r in radios)
    shares = form.find("input", name="shares")
    assert shares is not None and shares.attrs["type"] == "number"
    assert (shares.attrs["min"], shares.attrs["max"]) == ("1", "200")
    for name in ("name", "email", "display_name"):
        assert form.find("input", name=name) is not None, name
    assert form.find("textarea", name="address") is not None
    consent = form.find("input", name="consent")
    assert consent is not None and consent.attrs["type"] == "checkbox"

    labels = {e.attrs["for"] for e in form.find_all("label") if "for" in e.attrs}
    unlabelled = [
        e.attrs.get("name")
        for e in form.iter()
        if e.tag in ("input", "textarea", "select")
        and e.attrs.get("type") not in ("hidden", "submit")
        and e.attrs.get("id") not in labels
        and "aria-label" not in e.attrs
        and not any(a.tag == "label" for a in e.ancestors())
    ]
    assert not unlabelled

    card = page.by_id("card-element")
    assert card is not None and card.tag == "div" and not card.children and not card.text
    assert form.find("button", type="submit") is not None
    status = page.by_id("pledge-status")
    assert status is not None and status.attrs.get("role") == "status"
    assert status.attrs.get("aria-live") == "polite"
    thanks = page.by_id("pledge-thanks")
    assert thanks is not None and "hidden" in thanks.attrs

    consent_label = form.find("label", for_="consent")
    assert consent_label is not None
    assert "card is saved now and charged only if the goal" in consent_label.text
    public = page.by_id("display-name-hint")
    assert public is not None and "Optional and public" in public.text


def test_pledge_page_without_javascript_explains_and_gives_the_contact(site: Site) -> None:
    page = site.page("pledge.html")
    noscripts = page.find_all("noscript")
    texts = " ".join(n.text for n in noscripts)
    assert "need JavaScript" in texts
    assert "members@hearth.example" in texts
    assert "bank transfer" in texts
    # The form is hidden by a stylesheet that loads only without JavaScript.
    head_noscript = [n for n in noscripts if n.find("link") is not None]
    assert head_noscript and head_noscript[0].find("link").attrs["href"].endswith(  # type: ignore[union-attr]
        "noscript.css"
    )
    assert "needs-js" in page.by_id("pledge-form").attrs["class"]  # type: ignore[union-attr]
    pledge_js = page.find("script", src="./theme/js/pledge.js")
    assert pledge_js is not None and "defer" in pledge_js.attrs


def test_transparency_page_charts_tables_names_and_hash(site: Site) -> None:
    page = site.page("transparency.html")
    charts = page.find_all("svg")
    assert len(charts) == 2
    for chart in charts:
        assert chart.attrs["role"] == "img"
        title = chart.find("title")
        assert title is not None and title.text
        labelled = chart.attrs["aria-labelledby"].split()
        assert title.attrs["id"] in labelled
    tables = page.find_all("table")
    assert len(tables) == 3  # rounds, per day, pledge sizes
    days = {
        row.find("th").text: row.find_all("td")[0].text  # type: ignore[union-attr]
        for row in tables[1].find_all("tr")
        if row.find("td") is not None
    }
    assert days == {
        "2 September 2026": "£50.00",
        "3 September 2026": "£200.00",
        "1 October 2026": "£11,000.00",
        "20 November 2026": "£450.00",
    }
    seed = [r for r in tables[0].find_all("tr") if r.find("th") and "Seed" in r.text]
    assert seed and "£11,700.00" in seed[0].text

    names = page.find("ul", class_="names")
    assert names is not None
    assert [li.text for li in names.find_all("li")] == [SCRIPT_NAME, "Ada from Leeds", "Zed & Co"]
    raw = (site.output / "transparency.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    assert "Zed &amp; Co" in raw
    assert "Gone Away" not in raw

    ledger = open_ledger(site.db_url)
    try:
        entries, head = ledger.head()
    finally:
        ledger.dispose()
    hash_text = page.find("p", class_="hash")
    assert hash_text is not None and hash_text.text == head
    assert f"had {entries} entries" in " ".join(page.text.split())
    assert "fundraiser ledger verify" in page.text


def test_no_personal_details_anywhere_in_the_built_site(site: Site) -> None:
    markers = [m.encode() for n in range(1, 7) for m in person(n)]
    markers += [b"Qx7v", b"sk_test", b"sk_live"]
    leaks = []
    files = [p for p in site.output.rglob("*") if p.is_file()]
    assert len(files) > 15
    for path in files:
        data = path.read_bytes()
        leaks += [f"{path.relative_to(site.output)}: {m!r}" for m in markers if m in data]
        if SCRIPT_NAME.encode() in data:
            leaks.append(f"{path.relative_to(site.output)}: unescaped display name")
    assert not leaks


def test_share_offer_terms_come_from_campaign_toml(site: Site) -> None:
    page = site.page("share-offer.html")
    terms = page.find("dl", class_="terms-list")
    assert terms is not None
    text = terms.text
    for expected in (
        "£50.00",
        "1 share (£50.00)",
        "200 shares (£10,000.00)",
        "£250,000.00",
        "£400,000.00",
        "28 February 2027, 18:00 GMT",
        "No card is charged",
    ):
        assert expected in text, expected
    assert "You could lose some or all of your money" in page.text


def test_atom_feed_parses_with_entries(site: Site) -> None:
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.parse(site.output / "feeds/updates.atom.xml").getroot()
    entries = root.findall("a:entry", ns)
    assert len(entries) >= 2
    for entry in entries:
        assert entry.findtext("a:title", namespaces=ns)
        link = entry.find("a:link", ns)
        assert link is not None and link.attrib["href"].endswith(".html")
        author = entry.findtext("a:author/a:name", namespaces=ns)
        assert author == "Hearth Social Co-operative"


def test_sitemap_lists_every_public_page_with_full_addresses(site: Site) -> None:
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    root = ET.parse(site.output / "sitemap.xml").getroot()
    locs = [e.text or "" for e in root.findall("s:url/s:loc", ns)]
    assert "https://hearth.example/" in locs
    assert "https://hearth.example/updates/" in locs
    assert "https://hearth.example/pledge.html" in locs
    assert all(loc.startswith("https://hearth.example/") for loc in locs)
    assert len(locs) == len(set(locs)) == len(site.html_files())


def test_canonical_and_open_graph_tags(site: Site) -> None:
    page = site.page("manifesto.html")
    canonical = page.find("link", rel="canonical")
    assert (
        canonical is not None and canonical.attrs["href"] == "https://hearth.example/manifesto.html"
    )
    og = {
        e.attrs["property"]: e.attrs["content"]
        for e in page.find_all("meta")
        if "property" in e.attrs
    }
    assert og["og:url"] == "https://hearth.example/manifesto.html"
    assert og["og:title"].startswith("Manifesto")
    assert og["og:site_name"] == "Hearth Social Co-operative"
    assert og["og:description"]
    update = next(p for p in (site.output / "updates").glob("*.html") if p.name != "index.html")
    og = {
        e.attrs["property"]: e.attrs["content"]
        for e in parse_html(update).find_all("meta")
        if "property" in e.attrs
    }
    assert og["og:type"] == "article"


def bar_filled(path: Path) -> float:
    """How much of the share image's progress bar is filled in the site's green."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
        row = [rgb.getpixel((x, 376)) for x in range(72, 1128)]  # the bar's middle
    return sum(1 for pixel in row if pixel == ACCENT) / len(row)


def test_the_share_image_shows_the_figures_and_every_page_points_to_it(site: Site) -> None:
    from PIL import Image

    with Image.open(site.output / "share.png") as image:
        assert image.format == "PNG" and image.size == (1200, 630)
        # What `site figures` needs to draw it again: all public already.
        assert image.text["fundraiser:name"] == "Hearth Social Co-operative"
        assert image.text["fundraiser:locale"] == "en_GB"
    pledged = LIVE_SHARES * PRICE.amount
    assert bar_filled(site.output / "share.png") == pytest.approx(pledged / 25_000_000, abs=0.01)
    for name in PAGES:
        head = site.page(name).find("head")
        assert head is not None
        meta = {
            e.attrs.get("property") or e.attrs.get("name"): e.attrs.get("content")
            for e in head.find_all("meta")
        }
        assert meta["og:image"] == "https://hearth.example/share.png", name
        assert (meta["og:image:width"], meta["og:image:height"]) == ("1200", "630")
        assert meta["og:image:alt"] and meta["twitter:image:alt"]
        assert meta["twitter:card"] == "summary_large_image"
        assert meta["twitter:image"] == "https://hearth.example/share.png"
        assert meta["twitter:title"] == meta["og:title"]


def test_figures_refresh_rewrites_only_campaign_json_and_the_share_image(site: Site) -> None:
    index_before = (site.output / "index.html").read_bytes()
    share_before = (site.output / "share.png").read_bytes()
    filled_before = bar_filled(site.output / "share.png")
    add_pledges(site.db_url, [backer(7, 3, "2026-11-27T11:00:00+00:00")], PRICE)
    result = run_cli(site.campaign, site.db_url, "site", "figures", "--output", str(site.output))
    assert result.exit_code == 0, result.output
    assert "£11,850.00 of £250,000.00 pledged, 6 backers" in result.output
    data = json.loads((site.output / "campaign.json").read_text())
    assert set(data) == JSON_KEYS
    assert data["pledged"] == (LIVE_SHARES + 3) * PRICE.amount
    assert data["backers"] == 6
    assert b"Qx7v" not in (site.output / "campaign.json").read_bytes()
    assert (site.output / "index.html").read_bytes() == index_before
    # The share image is drawn again with the new total: its bar is longer.
    assert (site.output / "share.png").read_bytes() != share_before
    assert bar_filled(site.output / "share.png") > filled_before
    assert b"Qx7v" not in (site.output / "share.png").read_bytes()
    # Nothing new since: a second refresh leaves the image as it is.
    share_now = (site.output / "share.png").read_bytes()
    again = run_cli(site.campaign, site.db_url, "site", "figures", "--output", str(site.output))
    assert again.exit_code == 0, again.output
    assert (site.output / "share.png").read_bytes() == share_now


def test_figures_refresh_needs_a_built_site(tmp_path: Path) -> None:
    campaign = copy_campaign(tmp_path)
    result = run_cli(
        campaign, sqlite_url(tmp_path), "site", "figures", "--output", str(tmp_path / "nowhere")
    )
    assert result.exit_code == 1
    assert "run `fundraiser site build` first" in result.output
    assert "Traceback" not in result.output


# -- Other builds: other settings, bad data ---------------------------------------------


def test_keep_it_all_consent_says_the_card_is_charged_now(tmp_path: Path) -> None:
    campaign = copy_campaign(
        tmp_path, replace=[('mode = "all-or-nothing"', 'mode = "keep-it-all"')]
    )
    result = build(campaign, sqlite_url(tmp_path), tmp_path / "out")
    assert result.exit_code == 0, result.output
    page = parse_html(tmp_path / "out" / "pledge.html")
    form = page.by_id("pledge-form")
    assert form is not None and form.attrs["data-mode"] == "keep-it-all"
    label = form.find("label", for_="consent")
    assert label is not None and "my card is charged now" in label.text
    assert "saved now" not in label.text
    summary = form.find("section", class_="pledge-summary")
    assert summary is not None and "Your card is charged now" in summary.text
    assert "saved now" not in summary.text and "cancel" not in summary.text
    # An empty ledger is zero figures, not an error.
    home = parse_html(tmp_path / "out" / "index.html")
    assert home.find(data_figure="pledged").text == "£0"  # type: ignore[union-attr]


def test_publish_build_uses_absolute_addresses_and_leaves_drafts_out(tmp_path: Path) -> None:
    campaign = copy_campaign(tmp_path)
    output = tmp_path / "public"
    env = {"SITEURL": "https://www.hearth.example"}
    result = build(campaign, sqlite_url(tmp_path), output, "--publish", env=env)
    assert result.exit_code == 0, result.output
    page = parse_html(output / "roadmap.html")
    canonical = page.find("link", rel="canonical")
    assert canonical is not None
    assert canonical.attrs["href"] == "https://www.hearth.example/roadmap.html"
    css = page.find("link", rel="stylesheet")
    assert css is not None and css.attrs["href"] == "https://www.hearth.example/theme/css/site.css"
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = ET.parse(output / "feeds/updates.atom.xml").getroot()
    links = [e.attrib["href"] for e in feed.iter("{http://www.w3.org/2005/Atom}link")]
    assert links and all(link.startswith("https://www.hearth.example/") for link in links)
    assert feed.find("a:entry", ns) is not None
    assert not (output / "drafts").exists()

    # Publishing empties the output folder first, so it refuses one that is not a site.
    other = tmp_path / "precious"
    other.mkdir()
    (other / "thesis.txt").write_text("years of work")
    result = build(campaign, sqlite_url(tmp_path), other, "--publish", env=env)
    assert result.exit_code == 1
    assert "not empty" in result.output
    assert (other / "thesis.txt").exists()


def test_a_logo_and_a_hero_image_from_content(tmp_path: Path) -> None:
    from PIL import Image

    campaign = copy_campaign(tmp_path)
    content = copy_content(tmp_path)
    (content / "images").mkdir(exist_ok=True)
    Image.new("RGB", (1600, 900), (200, 120, 40)).save(content / "images" / "hero.jpg")
    (content / "images" / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
        '<circle cx="5" cy="5" r="5"/></svg>'
    )
    settings = settings_for(tmp_path, content)
    with settings.open("a") as extra:
        extra.write(
            'SITE_LOGO = "images/logo.svg"\nHERO_IMAGE = "images/hero.jpg"\n'
            'HERO_IMAGE_ALT = "Members round a kitchen table, planning"\n'
        )
    output = tmp_path / "out"
    result = run_cli(
        campaign, sqlite_url(tmp_path), "site", "build", "--settings", str(settings),
        "--output", str(output),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    home = parse_html(output / "index.html")
    logo = home.find("img", class_="site-logo")
    # Beside the co-op's name, the logo says nothing more: an empty alt.
    assert logo is not None and logo.attrs["alt"] == "" and logo.attrs["src"] == "./images/logo.svg"
    hero = home.find("img", class_="hero-image")
    assert hero is not None
    assert hero.attrs["alt"] == "Members round a kitchen table, planning"
    assert (hero.attrs["width"], hero.attrs["height"]) == ("1600", "900")
    assert (output / "images" / "hero.jpg").is_file() and (output / "images" / "logo.svg").is_file()
    manifesto = parse_html(output / "manifesto.html")
    assert manifesto.find("img", class_="site-logo") is not None
    assert manifesto.find("img", class_="hero-image") is None


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            'SITE_LOGO = "images/nowhere.png"\n',
            "SITE_LOGO='images/nowhere.png': there is no such file",
        ),
        ('HERO_IMAGE = "images/hero.png"\n', "HERO_IMAGE_ALT is not set"),
        ('HERO_IMAGE = "pages/home.md"\nHERO_IMAGE_ALT = ""\n', "not an image"),
        ('SITE_LOGO = "hero.png"\n', "not under STATIC_PATHS"),
    ],
)
def test_a_missing_or_unusable_image_setting_is_named(
    tmp_path: Path, lines: str, message: str
) -> None:
    from PIL import Image

    campaign = copy_campaign(tmp_path)
    content = copy_content(tmp_path)
    (content / "images").mkdir(exist_ok=True)
    Image.new("RGB", (40, 20)).save(content / "images" / "hero.png")
    Image.new("RGB", (40, 20)).save(content / "hero.png")
    settings = settings_for(tmp_path, content)
    with settings.open("a") as extra:
        extra.write(lines)
    result = run_cli(
        campaign, sqlite_url(tmp_path), "site", "build", "--settings", str(settings),
        "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (('goal = "250000.00"', "goal = 250000.5"), "campaign.goal"),
        (("[campaign]", "[campaign"), "not valid TOML"),
        (('currency = "GBP"', 'currency = "XXQ"'), "campaign.currency"),
    ],
)
def test_broken_campaign_toml_fails_cleanly(
    tmp_path: Path, replace: tuple[str, str], message: str
) -> None:
    campaign = copy_campaign(tmp_path, replace=[replace])
    result = build(campaign, sqlite_url(tmp_path), tmp_path / "out")
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert not (tmp_path / "out" / "index.html").exists()


def test_missing_campaign_toml_fails_cleanly(tmp_path: Path) -> None:
    result = build(tmp_path / "campaign.toml", sqlite_url(tmp_path), tmp_path / "out")
    assert result.exit_code != 0
    assert "not found" in result.output and "fundraiser init" in result.output
    assert isinstance(result.exception, SystemExit)


def test_unreadable_ledger_fails_cleanly(tmp_path: Path) -> None:
    campaign = copy_campaign(tmp_path)
    broken = tmp_path / "var" / "ledger.sqlite"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not a database, it is a shopping list" * 100)
    result = build(campaign, sqlite_url(tmp_path), tmp_path / "out")
    assert result.exit_code == 1
    assert "cannot read the ledger" in result.output
    assert "DATABASE_URL" in result.output
    assert isinstance(result.exception, SystemExit)


def test_secret_key_in_the_publishable_key_setting_is_refused(tmp_path: Path) -> None:
    campaign = copy_campaign(tmp_path)
    env = {"STRIPE_PUBLISHABLE_KEY": "sk_test_not_for_the_web"}
    result = build(campaign, sqlite_url(tmp_path), tmp_path / "out", env=env)
    assert result.exit_code == 1
    assert "secret key" in result.output
    assert not (tmp_path / "out").exists()


def test_bad_content_fails_naming_the_file(tmp_path: Path) -> None:
    campaign = copy_campaign(tmp_path)
    content = copy_content(tmp_path)
    bad = content / "updates" / "2026-12-01-bad.md"
    bad.write_text("Title: Bad date\nDate: the thirty-first of Smarch\n\nText.\n")
    settings = settings_for(tmp_path, content)
    result = run_cli(
        campaign,
        sqlite_url(tmp_path),
        "site",
        "build",
        "--settings",
        str(settings),
        "--output",
        str(tmp_path / "out"),
    )
    assert result.exit_code == 1
    assert "2026-12-01-bad.md" in result.output
    assert "Fix them and build again" in result.output
    assert "Traceback" not in result.output


def test_plain_pelican_run_works(tmp_path: Path) -> None:
    campaign = copy_campaign(tmp_path)
    env = {
        **os.environ,
        "FUNDRAISER_CAMPAIGN": str(campaign),
        "FUNDRAISER_NOW": "2026-11-27T12:00:00+00:00",
    }
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pelican",
            "content",
            "-s",
            "site/pelicanconf.py",
            "-o",
            str(tmp_path / "out"),
            "--fatal",
            "warnings",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out" / "index.html").is_file()
    assert (tmp_path / "out" / "campaign.json").is_file()
    # The campaign's own ledger, beside the copied campaign.toml, not the repository's.
    assert (tmp_path / "var" / "ledger.sqlite").is_file()
