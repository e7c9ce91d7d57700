"""JSON from outside, parsed with a depth limit: deeply nested input is a clear 400, never a 500.

Python's json module recurses once per nesting level, so ``[[[[...]]]]`` a hundred thousand deep
raises RecursionError (a 500, and a worker thread's stack spent). Here that, and anything deeper
than JSON_MAX_DEPTH, is a JSONTooDeep (a ValueError, so callers that refuse bad JSON refuse it too).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONTooDeep(ValueError):
    pass


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Is ``value`` nested deeper than ``limit`` containers? Iterative: no recursion to exhaust."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads(raw: str | bytes | bytearray, *, max_depth: int | None = None) -> Any:
    """json.loads, refusing nesting deeper than ``max_depth`` (JSON_MAX_DEPTH) with JSONTooDeep."""
    limit = max_depth or settings.JSON_MAX_DEPTH
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JSONTooDeep(f"The JSON is nested too deeply (the limit is {limit} levels).") from None
    if json_depth_exceeds(value, limit):
        raise JSONTooDeep(f"The JSON is nested too deeply (the limit is {limit} levels).")
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the depth limit (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            raw = stream.read().decode(encoding) if stream is not None else ""
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        try:
            return loads(raw)
        except JSONTooDeep as exc:
            raise ParseError(str(exc)) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
