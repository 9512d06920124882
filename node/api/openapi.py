"""OpenAPI document, generated from the route table and its pydantic models.

We publish OpenAPI 3.0.3 because the bundled Swagger UI (swagger-ui-bundle, 4.x)
renders only 3.0; pydantic's JSON Schema is translated in `to_openapi30()`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from node.api.routing import ApiRouter, Operation
from node.api.schemas import ErrorBody

REF_TEMPLATE = "#/components/schemas/{model}"
STATUS_TEXT = {
    400: "Bad request",
    401: "Missing or invalid bearer token",
    403: "Not allowed for this caller",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Input failed validation",
    429: "Too many requests",
}


def _models(router: ApiRouter) -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {"ErrorBody": ErrorBody}
    for op in router.operations:
        for model in (op.body, op.response):
            if model is not None:
                seen[model.__name__] = model
    return list(seen.values())


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _error_statuses(op: Operation) -> list[int]:
    """What the operation declares, plus what the router itself answers before the handler runs."""
    statuses = set(op.errors)
    if op.auth != "none":
        statuses.add(401)
    if op.auth in ("steward", "operator"):
        statuses.add(403)
    if op.query is not None:
        statuses.add(422)
    if op.body is not None:
        statuses.update((413, 415, 422))
    if re.search(r"{\w+}", op.path):
        statuses.add(404)
    return sorted(statuses)


def _operation(op: Operation) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.handler.__name__,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", op.path)
        ],
        "responses": {},
    }
    if op.query is not None:
        doc["parameters"] += _query_parameters(op.query)
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": REF_TEMPLATE.format(model=op.body.__name__)}
                }
            },
        }
    ok: dict[str, Any] = {"description": "Success"}
    if op.response is not None:
        ok["content"] = {
            "application/json": {
                "schema": {"$ref": REF_TEMPLATE.format(model=op.response.__name__)}
            }
        }
    doc["responses"][str(op.status)] = ok
    error_ref = {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model="ErrorBody")}}}
    for status in _error_statuses(op):
        doc["responses"][str(status)] = {"description": STATUS_TEXT[status], "content": error_ref}
    if op.auth != "none":
        doc["security"] = [{"bearer": []}]
    return doc


def to_openapi30(node: Any) -> Any:
    """JSON Schema 2020-12 as pydantic writes it -> the OpenAPI 3.0 schema dialect."""
    if isinstance(node, list):
        return [to_openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: to_openapi30(value) for key, value in node.items()}
    variants = out.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants:
        rest = [v for v in variants if v != {"type": "null"}]
        del out["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:
            out.update(rest[0])
        else:
            out["anyOf" if len(rest) > 1 else "allOf"] = rest
        out["nullable"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if (
        out.get("nullable") is True
        and isinstance(out.get("enum"), list)
        and None not in out["enum"]
    ):
        # In 3.0 `nullable` does not widen an enum; null must be listed to be allowed.
        out["enum"] = [*out["enum"], None]
    return out


def build_openapi(
    router: ApiRouter, *, title: str, version: str, server_url: str
) -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(model, "validation") for model in _models(router)], ref_template=REF_TEMPLATE
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in router.operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version},
        "servers": [{"url": server_url}],
        "paths": to_openapi30(paths),
        "components": {
            "schemas": to_openapi30(schemas.get("$defs", {})),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
