"""The demo page in a real browser: Debian's chromium driven by Playwright,
two pages signed in as Ava and Leo talking to a real bridge on a fresh
database with the demo data. Assertions are about what a person sees on
the page; each test leaves a screenshot of both pages in tests/artifacts/."""

from __future__ import annotations

import dataclasses
import re
import shutil
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from tests.support.demo import AVA, LEO
from tests.support.harness import Harness, running, settings_for

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "demo"
# Generous: the machine is shared; expect() polls, so a quick page costs nothing.
expect.set_options(timeout=20_000)
# What a browser does when its tab goes to the background (headless tabs
# never do).
BACKGROUND = """() => {
    const hidden = { hidden: true, visibilityState: "hidden" };
    for (const [key, value] of Object.entries(hidden)) {
        Object.defineProperty(document, key, { value, configurable: true });
    }
    document.dispatchEvent(new Event("visibilitychange"));
}"""


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium (make test installs it); Playwright's own browser
    download is not used. --no-sandbox: the suite may run as root."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (make test installs it: scripts/ensure-services)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        await browser.close()


@pytest.fixture
async def demo(db_dsn: str) -> AsyncIterator[Harness]:
    """The daemon with `server.dev` on; typing expires as in production (6 s)."""
    settings = settings_for(db_dsn)
    settings = dataclasses.replace(
        settings,
        server=dataclasses.replace(settings.server, dev=True),
        presence=dataclasses.replace(settings.presence, typing_ttl=6.0, typing_throttle=2.0),
    )
    async with running(settings) as harness:
        yield harness


@pytest.fixture
async def pages(
    browser: Browser, demo: Harness, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Page, Page]]:
    """Ava's and Leo's pages, each in its own browser context, signed in by
    picking the person on the page; screenshots of both at the end."""
    contexts = [await browser.new_context(viewport={"width": 1100, "height": 720}) for _ in "ab"]
    ava, leo = [await c.new_page() for c in contexts]
    errors: list[str] = []
    for page in (ava, leo):
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Shown with a failure: the page's own complaints (toasts log nothing).
        page.on("console", lambda msg: print(f"console {msg.type}: {msg.text}"))
    try:
        await sign_in(ava, demo.url, "Ava Brandt")
        await sign_in(leo, demo.url, "Leo Creator")
        yield ava, leo
        assert not errors, errors
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for name, page in (("ava", ava), ("leo", leo)):
            if not page.is_closed():
                await page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{name}.png"))
        for context in contexts:
            await context.close()


async def sign_in(page: Page, url: str, name: str) -> None:
    await page.goto(url + "/")
    await page.get_by_role("button", name=re.compile(name)).click()
    await expect(page.locator("#connection")).to_have_text("online")
    await expect(page.locator(".chat").first).to_be_visible()


def chat(page: Page, kind: str) -> Locator:
    """The chat list entry of the bid / campaign / direct conversation."""
    return page.locator(".chat").filter(has=page.locator(".chat-kind", has_text=kind))


async def test_a_message_typing_and_read_receipts_go_live(pages: tuple[Page, Page]) -> None:
    """Ava and Leo open their campaign chat. Each sees the other online; Ava
    sees her last message as read once Leo has opened the chat; while Ava
    types Leo sees "Ava Brandt is typing…", which goes when she sends; her
    message appears on Leo's page and is marked read on hers."""
    ava, leo = pages
    await chat(ava, "Campaign").click()
    await chat(leo, "Campaign").click()
    for page in (ava, leo):
        await expect(page.locator("#conv-status")).to_have_text("online")
    await expect(ava.locator(".msg.mine").last).to_contain_text("Perfect, thanks Leo.")
    await expect(ava.locator(".msg.mine").last.locator(".receipt")).to_have_text("Read")

    await ava.get_by_role("textbox", name="Message").press_sequentially("Hi Leo, how is the draft")
    typing = leo.get_by_text("Ava Brandt is typing…")
    await expect(typing).to_be_visible()
    await ava.get_by_role("textbox", name="Message").press("Enter")
    await expect(typing).to_be_hidden()
    arrived = leo.locator(".msg.theirs").last
    await expect(arrived).to_contain_text("Hi Leo, how is the draft")
    await expect(ava.locator(".msg.mine").last.locator(".receipt")).to_have_text("Read")
    # And back: Leo's answer shows on Ava's page, in order after hers.
    await leo.get_by_role("textbox", name="Message").fill("Almost done!")
    await leo.get_by_role("button", name="Send").click()
    await expect(ava.locator(".msg").last).to_contain_text("Almost done!")
    await expect(ava.locator(".msg.theirs").last).to_contain_text("Almost done!")


