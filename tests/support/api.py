"""A small async client for a node's JSON API, as scripts and other nodes use it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")


@dataclass
class ApiClient:
    base_url: str
    http: aiohttp.ClientSession
    token: str | None = None

    async def login(self, username: str, password: str) -> ApiClient:
        status, body = await self.call(
            "POST", "/api/v1/auth/token", json={"username": username, "password": password}
        )
        assert status == 200, body
        return ApiClient(self.base_url, self.http, body["token"])

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.http.request(
            method, self.base_url + path, headers=headers, **kwargs
        ) as resp:
            text = await resp.text()
            try:
                return resp.status, (await resp.json(content_type=None)) if text else None
            except ValueError:
                return resp.status, text

    async def ok(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, **kwargs)
        assert status == expect, (method, path, status, body)
        return body

    async def titles(self, query: str = "") -> set[str]:
        """Every listing's title, across all pages."""
        return {item["title"] for item in await self.all_items("/api/v1/listings", query)}

    async def all_items(self, path: str, query: str = "") -> list[Any]:
        """Follow `next` through every page of a list endpoint."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page_query = "&".join(
                q for q in (query, f"limit=200&cursor={cursor}" if cursor else "limit=200") if q
            )
            body = await self.ok("GET", f"{path}?{page_query}")
            items += body["items"]
            cursor = body["next"]
            if cursor is None:
                return items


async def eventually(
    check: Callable[[], Awaitable[T]], *, within: float = 20, interval: float = 0.1
) -> T:
    """Poll until `check` returns without an AssertionError, or re-raise its last one."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)
