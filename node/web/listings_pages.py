"""The community's listings: browse, post an offer or need, view, edit, close, delete.

Every change goes through `node.services.listings`, the same functions the JSON
API calls, so the pages cannot drift from the API's rules.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from node.api.schemas import ListingQuery, ListingUpdate, Status
from node.errors import BadRequest, Forbidden
from node.services import listings as service
from node.web.guards import Page, member_page, redirect
from node.web.listing_forms import ListingForm
from storage.models import Listing
from storage.repositories import ListingFilters

routes = web.RouteTableDef()
ID = "{id:[0-9a-f]{32}}"
CATEGORY_SUGGESTIONS = (
    "tools", "food", "skills", "transport", "childcare", "housing", "clothing",
    "garden", "books", "repairs", "other",
)  # fmt: skip


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


@routes.get("/listings", name="listings")
@member_page
async def listing_index(page: Page) -> web.StreamResponse:
    filters, chosen = _filters(page)
    listings = await service.list_community_listings(page.db, page.member, filters)
    return page.render(
        "listings/index.html",
        listings=listings,
        chosen=chosen,
        filtered=any(chosen.values()),
        categories=CATEGORY_SUGGESTIONS,
    )


def _render_form(
    page: Page, form: ListingForm, listing: Listing | None, status: int = 200
) -> web.Response:
    return page.render(
        "listings/form.html",
        status=status,
        form=form,
        listing=listing,
        categories=CATEGORY_SUGGESTIONS,
    )


@routes.get("/listings/new", name="new_listing")
@member_page
async def new_listing_form(page: Page) -> web.StreamResponse:
    return _render_form(page, ListingForm.blank(page.request.query.get("kind")), None)


@routes.post("/listings/new")
@member_page
async def create_listing(page: Page) -> web.StreamResponse:
    form = ListingForm.from_post(await page.form())
    data = form.to_create()
    if data is None:
        return _render_form(page, form, None, status=422)
    listing = await service.create_listing(page.db, page.member, data)
    await page.db.commit()
    message = f"Your {listing.kind} “{listing.title}” is posted."
    return redirect(page.request, f"/listings/{listing.id}", ("success", message))


@routes.get(f"/listings/{ID}", name="listing")
@member_page
async def listing_detail(page: Page) -> web.StreamResponse:
    listing = await service.get_visible_listing(page.db, page.member, page.request.match_info["id"])
    return page.render(
        "listings/detail.html", listing=listing, can_edit=service.may_edit(page.member, listing)
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
    return _render_form(page, ListingForm.from_listing(listing), listing)


@routes.post(f"/listings/{ID}/edit")
@member_page
async def edit_listing(page: Page) -> web.StreamResponse:
    listing = await _editable(page)
    form = ListingForm.from_post(await page.form())
    data = form.to_update()
    if data is None:
        return _render_form(page, form, listing, status=422)
    await service.update_listing(page.db, page.member, listing.id, data)
    await page.db.commit()
    return redirect(page.request, f"/listings/{listing.id}", ("success", "Your changes are saved."))


async def _set_status(page: Page, status: Status, message: str) -> web.StreamResponse:
    listing_id = page.request.match_info["id"]
    await service.update_listing(page.db, page.member, listing_id, ListingUpdate(status=status))
    await page.db.commit()
    return redirect(page.request, f"/listings/{listing_id}", ("success", message))


@routes.post(f"/listings/{ID}/close", name="close_listing")
@member_page
async def close_listing(page: Page) -> web.StreamResponse:
    return await _set_status(page, "closed", "Listing closed. It stays here, marked as closed.")


@routes.post(f"/listings/{ID}/reopen", name="reopen_listing")
@member_page
async def reopen_listing(page: Page) -> web.StreamResponse:
    return await _set_status(page, "active", "Listing reopened.")


@routes.get(f"/listings/{ID}/delete", name="delete_listing")
@member_page
async def delete_listing_confirm(page: Page) -> web.StreamResponse:
    return page.render("listings/delete.html", listing=await _editable(page))


@routes.post(f"/listings/{ID}/delete")
@member_page
async def delete_listing(page: Page) -> web.StreamResponse:
    event = await service.delete_listing(page.db, page.member, page.request.match_info["id"])
    await page.db.commit()
    message = f"“{event.listing.title}” is deleted."
    return redirect(page.request, "/listings", ("success", message))
