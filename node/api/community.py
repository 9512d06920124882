"""The caller's community and its settings."""

from __future__ import annotations

from node.api.router import api
from node.api.routing import ApiCall
from node.api.schemas import (
    CategoryCreate,
    CategoryList,
    CategoryOut,
    CommunitySettings,
    CommunitySettingsOut,
)
from node.services.categories import add_category, list_categories
from node.services.communities import set_discoverable


@api.route(
    "GET",
    "/community",
    summary="The caller's community and its settings",
    tag="community",
    response=CommunitySettingsOut,
    errors=(401,),
)
async def get_community(call: ApiCall[None, None]) -> CommunitySettingsOut:
    community = call.me.community
    return CommunitySettingsOut(
        handle=community.handle, name=community.name, discoverable=community.is_discoverable
    )


@api.route(
    "PATCH",
    "/community",
    summary="Change the community's settings (stewards)",
    tag="community",
    auth="steward",
    body=CommunitySettings,
    response=CommunitySettingsOut,
    errors=(401, 403, 415, 422),
)
async def update_community(call: ApiCall[CommunitySettings, None]) -> CommunitySettingsOut:
    community = call.me.community
    if call.body.discoverable is not None:
        await set_discoverable(call.session, community, call.body.discoverable)
        await call.session.refresh(community)
    return CommunitySettingsOut(
        handle=community.handle, name=community.name, discoverable=community.is_discoverable
    )


@api.route(
    "GET",
    "/categories",
    summary="The categories the community's forms offer",
    tag="listings",
    response=CategoryList,
    errors=(401,),
)
async def get_categories(call: ApiCall[None, None]) -> CategoryList:
    categories = await list_categories(call.session, call.me.community)
    return CategoryList(items=[CategoryOut(slug=c.slug, label=c.label) for c in categories])


@api.route(
    "POST",
    "/categories",
    summary="Add a category to the community's list (stewards)",
    tag="listings",
    auth="steward",
    status=201,
    body=CategoryCreate,
    response=CategoryOut,
    errors=(401, 403, 409, 415, 422),
)
async def create_category(call: ApiCall[CategoryCreate, None]) -> CategoryOut:
    category = await add_category(call.session, call.me, call.body.slug, call.body.label)
    return CategoryOut(slug=category.slug, label=category.label)
