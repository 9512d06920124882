"""The community's listings: browse, post an offer or need, view, edit, close, delete.

Every change goes through `node.services.listings`, the same functions the JSON
API calls, so the pages cannot drift from the API's rules.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from pydantic import ValidationError

from node.api.converters import changes_from, draft_from
from node.api.paging import decode_cursor, encode_cursor
from node.api.schemas import ListingQuery
from node.appkeys import CONFIG
from node.domain.listings import ListingChanges, view_of_listing
from node.errors import BadRequest, Forbidden
from node.media.imaging import MAX_IMAGE_BYTES
from node.services import images
from node.services import listings as service
from node.services.categories import list_categories
from node.services.exchanges import MAX_NOTE
from node.services.partnerships import active_partner_names
from node.web.discovery_pages import home_point, map_tiles
from node.web.guards import Page, accepts_photos, member_page, redirect
from node.web.listing_forms import ListingForm
from node.web.photo_pages import PhotoField, read_photo, refused_status
from node.web.photo_pages import attach as attach_photo
from storage.models import Listing, loaded_images
from storage.repositories import ListingFilters
from storage.states import ListingStatus, Visibility

routes = web.RouteTableDef()
ID = "{id:[0-9a-f]{32}}"


FILTERS = ("q", "kind", "category", "status", "closed")


def _filters(page: Page, author_id: int | None) -> tuple[ListingFilters, dict[str, str]]:
    """The list's filters, read from (and kept in) the URL.

    Closed listings are left out unless `closed=yes` (or an explicit `status`,
    the API's own filter) asks for them.
    """
    chosen = {name: page.request.query.get(name, "").strip() for name in FILTERS}
    chosen["category"] = chosen["category"].lower()
    chosen["closed"] = "yes" if chosen["closed"] == "yes" else ""
    fields = {k: v for k, v in chosen.items() if v and k != "closed"}
    try:
        query = ListingQuery.model_validate(fields)
    except ValidationError as exc:
        raise BadRequest("That filter is not valid; clear the filters and try again.") from exc
    status = query.status or (None if chosen["closed"] else ListingStatus.ACTIVE)
    filters = ListingFilters(
        kind=query.kind,
        category=query.category,
        status=status,
        q=query.q,
        author_id=author_id,
    )
    return filters, chosen


PAGE_SIZE = 48


async def render_listing_index(page: Page, *, scope: str = "community") -> web.Response:
    """One page of our community's listings (or the member's own), newest first."""
    mine = scope == "mine"
    filters, chosen = _filters(page, page.member.id if mine else None)
    listings, after = await service.list_listings_for_member(
        page.db,
        page.member,
        filters,
        after=decode_cursor(page.request.query.get("cursor")),
        limit=PAGE_SIZE,
    )
    next_url = None
    if after is not None:
        url = page.request.rel_url.without_query_params("cursor")
        next_url = str(url.update_query(cursor=encode_cursor(after)))
    return page.render(
        "listings/index.html",
        listings=listings,
        chosen=chosen,
        filtered=any(chosen.values()),
        categories=await list_categories(page.db, page.member.community),
        next_url=next_url,
        paged="cursor" in page.request.query,
        first_url=str(page.request.rel_url.without_query_params("cursor")),
        scope=scope,
        list_path="/listings/mine" if mine else "/listings",
    )


@routes.get("/listings", name="listings")
@member_page
async def listing_index(page: Page) -> web.StreamResponse:
    return await render_listing_index(page)


@routes.get("/listings/mine", name="my_listings")
@member_page
async def my_listing_index(page: Page) -> web.StreamResponse:
    return await render_listing_index(page, scope="mine")


async def _render_form(
    page: Page,
    form: ListingForm,
    listing: Listing | None,
    status: int = 200,
    photo: PhotoField | None = None,
) -> web.Response:
    """The form offers the community's categories (any other slug is still accepted),
    names its active partners, and puts the place picker's map on the community."""
    community = page.member.community
    return page.render(
        "listings/form.html",
        status=status,
        form=form,
        listing=listing,
        categories=await list_categories(page.db, community),
        partners=await active_partner_names(page.db, community),
        tiles=map_tiles(page.request.app[CONFIG]),
        home=home_point(community),
        photo=photo or PhotoField(),
        photo_count=len(loaded_images(listing)) if listing is not None else 0,
        max_photos=images.MAX_IMAGES_PER_LISTING,
    )


async def _saved_message(page: Page, listing: Listing, message: str) -> tuple[str, str]:
    """The flash after saving; it warns when "partners" reaches no partner yet."""
    if listing.visibility != Visibility.PARTNERS:
        return "success", message
    if await active_partner_names(page.db, page.member.community):
        return "success", message
    name = page.member.community.name
    return "info", (
        f"{message} {name} has no active partner community yet, so for now only "
        f"members of {name} can see it; partners will once a partnership starts."
    )


@routes.get("/listings/new", name="new_listing")
@member_page
async def new_listing_form(page: Page) -> web.StreamResponse:
    partners = await active_partner_names(page.db, page.member.community)
    form = ListingForm.blank(page.request.query.get("kind"), has_partners=bool(partners))
    return await _render_form(page, form, None)


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
    flash = await _saved_message(page, listing, f"Your {listing.kind} “{listing.title}” is posted.")
    await page.db.commit()
    return redirect(page.request, f"/listings/{listing.id}", flash)


async def render_listing_detail(
    page: Page, asked: Mapping[str, str] | None = None, error: str = "", status: int = 200
) -> web.Response:
    """The listing's page; `asked` and `error` put a refused request back on its form."""
    detail = await service.get_listing_detail(page.db, page.member, page.request.match_info["id"])
    return page.render(
        "listings/detail.html",
        status=status,
        detail=detail,
        listing=detail.listing,
        max_note=MAX_NOTE,
        asked=asked or {},
        request_error=error,
    )


@routes.get(f"/listings/{ID}", name="listing")
@member_page
async def listing_detail(page: Page) -> web.StreamResponse:
    return await render_listing_detail(page)


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
    flash = await _saved_message(page, listing, "Your changes are saved.")
    await page.db.commit()
    return redirect(page.request, f"/listings/{listing.id}", flash)


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
