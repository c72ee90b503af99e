"""The OpenAPI 3.1 document of a served model, generated from its signature (no hand-written schema per model)."""
from __future__ import annotations

from typing import Any

from ..model import Signature, TensorSpec


def _leaf(spec: TensorSpec) -> dict[str, Any]:
    if spec.is_string:
        return {"type": "string"}
    if spec.dtype == "bool":
        return {"type": "boolean"}
    if spec.is_float:
        return {"type": ["number", "null"], "description": "null is a missing value (NaN)"}
    return {"type": "integer"}


def row_schema(spec: TensorSpec) -> dict[str, Any]:
    """The JSON schema of one row of `spec` (a scalar, or nested arrays for the non-batch dimensions)."""
    schema = _leaf(spec)
    for dim in reversed(spec.shape[1:]):
        schema = {"type": "array", "items": schema}
        if dim is not None:
            schema.update(minItems=dim, maxItems=dim)
    return schema


def openapi(signature: Signature, *, title: str, version: str, max_rows: int, description: str = ""
            ) -> dict[str, Any]:
    """The OpenAPI document: /predict with records or columns, and the read-only endpoints."""
    names = signature.input_names
    record = {"type": "object", "required": names, "additionalProperties": False,
              "properties": {s.name: row_schema(s) for s in signature.inputs}}
    columns = {"type": "object", "required": names, "additionalProperties": False,
               "properties": {s.name: {"type": "array", "items": row_schema(s), "minItems": 1,
                                       "maxItems": max_rows} for s in signature.inputs}}
    out_record = {"type": "object", "properties": {s.name: row_schema(s) for s in signature.outputs}}
    out_columns = {"type": "object", "properties": {
        "outputs": {"type": "object", "properties": {s.name: {"type": "array", "items": row_schema(s)}
                                                     for s in signature.outputs}}}}
    error = {"type": "object", "properties": {"error": {"type": "string"}, "detail": {"type": "array", "items": {
        "type": "object", "properties": {"loc": {"type": "array"}, "field": {"type": ["string", "null"]},
                                         "row": {"type": ["integer", "null"]}, "msg": {"type": "string"}}}}}}
    ref = "#/components/schemas/"
    json_ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": {
            "/predict": {"post": {
                "summary": "Score a batch given as records or as columns",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                    {"type": "array", "items": {"$ref": ref + "Record"}, "minItems": 1, "maxItems": max_rows},
                    {"$ref": ref + "Columns"}]}}}},
                "responses": {
                    "200": {"description": "Outputs by name: predictions (records in) or outputs (columns in)",
                            "content": {"application/json": {"schema": {"oneOf": [
                                {"type": "object", "properties": {"predictions": {
                                    "type": "array", "items": {"$ref": ref + "OutputRecord"}}}},
                                {"$ref": ref + "OutputColumns"}]}}}},
                    "400": {"description": "Malformed JSON"},
                    "413": {"description": "Body or batch over the limit"},
                    "415": {"description": "Not application/json"},
                    "422": {"description": "Does not match the signature",
                            "content": {"application/json": {"schema": {"$ref": ref + "Error"}}}}}}},
            "/metadata": {"get": {"summary": "Signature, provenance and the stored check report",
                                  "responses": {"200": json_ok}}},
            "/drift": {"get": {"summary": "Drift of the live window against the stored data profile",
                               "responses": {"200": json_ok}}},
            "/health": {"get": {"summary": "The process is up", "responses": {"200": json_ok}}},
            "/ready": {"get": {"summary": "The model is loaded and answers",
                               "responses": {"200": json_ok, "503": {"description": "Not ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics",
                                 "responses": {"200": {"description": "Prometheus text format"}}}},
            "/": {"get": {"summary": "The model card (HTML)", "responses": {"200": {"description": "HTML"}}}},
        },
        "components": {"schemas": {"Record": record, "Columns": columns, "OutputRecord": out_record,
                                   "OutputColumns": out_columns, "Error": error}},
    }
