"""The admin API's OpenAPI 3.1 document, built from the declared operations' pydantic models."""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

import orjson
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from wahealth.admin.http import Operation, QueryParam
from wahealth.admin.schemas import Problem

_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{([a-z_]+)}")
_REASONS = {
    400: "The body is not JSON",
    401: "No admin token, or an unknown or revoked one",
    403: "The token may not do this (it manages another account)",
    404: "No such account, space, WABA or key (for this token)",
    409: "It conflicts with what is stored (exists already, belongs to someone else)",
    422: "The request is invalid: the message and `details` say which fields",
}


def _model_of(answer: Any) -> tuple[type[BaseModel], bool]:
    """The model of an answer type, and whether the answer is a list of it."""
    if get_origin(answer) is list:
        (item,) = get_args(answer)
        return item, True
    return answer, False


def openapi_document(ops: list[Operation]) -> bytes:
    """The document, serialised once: it only changes with the code."""
    models: list[tuple[type[BaseModel], Any]] = [(Problem, "serialization")]
    unions: list[Any] = []
    for op in ops:
        models.append((_model_of(op.answer)[0], "serialization"))
        if isinstance(op.body, type) and issubclass(op.body, BaseModel):
            models.append((op.body, "validation"))
        elif op.body is not None:
            unions.append(op.body)
    refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=_REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    body_schemas: dict[int, dict[str, Any]] = {}
    for union in unions:
        schema = TypeAdapter(union).json_schema(ref_template=_REF, mode="validation")
        schemas.update(schema.pop("$defs", {}))
        body_schemas[id(union)] = schema

    def body_schema(body: Any) -> dict[str, Any]:
        if id(body) in body_schemas:
            return body_schemas[id(body)]
        return refs[(body, "validation")]

    def body_required(body: Any) -> bool:
        schema = body_schema(body)
        if "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        return bool(schema.get("required") or schema.get("minProperties") or "oneOf" in schema)

    def content(model: type[BaseModel], mode: str, many: bool = False) -> dict[str, Any]:
        schema = refs[(model, mode)]  # type: ignore[index]
        if many:
            schema = {"type": "array", "items": schema}
        return {"application/json": {"schema": schema}}

    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        model, many = _model_of(op.answer)
        responses: dict[str, Any] = {
            str(op.status): {
                "description": "Done",
                "content": content(model, "serialization", many),
            }
        }
        for status in op.errors:
            responses[str(status)] = {
                "description": _REASONS[status],
                "content": content(Problem, "serialization"),
            }
        parameters = [
            {"name": name, "in": "path", "required": True,
             "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}}
            for name in _PATH_PARAM.findall(op.path)
        ] + [
            {"name": q.name, "in": "query", "required": False, "description": q.description,
             "schema": _query_schema(q)}
            for q in op.query
        ]  # fmt: skip
        operation: dict[str, Any] = {
            "operationId": op.handler.__name__,
            "summary": op.summary,
            "security": [{"adminToken": []}],
            "responses": responses,
        }
        if parameters:
            operation["parameters"] = parameters
        if op.body is not None:
            operation["requestBody"] = {
                "required": body_required(op.body),
                "content": {"application/json": {"schema": body_schema(op.body)}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "wahealth admin API",
            "version": "1",
            "description": "Accounts, spaces and keys; every change is audited.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An admin token from `wahealth admin-tokens create`.",
                }
            },
        },
    }
    return orjson.dumps(document)


def _query_schema(param: QueryParam) -> dict[str, Any]:
    if param.type is str:
        return {"type": "string"}
    if param.type is bool:
        return {"type": "boolean"}
    schema: dict[str, Any] = {"type": "integer"}
    if param.minimum is not None:
        schema["minimum"] = param.minimum
    if param.maximum is not None:
        schema["maximum"] = param.maximum
    return schema
