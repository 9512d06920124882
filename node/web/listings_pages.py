"""The community's listings: browse, post an offer or need, view, edit, close, delete.

Every change goes through `node.services.listings`, the same functions the JSON
API calls, so the pages cannot drift from the API's rules.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from node.api.converters import changes_from, draft_from
from node.api.paging import decode_cursor, encode_cursor
from node.api.schemas import ListingQuery
from node.domain.listings import ListingChanges, view_of_listing
from node.errors import BadRequest, Forbidden
from node.media.imaging import MAX_IMAGE_BYTES
from node.services import images
from node.services import listings as service
from node.services.categories import list_categories
from node.services.exchanges import MAX_NOTE
from node.web.guards import Page, accepts_photos, member_page, redirect
from node.web.listing_forms import ListingForm
from node.web.photo_pages import PhotoField, read_photo, refused_status
from node.web.photo_pages import attach as attach_photo
from storage.models import Listing, loaded_images
from storage.repositories import ListingFilters
from storage.states import ListingStatus

routes = web.RouteTableDef()
ID = "{id:[0-9a-f]{32}}"


def _filters(page: Page) -> tuple[ListingFilters, dict[str, str]]:
    chosen = {
        name: page.request.query.get(name, "").strip() for name in ("kind", "category", "status")
    }
    chosen["category"] = chosen["category"].lower()
    try:
        query = ListingQuery.model_validate({k: v for k, v in chosen.items() if v})
    except ValidationError as exc:
        raise BadRequest("That filter is not valid; clear the filters and try again.") from exc
    return ListingFilters(kind=query.kind, category=query.category, status=query.status), chosen


PAGE_SIZE = 48


async def render_listing_index(
    page: Page, *, include_partners: bool = False, include_public: bool = False, **context: Any
) -> web.Response:
    """One page of listings, newest first, with a link to the next (older) page."""
    filters, chosen = _filters(page)
    listings, after = await service.list_listings_for_member(
        page.db,
        page.member,
        filters,
        include_partners=include_partners,
        include_public=include_public,
        after=decode_cursor(page.request.query.get("cursor")),
        limit=PAGE_SIZE,
    )
    next_url = None
    if after is not None:
        query = {k: v for k, v in page.request.query.items() if k != "cursor"}
        next_url = page.request.rel_url.with_query({**query, "cursor": encode_cursor(after)})
    return page.render(
        "listings/index.html",
        listings=listings,
        chosen=chosen,
        filtered=any(chosen.values()),
        categories=await list_categories(page.db, page.member.community),
        next_url=str(next_url) if next_url is not None else None,
        paged="cursor" in page.request.query,
        **context,
    )


@routes.get("/listings", name="listings")
@member_page
async def listing_index(page: Page) -> web.StreamResponse:
    return await render_listing_index(page)


async def _render_form(
    page: Page,
    form: ListingForm,
    listing: Listing | None,
    status: int = 200,
    photo: PhotoField | None = None,
) -> web.Response:
    """The form offers the community's categories; any other slug is still accepted."""
    return page.render(
        "listings/form.html",
        status=status,
        form=form,
        listing=listing,
        categories=await list_categories(page.db, page.member.community),
        photo=photo or PhotoField(),
        photo_count=len(loaded_images(listing)) if listing is not None else 0,
        max_photos=images.MAX_IMAGES_PER_LISTING,
    )


@routes.get("/listings/new", name="new_listing")
@member_page
async def new_listing_form(page: Page) -> web.StreamResponse:
    return await _render_form(page, ListingForm.blank(page.request.query.get("kind")), None)


@routes.post("/listings/new")
@accepts_photos(MAX_IMAGE_BYTES)
@member_page
async def create_listing(page: Page) -> web.StreamResponse:
    posted = await page.form()
    form = ListingForm.from_post(posted)
    data = form.to_create()
    photo = await read_photo(page, posted, None)
    if data is None or photo.error:
        status = refused_status(form, photo)
        return await _render_form(page, form, None, status=status, photo=photo)
    if photo.photo is not None:
        listing = await images.create_listing_with_photo(
            page.db, page.member, draft_from(data), photo.photo, photo.description
        )
    else:
        listing = await service.create_listing(page.db, page.member, draft_from(data))
    await page.db.commit()
    message = f"Your {listing.kind} “{listing.title}” is posted."
    return redirect(page.request, f"/listings/{listing.id}", ("success", message))


@routes.get(f"/listings/{ID}", name="listing")
@member_page
async def listing_detail(page: Page) -> web.StreamResponse:
    detail = await service.get_listing_detail(page.db, page.member, page.request.match_info["id"])
    return page.render(
        "listings/detail.html", detail=detail, listing=detail.listing, max_note=MAX_NOTE
    )


async def _editable(page: Page) -> Listing:
    listing = await service.get_visible_listing(page.db, page.member, page.request.match_info["id"])
    if not service.may_edit(page.member, listing):
        raise Forbidden("Only the member who posted this listing, or a steward, can change it.")
    return listing


@routes.get(f"/listings/{ID}/edit", name="edit_listing")
@member_page
async def edit_listing_form(page: Page) -> web.StreamResponse:
    listing = await _editable(page)
    return await _render_form(page, ListingForm.from_listing(listing), listing)


@routes.post(f"/listings/{ID}/edit")
@accepts_photos(MAX_IMAGE_BYTES)
@member_page
async def edit_listing(page: Page) -> web.StreamResponse:
    listing = await _editable(page)
    posted = await page.form()
    form = ListingForm.from_post(posted)
    data = form.to_update()
    photo = await read_photo(page, posted, listing)
    if data is None or photo.error:
        status = refused_status(form, photo)
        return await _render_form(page, form, listing, status=status, photo=photo)
    attach_photo(listing, photo)
    await service.update_listing(page.db, page.member, listing.id, changes_from(data))
    await page.db.commit()
    return redirect(page.request, f"/listings/{listing.id}", ("success", "Your changes are saved."))


async def _set_status(page: Page, status: ListingStatus, message: str) -> web.StreamResponse:
    listing_id = page.request.match_info["id"]
    changes = ListingChanges({"status": status})
    await service.update_listing(page.db, page.member, listing_id, changes)
    await page.db.commit()
    return redirect(page.request, f"/listings/{listing_id}", ("success", message))


@routes.post(f"/listings/{ID}/close", name="close_listing")
@member_page
async def close_listing(page: Page) -> web.StreamResponse:
    return await _set_status(
        page, ListingStatus.CLOSED, "Listing closed. It stays here, marked as closed."
    )


@routes.post(f"/listings/{ID}/reopen", name="reopen_listing")
@member_page
async def reopen_listing(page: Page) -> web.StreamResponse:
    return await _set_status(page, ListingStatus.ACTIVE, "Listing reopened.")


@routes.get(f"/listings/{ID}/delete", name="delete_listing")
@member_page
async def delete_listing_confirm(page: Page) -> web.StreamResponse:
    return page.render("listings/delete.html", listing=view_of_listing(await _editable(page)))


@routes.post(f"/listings/{ID}/delete")
@member_page
async def delete_listing(page: Page) -> web.StreamResponse:
    deleted = await service.delete_listing(page.db, page.member, page.request.match_info["id"])
    await page.db.commit()
    message = f"“{deleted.title}” is deleted."
    return redirect(page.request, "/listings", ("success", message))
