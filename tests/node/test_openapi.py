"""The OpenAPI document is generated from the models that validate requests."""

from __future__ import annotations

from typing import Any

from tests.conftest import NodeHandle


async def test_openapi_document_describes_the_listing_contract(node: NodeHandle) -> None:
    resp = await node.client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    create = doc["paths"]["/api/v1/listings"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ListingCreate"
    )
    assert "201" in create["responses"]
    assert "422" in create["responses"]
    schemas = doc["components"]["schemas"]

    def enum_of(prop: dict[str, Any]) -> list[str]:
        """The allowed values, inline or behind a `$ref` (optional fields wrap it)."""
        for option in [prop, *prop.get("anyOf", []), *prop.get("allOf", [])]:
            if "$ref" in option:
                return list(schemas[option["$ref"].rsplit("/", 1)[1]]["enum"])
            if "enum" in option:
                return list(option["enum"])
        raise AssertionError(f"no enum in {prop}")

    create_props = schemas["ListingCreate"]["properties"]
    assert enum_of(create_props["kind"]) == ["offer", "need"]
    assert enum_of(create_props["visibility"]) == ["community", "partners", "public"]
    assert "kind" in schemas["ListingCreate"]["required"]
    params = {p["name"] for p in doc["paths"]["/api/v1/listings"]["get"]["parameters"]}
    assert {"kind", "category", "status", "include_public", "include_partners"} <= params
    assert {"limit", "cursor"} <= params
    assert "next" in schemas["ListingList"]["properties"]
    assert doc["paths"]["/api/v1/auth/token"]["post"].get("security") is None
    assert create["security"] == [{"bearer": []}]


async def test_interactive_docs_are_served_without_a_network(node: NodeHandle) -> None:
    resp = await node.client.get("/api/docs")
    assert resp.status == 200
    html = await resp.text()
    assert "swagger-ui" in html
    assert "https://" not in html
    asset = await node.client.get("/api/docs/static/swagger-ui-bundle.js")
    assert asset.status == 200
    assert len(await asset.read()) > 100_000