async def test_chat_list_shows_the_news_and_the_badge_clears_after_reading(
    pages: tuple[Page, Page],
) -> None:
    """Leo looks at his chat list (avatars, last messages, one unread in the
    campaign chat). Ava writes in the bid chat: Leo's list shows her typing,
    then her message as the bid chat's last message with an unread badge,
    at the top. Leo opens it: the badge is gone and Ava sees "Read"."""
    ava, leo = pages
    await expect(leo.locator(".chat .avatar").first).to_be_visible()
    campaign = chat(leo, "Campaign")
    await expect(campaign.locator(".chat-preview")).to_have_text("Perfect, thanks Leo.")
    await expect(campaign.get_by_label("1 unread")).to_be_visible()
    bid = chat(leo, "Bid")
    await expect(bid.locator(".badge")).to_have_count(0)

    await chat(ava, "Bid").click()
    await ava.get_by_role("textbox", name="Message").press_sequentially("Delivery is on Tuesday")
    await expect(bid.locator(".chat-preview")).to_have_text("typing…")
    await ava.get_by_role("textbox", name="Message").press("Enter")
    await expect(bid.locator(".chat-preview")).to_have_text("Delivery is on Tuesday")
    await expect(bid.get_by_label("1 unread")).to_be_visible()
    await expect(leo.locator(".chat").first).to_contain_text("Delivery is on Tuesday")
    # Leo's tab has it (it acknowledged new_message), he has not opened it.
    await expect(ava.locator(".msg.mine").last.locator(".receipt")).to_have_text("Delivered")

    await bid.click()
    await expect(leo.locator(".msg.theirs").last).to_contain_text("Delivery is on Tuesday")
    await expect(bid.locator(".badge")).to_have_count(0)
    await expect(ava.locator(".msg.mine").last.locator(".receipt")).to_have_text("Read")
    # Ava's own list: her message is the bid chat's last one, no badge for her.
    await expect(chat(ava, "Bid").locator(".chat-preview")).to_have_text(
        "You: Delivery is on Tuesday"
    )


async def test_presence_follows_the_other_tab(pages: tuple[Page, Page]) -> None:
    """Ava looks at her chat with Leo: he is online; when his tab goes to
    the background she sees "away", when he closes it "offline", in the
    header and on his avatars in her chat list."""
    ava, leo = pages
    await chat(ava, "Campaign").click()
    status = ava.locator("#conv-status")
    await expect(status).to_have_text("online")
    await leo.evaluate(BACKGROUND)
    await expect(status).to_have_text("away")
    await expect(chat(ava, "Bid").get_by_label("away")).to_be_visible()
    await leo.close()
    await expect(status).to_have_text("offline")
    await expect(chat(ava, "Bid").get_by_label("offline")).to_be_visible()


async def test_a_tab_cut_off_by_the_bridge_comes_back_and_catches_up(
    pages: tuple[Page, Page], demo: Harness
) -> None:
    """The bridge drops Leo's socket (as on a token expiry or a restart);
    Ava writes meanwhile. Leo's page reconnects with a fresh token by
    itself, shows "online" again and Ava's message in the open chat."""
    ava, leo = pages
    await chat(ava, "Campaign").click()
    await chat(leo, "Campaign").click()
    gateway = demo.app.gateway
    assert gateway is not None
    leo_sids = [s.sid for s in gateway.sessions.values() if s.user_id == LEO]
    assert leo_sids
    for sid in leo_sids:
        await gateway.sio.disconnect(sid)
    await ava.get_by_role("textbox", name="Message").fill("Did you get this?")
    await ava.get_by_role("textbox", name="Message").press("Enter")
    await expect(leo.locator(".msg.theirs").last).to_contain_text("Did you get this?")
    await expect(leo.locator("#connection")).to_have_text("online")
    await expect(ava.locator(".msg.mine").last.locator(".receipt")).to_have_text("Read")


async def test_flow_actions_post_their_system_messages(pages: tuple[Page, Page]) -> None:
    """The bid waits for Ava's confirmation: only Ava has "Confirm". She
    confirms; both pages show the system message and the new state, and now
    Leo has "Submit work". He submits; both see that message too."""
    ava, leo = pages
    await chat(ava, "Bid").click()
    await chat(leo, "Bid").click()
    await expect(ava.locator("#flow-state")).to_have_text(
        "Bid: Awaiting confirmation · waiting for you"
    )
    await expect(leo.locator("#flow-state")).to_contain_text("waiting for Ava Brandt")
    await expect(leo.get_by_role("button", name="Confirm", exact=True)).to_have_count(0)

    await ava.get_by_role("button", name="Confirm", exact=True).click()
    confirmed = "The brand owner confirmed the bid. Work can start."
    for page in (ava, leo):
        await expect(page.locator(".msg.system").last).to_have_text(confirmed)
    await expect(leo.locator("#flow-state")).to_have_text("Bid: Work in progress · waiting for you")
    await expect(chat(ava, "Bid").locator(".chat-kind")).to_have_text("Bid · Work in progress")

    await leo.get_by_role("button", name="Submit work").click()
    for page in (ava, leo):
        await expect(page.locator(".msg.system").last).to_have_text("Work was submitted for review")
    await expect(ava.get_by_role("button", name="Approve work")).to_be_visible()


