"""``GET /api/v2/users``: a few hundred deterministic users in the entity-listing envelope."""

from __future__ import annotations

import random
import uuid
from typing import Any

import orjson

from genesys_sandbox.wire import ApiProblem

USERS_PATH = "/api/v2/users"
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 500  # estuary pages users by 500 in production
_FIRST = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas")
_LAST = ("Adams", "Berg", "Costa", "Diaz", "Evans", "Fischer", "Garcia", "Horvat", "Khan")


def build_users(seed: int, count: int = 300) -> list[dict[str, Any]]:
    """``count`` users, the same for the same seed."""
    rng = random.Random(f"users-{seed}")
    division = {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "name": "Home"}
    users = []
    for n in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        user_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        email = f"{first}.{last}{n}@example.com".lower()
        user = {
            "id": user_id, "name": f"{first} {last}", "division": division, "email": email,
            "state": "active", "username": email, "version": 1 + rng.randrange(5),
            "selfUri": f"{USERS_PATH}/{user_id}",
        }  # fmt: skip
        users.append(user)
    return users


def users_page(users: list[dict[str, Any]], query: dict[str, str]) -> bytes:
    """One page of users with pageSize, pageNumber, total, pageCount and the navigation URIs."""
    size = _int_param(query, "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    number = _int_param(query, "pageNumber", 1, None)
    page_count = max(1, -(-len(users) // size))
    offset = (number - 1) * size
    body: dict[str, Any] = {
        "entities": users[offset : offset + size],
        "pageSize": size,
        "pageNumber": number,
        "total": len(users),
        "pageCount": page_count,
    }
    uri = f"{USERS_PATH}?pageSize={size}&pageNumber=%d"
    body["firstUri"] = uri % 1
    body["selfUri"] = uri % number
    if number < page_count:
        body["nextUri"] = uri % (number + 1)
    if number > 1:
        body["previousUri"] = uri % (number - 1)
    body["lastUri"] = uri % page_count
    return orjson.dumps(body)


def _int_param(query: dict[str, str], name: str, default: int, maximum: int | None) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or (maximum is not None and value > maximum):
        allowed = f"1-{maximum}" if maximum is not None else "positive integers"
        raise ApiProblem.of(400, "invalid.query.param.value", text, name, allowed)
    return value
