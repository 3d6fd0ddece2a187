"""The OpenAPI 3 document of the balance API, built from the same limits the handlers check."""

from __future__ import annotations

from .api import MAX_AMOUNT_CENTS, NUMBER_PATTERN


def _err(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _path_params() -> list:
    return [
        {"name": "profile", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}},
        {"name": "number", "in": "path", "required": True,
         "description": "the caller's number, E.164 (+4915112345678) or national (015112345678); "
                        "digits that are no possible number are 404",
         "schema": {"type": "string", "pattern": NUMBER_PATTERN.pattern}},
    ]


_IDEM = {"name": "Idempotency-Key", "in": "header", "required": False,
         "description": "the same key with the same body gives the first answer again; with another body 422",
         "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[ -~]+$"}}


def _ok(schema_ref: str) -> dict:
    return {"description": "done",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


def _common_errors() -> dict:
    return {"400": _err("a malformed number, body or field"), "401": _err("no, unknown or revoked API key"),
            "403": _err("the API key is not for this profile"), "404": _err("no such profile or account"),
            "413": _err("the body is too large")}


def _post(summary: str, body_ref: str, ok_ref: str, extra: dict) -> dict:
    return {"summary": summary, "parameters": [_IDEM],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{body_ref}"}}}},
            "responses": {"200": _ok(ok_ref), **_common_errors(),
                          "409": _err("refused, or the same Idempotency-Key is still running"),
                          "422": _err("the Idempotency-Key was used with another request"), **extra},
            "security": [{"apiKey": []}]}


def openapi_document() -> dict:
    account = {"type": "object", "required": ["profile", "number", "balance_cents", "currency"],
               "properties": {"profile": {"type": "string"}, "number": {"type": "string"},
                              "balance_cents": {"type": "integer", "minimum": 0}, "currency": {"type": "string"}}}
    money_body = {"type": "object", "required": ["amount_cents", "reference"],
                  "properties": {"amount_cents": {"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT_CENTS},
                                 "reference": {"type": "string", "pattern": "^[A-Za-z0-9._:\\-]{1,100}$",
                                               "description": "your id of this booking: booked once per API key"},
                                 "note": {"type": "string", "maxLength": 500}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "prepaid balance API", "version": "1.0.0",
                 "description": "Look up, credit and debit callers' prepaid balances; list transactions; renumber."},
        "paths": {
            "/api/v1/accounts/{profile}/{number}": {
                "parameters": _path_params(),
                "get": {"summary": "an account's balance", "security": [{"apiKey": []}],
                        "responses": {"200": _ok("Account"), **_common_errors()}}},
            "/api/v1/accounts/{profile}/{number}/transactions": {
                "parameters": _path_params(),
                "get": {"summary": "ledger rows, newest first", "security": [{"apiKey": []}],
                        "parameters": [{"name": "limit", "in": "query", "required": False,
                                        "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
                        "responses": {"200": _ok("Transactions"), **_common_errors()}}},
            "/api/v1/accounts/{profile}/{number}/credit": {
                "parameters": _path_params(),
                "post": _post("credit an amount (creates the account)", "MoneyBody", "Booking", {})},
            "/api/v1/accounts/{profile}/{number}/debit": {
                "parameters": _path_params(),
                "post": _post("take an amount if the balance covers it, else 409 and no change", "MoneyBody",
                              "Booking", {})},
            "/api/v1/accounts/{profile}/{number}/renumber": {
                "parameters": _path_params(),
                "post": _post("move an account to a new number", "RenumberBody", "Renumbered", {})},
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Account": account,
                "MoneyBody": money_body,
                "RenumberBody": {"type": "object", "required": ["new_number"],
                                 "properties": {"new_number": {"type": "string", "pattern": NUMBER_PATTERN.pattern},
                                                "merge": {"type": "boolean"}}},
                "Booking": {"type": "object", "required": ["applied", "account"],
                            "properties": {"applied": {"type": "boolean"},
                                           "account": {"$ref": "#/components/schemas/Account"}}},
                "Renumbered": {"type": "object", "required": ["merged", "account"],
                               "properties": {"merged": {"type": "boolean"},
                                              "account": {"$ref": "#/components/schemas/Account"}}},
                "Transactions": {"type": "object", "required": ["number", "transactions"], "properties": {
                    "number": {"type": "string"},
                    "transactions": {"type": "array", "items": {
                        "type": "object",
                        "required": ["id", "kind", "amount_cents", "balance_after_cents", "source", "reference",
                                     "note", "at_ms"],
                        "properties": {"id": {"type": "integer"}, "kind": {"type": "string"},
                                       "amount_cents": {"type": "integer"},
                                       "balance_after_cents": {"type": "integer", "minimum": 0},
                                       "source": {"type": "string"}, "reference": {"type": "string"},
                                       "note": {"type": "string"}, "at_ms": {"type": "integer"}}}}}},
                "Error": {"type": "object", "required": ["error"],
                          "properties": {"error": {"type": "string"}, "reason": {"type": "string"},
                                         "account": {"$ref": "#/components/schemas/Account"}}},
            },
        },
    }
