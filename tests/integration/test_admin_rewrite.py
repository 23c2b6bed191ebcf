"""The admin API's email routes through the local stack: ``POST /rewrite`` and ``/rewrite/batch``
(links wrapped, one pixel, sends recorded once per recipient and campaign), the sends of
``/mint/batch``, and ``GET /stats/campaign``."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from test_admin_api import assert_error, call
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.runtime import default_settings
from webbugger.sends import record_sends, sent_at, sent_count
from webbugger.tokens import Purpose, TokenClaims, verify
from webbugger_plugins.campaign import create_campaign

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

MESSAGE = (
    "<!DOCTYPE html><html><head><title>Hi</title></head><body>\n"
    '<p>Read <a href="https://example.com/news?a=1&amp;b=2">the news</a>, '
    '<a href="https://example.com/shop">the shop</a> and <a href="#top">top</a>.</p>\n'
    '<p><a href="https://example.com/unsubscribe">Unsubscribe</a></p>\n</body></html>\n'
)


def new_campaign(stack: RunningStack) -> str:
    stack.create_link("https://example.com/bind")  # binds every model of the test process
    campaign_id = f"mail-{uuid.uuid4().hex[:8]}"
    create_campaign(campaign_id, "Admin rewrite test")
    return campaign_id


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1].removesuffix(".gif")


def test_rewrite_one_recipient_wraps_links_places_the_pixel_and_records_the_send(
    local_stack: RunningStack,
) -> None:
    campaign_id = new_campaign(local_stack)
    body = {"html": MESSAGE, "campaign": campaign_id, "recipient": "ann@example.org"}
    answer = call("POST", f"{local_stack.admin_url}/rewrite", body)
    assert answer.status == 200, answer.body
    done = answer.json()
    assert (done["wrapped"], done["pixel"], done["new_sends"]) == (2, True, 1)
    assert sorted(skip["reason"] for skip in done["skipped"]) == ["anchor", "unsubscribe"]
    html = done["html"]
    assert 'href="#top"' in html and 'href="https://example.com/unsubscribe"' in html
    assert html.count("<img ") == 1 and "/p/" in html
    # Outside the rewritten hrefs and the pixel, the message is as it was.
    assert html.startswith(MESSAGE[: MESSAGE.index("https://example.com/news") - 1])
    # Each wrapped link redirects to its destination, and carries the recipient and campaign.
    news = next(link for dest, link in done["links"].items() if dest.endswith("/news?a=1&b=2"))
    redirect = html.split('href="', 2)[1].split('"', 1)[0].replace("&amp;", "&")
    claims = verify(token_of(redirect), local_stack.ring)
    assert (str(claims.target), str(claims.entity), str(claims.source)) == (
        f"link:{news}",
        "recipient:ann@example.org",
        f"campaign:{campaign_id}",
    )
    assert claims.purpose is Purpose.EMAIL
    followed = call("GET", redirect, agent="Mozilla/5.0 (X11; Linux x86_64) RewriteTest")
    assert (followed.status, followed.headers["location"]) == (302, "https://example.com/news?a=1&b=2")

    # The same recipient again: the same stored links, no second send.
    again = call("POST", f"{local_stack.admin_url}/rewrite", body).json()
    assert (again["links"], again["new_sends"]) == (done["links"], 0)
    assert sent_count(Ref("campaign", campaign_id)) == 1


def test_rewrite_batch_counts_each_recipient_once(local_stack: RunningStack) -> None:
    campaign_id = new_campaign(local_stack)
    campaign = Ref("campaign", campaign_id)
    # 120 recipients (more than a transaction's 99 marks), one named twice.
    recipients = [f"r{n}@example.org" for n in range(120)] + ["r7@example.org"]
    body = {"html": MESSAGE, "text": "See https://example.com/shop\n", "campaign": campaign_id}
    answer = call("POST", f"{local_stack.admin_url}/rewrite/batch", body | {"recipients": recipients})
    assert answer.status == 200, answer.body
    done = answer.json()
    assert (len(done["messages"]), done["new_sends"], done["text_wrapped"]) == (120, 120, 1)
    assert len({message["html"] for message in done["messages"]}) == 120  # signed per recipient
    assert done["messages"][5]["recipient"] == "r5@example.org"
    assert "/r/" in done["messages"][5]["text"]
    # A batch overlapping the first: only the new recipients count.
    overlap = [f"r{n}@example.org" for n in range(100, 130)]
    second = call("POST", f"{local_stack.admin_url}/rewrite/batch", body | {"recipients": overlap}).json()
    assert second["new_sends"] == 10
    assert sent_count(campaign) == 130
    asked = [f"recipient:r{n}@example.org" for n in (0, 129, 130)]
    assert set(sent_at(campaign, asked)) == set(asked[:2])

    # /mint/batch records sends too (entity and source, minted for email), once each.
    items = [{"entity": f"recipient:r{n}@example.org", "source": str(campaign)} for n in (1, 200, 201)]
    assert call("POST", f"{local_stack.admin_url}/mint/batch", {"items": items}).status == 200
    web = [{"entity": "recipient:r300@example.org", "source": str(campaign), "purpose": "web"}]
    assert call("POST", f"{local_stack.admin_url}/mint/batch", {"items": web}).status == 200
    assert sent_count(campaign) == 132

    figures = call("GET", f"{local_stack.admin_url}/stats/campaign", query={"ref": str(campaign)})
    assert figures.status == 200, figures.body
    found = figures.json()
    assert (found["sent"], found["unique_human_opens"], found["open_rate"]) == (132, 0, 0.0)
    assert found["click_to_open_rate"] is None


@pytest.mark.parametrize(
    ("path", "payload", "status", "code"),
    [
        # A campaign named in the body that does not exist: 400, as /mint and /sends answer it.
        ("/rewrite", {"html": MESSAGE, "campaign": "nope-nope", "recipient": "a@b.c"}, 400, "unknown_record"),
        (
            "/rewrite/batch",
            {"html": MESSAGE, "campaign": "nope-nope", "recipients": ["a"]},
            400,
            "unknown_record",
        ),
        ("/rewrite", {"html": MESSAGE, "campaign": "x", "recipient": ""}, 400, "invalid_request"),
        ("/rewrite", {"html": "", "campaign": "x", "recipient": "a", "extra": 1}, 400, "invalid_request"),
        ("/rewrite/batch", {"html": MESSAGE, "campaign": "x", "recipients": []}, 400, "invalid_request"),
        # TYPE:ID where the id is asked for (it would be stored as recipient:recipient:...).
        (
            "/rewrite",
            {"html": MESSAGE, "campaign": "x", "recipient": "recipient:a@b.c"},
            400,
            "bad_reference",
        ),
        # A zero-width space: a recipient that looks like a@b.c and is not (spaces around are trimmed).
        ("/rewrite", {"html": MESSAGE, "campaign": "x", "recipient": "a\u200b@b.c"}, 400, "bad_reference"),
    ],
)
def test_bad_rewrites_are_refused(
    local_stack: RunningStack, path: str, payload: dict[str, object], status: int, code: str | None
) -> None:
    assert_error(call("POST", f"{local_stack.admin_url}{path}", payload), status, code)


def test_a_batch_too_large_for_one_answer_is_refused_before_any_send(local_stack: RunningStack) -> None:
    campaign_id = new_campaign(local_stack)
    # 50,000 quotes take 100,000 characters as JSON: 50 such messages exceed the budget (4.5 M).
    html = MESSAGE.replace("<body>", "<body>" + '"' * 50_000)
    recipients = [f"big{n}@example.org" for n in range(50)]
    body = {"html": html, "campaign": campaign_id, "recipients": recipients}
    answer = call("POST", f"{local_stack.admin_url}/rewrite/batch", body)
    assert_error(answer, 400, "bad_request")
    most = int(answer.json()["error"]["message"].split("at most ")[1].split()[0])
    assert 40 <= most < 50
    assert sent_count(Ref("campaign", campaign_id)) == 0
    fits = call("POST", f"{local_stack.admin_url}/rewrite/batch", body | {"recipients": recipients[:most]})
    assert fits.status == 200, fits.body[:300]
    assert len(fits.body) < 6_000_000  # Lambda's limit on an answer
    assert sent_count(Ref("campaign", campaign_id)) == most


def test_campaign_stats_of_an_unknown_type_is_400(local_stack: RunningStack) -> None:
    answer = call("GET", f"{local_stack.admin_url}/stats/campaign", query={"ref": "nosuch:1"})
    assert_error(answer, 400, "unknown_type")


def test_campaign_stats_of_a_campaign_that_does_not_exist_is_404(local_stack: RunningStack) -> None:
    local_stack.create_link("https://example.com/bind")  # binds every model of the test process
    answer = call("GET", f"{local_stack.admin_url}/stats/campaign", query={"ref": "campaign:never-was-x"})
    assert_error(answer, 404, "not_found")


def test_a_source_never_sent_reads_no_beacon(local_stack: RunningStack) -> None:
    campaign = Ref("campaign", new_campaign(local_stack))
    link = local_stack.create_link("https://example.com/web")
    pixel = local_stack.mint(TokenClaims(Mode.PIXEL, target=Ref("link", link), source=campaign))
    assert call("GET", pixel).status == 200  # a hit, but no send
    answer = call("GET", f"{local_stack.admin_url}/stats/campaign", query={"ref": str(campaign)})
    assert answer.status == 200, answer.body
    found = answer.json()
    assert (found["sent"], found["scanned"], found["links"], found["open_rate"]) == (0, 0, [], None)


def test_sends_alone_for_urls_minted_offline(local_stack: RunningStack) -> None:
    campaign = Ref("campaign", new_campaign(local_stack))
    # The last one longer than a sort key may be (its marks' partition key holds it).
    entities = [f"recipient:o{n}@example.org" for n in range(2)] + ["recipient:" + "é" * 900]
    body = {"source": str(campaign), "entities": entities}
    first = call("POST", f"{local_stack.admin_url}/sends", body)
    assert first.status == 200, first.body
    assert first.json() == {"source": str(campaign), "recorded": 3, "sent": 3}
    more = {"source": str(campaign), "entities": [*entities[1:], "recipient:o9@example.org"]}
    assert call("POST", f"{local_stack.admin_url}/sends", more).json()["recorded"] == 1
    assert sent_count(campaign) == 4
    assert set(sent_at(campaign, [*entities, "recipient:o9@example.org"])) == {
        *entities,
        "recipient:o9@example.org",
    }
    for bad, code in (
        ({"source": str(campaign), "entities": ["recipient"]}, "bad_reference"),  # no id
        ({"source": str(campaign), "entities": ["nosuch:1"]}, "unknown_type"),
        ({"source": "nosuch:1", "entities": entities}, "unknown_type"),
        ({"source": "campaign:never-created", "entities": entities}, "unknown_record"),
        ({"source": str(campaign), "entities": []}, "invalid_request"),
        ({"source": str(campaign), "entities": ["recipient:o1@example.org\x85"]}, "bad_reference"),
    ):
        assert_error(call("POST", f"{local_stack.admin_url}/sends", bad), 400, code)
    assert sent_count(campaign) == 4


def test_parallel_senders_of_one_campaign_count_each_recipient_once(local_stack: RunningStack) -> None:
    """Six writers at once, overlapping: every transaction that met another is retried, and the
    total still equals the marks."""
    campaign = Ref("campaign", new_campaign(local_stack))
    settings = default_settings()
    batches = [[Ref("recipient", f"p{n}") for n in range(start, start + 150)] for start in range(0, 600, 100)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        new = sum(pool.map(lambda batch: record_sends(campaign, batch, settings), batches))
    assert new == 650  # p0 .. p649, each once
    assert sent_count(campaign) == 650
    assert len(sent_at(campaign, [f"recipient:p{n}" for n in range(700)])) == 650


def test_erasing_a_recipient_deletes_its_sends_not_the_campaigns_number(local_stack: RunningStack) -> None:
    # One campaign with an id too long for the marks' sort key (it is keyed by its hash there).
    campaigns = [Ref("campaign", new_campaign(local_stack)), Ref("campaign", "c" * 1500)]
    gone, kept = "recipient:erase-me@example.org", "recipient:keep-me@example.org"
    for campaign in campaigns:
        assert record_sends(campaign, [Ref.parse(gone), Ref.parse(kept)], default_settings()) == 2
        assert set(sent_at(campaign, [gone, kept])) == {gone, kept}
    answer = call("POST", f"{local_stack.admin_url}/erase", {"entity": gone})
    assert answer.status == 200, answer.body
    assert answer.json()["sends"] == 2
    for campaign in campaigns:
        assert set(sent_at(campaign, [gone, kept])) == {kept}
        assert sent_count(campaign) == 2  # a number names nobody


def test_an_opener_with_no_recorded_send_is_left_out_of_the_open_rate(local_stack: RunningStack) -> None:
    """Sent to one recipient; a second opens a pixel signed offline with no ``POST /sends``: the
    open rate is 100 %, not 200 %, and the second is counted apart."""
    campaign = Ref("campaign", new_campaign(local_stack))
    assert record_sends(campaign, [Ref("recipient", "sent@example.org")], default_settings()) == 1
    browser = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/17.4 Safari/605.1"
    for who in ("sent@example.org", "offline@example.org"):
        pixel = local_stack.mint(TokenClaims(Mode.PIXEL, entity=Ref("recipient", who), source=campaign))
        assert call("GET", pixel, agent=browser).status == 200
    url, query = f"{local_stack.admin_url}/stats/campaign", {"ref": str(campaign)}
    deadline = time.monotonic() + 20
    while (found := call("GET", url, query=query).json())["pending"] or found["scanned"] < 2:
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    assert (found["sent"], found["unique_human_opens"], found["open_rate"]) == (1, 1, 1.0), found
    assert found["openers_not_sent"] == 1


def test_url_for_email_says_it_records_no_send(local_stack: RunningStack) -> None:
    # Its help's example mints a recipient's pixel for a campaign; without a note, the campaign
    # then had no rates at all (nothing sent) and nothing said why.
    campaign = Ref("campaign", new_campaign(local_stack))
    args = ("url", "pixel", "--entity", "recipient:u@example.org", "--source", str(campaign))
    mail = local_stack.cli(*args, "--for", "email")
    assert mail.returncode == 0, mail.stderr
    assert f"note: no send of {campaign} recorded for recipient:u@example.org: POST /sends" in mail.stderr
    assert "note:" not in local_stack.cli(*args).stderr  # a web page's pixel: no send to speak of
    assert sent_count(campaign) == 0
