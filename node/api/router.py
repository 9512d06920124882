"""The one API route table every API module registers on."""

from node.api.routing import ApiRouter

api = ApiRouter()