async def test_a_new_campaign_chat_starts_with_a_connection_request(
    pages: tuple[Page, Page],
) -> None:
    """Ava starts a chat with Leo about her Autumn Collection: it appears in
    Leo's list at once with the connection request; Leo accepts it and both
    see that message and the chat waiting for Ava."""
    ava, leo = pages
    await expect(leo.locator(".chat")).to_have_count(2)
    await ava.get_by_label("Campaign", exact=True).select_option(label="Autumn Collection")
    await ava.get_by_label("Influencer", exact=True).select_option(label="Leo Creator")
    await ava.get_by_role("button", name="Send connection request").click()
    await expect(ava.locator(".msg.system")).to_have_text(["You have a new connection request"])

    await expect(leo.locator(".chat")).to_have_count(3)
    request = chat(leo, "Campaign · Connection request")
    await expect(request.locator(".chat-preview")).to_have_text("You have a new connection request")
    await request.click()
    await leo.get_by_role("button", name="Accept request").click()
    accepted = "The influencer accepted the connection request"
    for page in (ava, leo):
        await expect(page.locator(".msg.system").last).to_have_text(accepted)
    await expect(ava.locator("#flow-state")).to_have_text(
        "Campaign: Awaiting confirmation · waiting for you"
    )


async def test_an_edit_and_an_unsend_show_on_the_other_page(
    pages: tuple[Page, Page], demo: Harness
) -> None:
    """Leo has the campaign chat open; Ava writes, fixes her text (the bubble
    changes and says "edited"), then unsends it: Leo's page shows "This
    message was unsent" in its place, and his chat list says so too."""
    ava, leo = pages
    await chat(leo, "Campaign").click()
    await chat(ava, "Campaign").click()
    await ava.get_by_role("textbox", name="Message").fill("The budget is 5k")
    await ava.get_by_role("textbox", name="Message").press("Enter")
    bubble = leo.locator(".msg.theirs").last
    await expect(bubble).to_contain_text("The budget is 5k")
    message_id = await bubble.get_attribute("data-id")
    status, _ = await demo.request(
        "PATCH", f"/api/messages/{message_id}", AVA, json={"message": "The budget is 6k"}
    )
    assert status == 200
    await expect(bubble).to_contain_text("The budget is 6k")
    await expect(bubble.locator(".edited")).to_have_text("edited")
    status, _ = await demo.request("DELETE", f"/api/messages/{message_id}", AVA)
    assert status == 200
    await expect(bubble).to_contain_text("This message was unsent")
    await expect(bubble).not_to_contain_text("6k")
    await expect(chat(leo, "Campaign").locator(".chat-preview")).to_have_text("Message unsent")


def tiny_png(width: int = 8, height: int = 6) -> bytes:
    """A real PNG (red pixels), built byte by byte: what a browser decodes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def test_an_attached_image_and_file_show_on_the_other_page(
    pages: tuple[Page, Page],
) -> None:
    """Ava attaches a small PNG in the campaign chat with a caption: Leo's
    page shows the picture itself (decoded by the browser from a signed
    URL, 8 by 6 pixels) with the caption, and his chat list says "Image".
    Leo answers with a text file: Ava sees a download link named after it,
    and the link gives Leo's bytes."""
    ava, leo = pages
    await chat(ava, "Campaign").click()
    await chat(leo, "Campaign").click()
    await ava.get_by_role("textbox", name="Message").fill("The moodboard")
    await ava.get_by_label("Attach a file").set_input_files(
        files=[{"name": "moodboard.png", "mimeType": "image/png", "buffer": tiny_png()}]
    )
    bubble = leo.locator(".msg.theirs").last
    image = bubble.get_by_role("img", name="Image moodboard.png")
    await expect(image).to_be_visible()
    await expect(image).to_have_js_property("naturalWidth", 8)
    await expect(image).to_have_js_property("naturalHeight", 6)
    await expect(bubble).to_contain_text("The moodboard")
    await expect(chat(leo, "Campaign").locator(".chat-preview")).to_have_text("📷 Image")
    # Ava's own page shows it too, once sent (no "Uploading…" left).
    await expect(ava.locator(".msg.mine").last.locator("img.attachment-image")).to_have_js_property(
        "naturalWidth", 8
    )
    await expect(ava.locator(".attachment-pending")).to_have_count(0)

    notes = b"shot list: 1. product close-up 2. outdoor\n"
    await leo.get_by_label("Attach a file").set_input_files(
        files=[{"name": "shot list.txt", "mimeType": "text/plain", "buffer": notes}]
    )
    link = ava.locator(".msg.theirs").last.get_by_role("link", name="📎 shot list.txt")
    await expect(link).to_have_attribute("href", re.compile(r"token="))
    href = await link.get_attribute("href")
    assert href is not None
    response = await ava.request.get(href)
    assert response.ok and await response.body() == notes
