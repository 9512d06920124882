"""Photos through the listing pages: a multipart form without JavaScript, a refused photo
sends the form back as typed, the detail page shows photos with their alt text."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
from aiohttp import ClientResponse

from node.appkeys import CONFIG
from node.media.store import media_root
from tests.support.images import has_metadata, phone_photo
from tests.web.conftest import BASE_URL, Browser, listings_in_db

IMG = re.compile(r'<img[^>]*src="([^"]+)"[^>]*alt="([^"]*)"')
OFFER = {"kind": "offer", "title": "Bike trailer", "description": "Fits two children."}


async def post_form(
    browser: Browser, path: str, fields: dict[str, str], photo: bytes | None = None
) -> ClientResponse:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("csrf_token", await browser.csrf("/listings/new"))
    for name, value in fields.items():
        form.add_field(name, value)
    if photo is not None:
        form.add_field("photo", photo, filename="IMG_0001.jpg", content_type="image/jpeg")
    return await browser.client.post(
        path, data=form, headers={"Origin": BASE_URL}, allow_redirects=False
    )


def media_files(browser: Browser) -> list[Path]:
    root = media_root(browser.client.app[CONFIG])
    return sorted(root.iterdir()) if root.is_dir() else []


async def test_a_photo_posted_with_the_form_shows_on_the_listing(browser: Browser) -> None:
    await browser.become("max")
    fields = {**OFFER, "photo_description": "A red trailer on grass"}
    response = await post_form(browser, "/listings/new", fields, phone_photo(1200, 900))
    assert response.status == 303, await response.text()
    detail = await (await browser.get(response.headers["Location"])).text()
    photos = IMG.findall(detail)
    assert len(photos) == 1
    src, alt = photos[0]
    assert src.startswith("/media/") and src.endswith("/display")
    assert alt == "A red trailer on grass"
    assert "<figcaption>A red trailer on grass</figcaption>" in detail
    served = await browser.get(src)
    assert served.status == 200 and served.content_type == "image/jpeg"
    assert not has_metadata(await served.read())

    index = await (await browser.get("/listings")).text()
    assert any(s.endswith("/thumb") for s, _ in IMG.findall(index))

    browser.client.session.cookie_jar.clear()
    assert (await browser.get(src)).status == 404  # a community listing's photo


async def test_a_refused_photo_sends_the_form_back_as_typed(browser: Browser) -> None:
    await browser.become("max")
    fields = {**OFFER, "photo_description": "Front view"}
    cases = [
        (b"GIF89a not really", 415, "not a JPEG, PNG or WebP image"),
        (b"\xff\xd8" + b"\0" * (20 * 1024 * 1024), 413, "larger than 10 MB"),
    ]
    for photo, status, words in cases:
        response = await post_form(browser, "/listings/new", fields, photo)
        assert response.status == status
        html = await response.text()
        assert words in html
        assert 'value="Bike trailer"' in html
        assert "Fits two children.</textarea>" in html
        assert 'value="Front view"' in html
    assert await listings_in_db(browser) == []
    assert media_files(browser) == []


async def test_the_author_adds_a_photo_when_editing_and_removes_it(browser: Browser) -> None:
    await browser.become("max")
    response = await post_form(browser, "/listings/new", OFFER)
    assert response.status == 303
    page = response.headers["Location"]
    response = await post_form(
        browser, f"{page}/edit", {**OFFER, "photo_description": "Hitch"}, phone_photo(400, 300)
    )
    assert response.status == 303, await response.text()
    detail = await (await browser.get(page)).text()
    assert [alt for _, alt in IMG.findall(detail)] == ["Hitch"]
    assert len(media_files(browser)) == 2

    await browser.become("olga")  # another member sees it, but no remove button
    assert "Remove photo" not in await (await browser.get(page)).text()

    await browser.become("max")
    detail = await (await browser.get(page)).text()
    action = re.search(r'action="(/listings/[0-9a-f]+/photos/[0-9a-f]+/remove)"', detail)
    assert action
    response = await browser.submit(action.group(1), {}, form_page=page)
    assert response.status == 303
    assert IMG.findall(await (await browser.get(page)).text()) == []
    assert media_files(browser) == []
