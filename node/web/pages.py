"""Placeholder until the web pages land (being written now)."""

from aiohttp import web


def setup_pages(app: web.Application) -> None:
    return None
