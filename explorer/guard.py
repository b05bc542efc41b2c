"""The explorer's access checks as FastAPI pieces: ``install`` adds the middleware that
authenticates every request (401), applies the key's rate limit (429 with Retry-After)
and writes the audit line; the scope checks say what one request may read.

Scope checks, for routes (``request.state.key`` is the request's Key; without access
control there is none and everything is readable):

- ``brief_in_scope(request, values)``: a brief's market and category, else OutOfScope
  (403); it returns ``values`` so a route wraps its ``checked_brief`` argument with it.
- ``creator_scope(ex)``: a FastAPI dependency for any route with a ``{creator_id}`` path
  parameter (and an optional ``category`` query parameter): a creator outside the key's
  markets is UnknownCreator (404, word for word an unknown creator's answer, so a key
  learns nothing about who exists elsewhere); a category outside the key's, or none when
  the key is limited to some, is OutOfScope. A new route applies it in one line:
  ``@app.get("/api/creators/{creator_id:path}/similar", dependencies=[Depends(in_scope)])``.
- ``readable_markets(request, markets)``: the markets a route that lists creators may show
  (a list spanning markets keeps only the rows of these).

Each check also notes market, category and creator_id for the request's audit line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from explorer.access import AuditLog, Key, RateLimit, retry_after, scope_text
from explorer.core import Explorer, UnknownCreator, creator_market

TOKEN_COOKIE = "explorer_token"
TOKEN_PARAMETER = "token"


class OutOfScope(Exception):
    """A request for something the key may not read; the message is one line."""


class Keys(Protocol):
    def lookup(self, secret: str) -> Key | None: ...


@dataclass
class Access:
    """What guards the application: where keys are looked up, the rate limit per key and
    the audit log (None: no audit)."""

    keys: Keys
    limit: RateLimit
    audit: AuditLog | None = None


def presented_secret(request: Request) -> str:
    """The key a request carries: ``Authorization: Bearer KEY``, else ``?token=KEY``,
    else the cookie a ``?token=`` set; empty when none."""
    return (
        request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        or request.query_params.get(TOKEN_PARAMETER)
        or request.cookies.get(TOKEN_COOKIE)
        or ""
    )


def install(app: FastAPI, access: Access) -> None:
    """Guard every path of ``app``: 401 without a live key, 429 beyond the key's rate,
    and an audit line per request (time, key, method, path without its query, market,
    category, creator_id, status)."""

    @app.middleware("http")
    async def guard(request: Request, call_next):
        secret = presented_secret(request)
        key = access.keys.lookup(secret) if secret else None
        noted: dict = {}
        request.state.key, request.state.audit = key, noted
        if key is None or key.revoked_at is not None:
            response = JSONResponse(
                {"detail": "revoked access key" if key else "missing or wrong access key"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        elif (wait := access.limit.wait(key.name)) > 0:
            response = JSONResponse(
                {"detail": f"too many requests for key {key.name!r}; retry later"},
                status_code=429,
                headers={"Retry-After": retry_after(wait)},
            )
        else:
            response = await call_next(request)
            if request.query_params.get(TOKEN_PARAMETER):
                response.set_cookie(TOKEN_COOKIE, secret, httponly=True, samesite="strict")
        if access.audit is not None:
            access.audit.write(
                key=key.name if key else None,
                method=request.method,
                path=request.url.path,
                status=response.status_code,
                **noted,
            )
        return response


def request_key(request: Request) -> Key | None:
    """The request's key; None when the application has no access control."""
    return getattr(request.state, "key", None)


def _note(request: Request, **fields) -> None:
    noted = getattr(request.state, "audit", None)
    if noted is not None:
        noted.update({k: v for k, v in fields.items() if v is not None})


def brief_in_scope(request: Request, values: dict) -> dict:
    """``values`` (a brief's fields) when the request's key reads their market and
    category; OutOfScope otherwise."""
    market, category = values.get("market"), values.get("category")
    _note(request, market=market, category=category)
    key = request_key(request)
    if key is None:
        return values
    if not key.reads_market(market):
        raise OutOfScope(
            f"market: this key does not read market {market!r} (it reads {scope_text(key.markets)})"
        )
    if not key.reads_category(category):
        raise OutOfScope(
            f"category: this key does not read category {category!r} "
            f"(it reads {scope_text(key.categories)})"
        )
    return values


def creator_scope(ex: Explorer):
    """The dependency that lets a request at a creator through only when its key reads
    the creator's market and the requested category (see the module's docstring)."""

    def creator_in_scope(request: Request, creator_id: str, category: str | None = None) -> None:
        market = creator_market(ex, creator_id)
        _note(request, creator_id=creator_id, market=market, category=category or None)
        key = request_key(request)
        if key is None:
            return
        if market is None or not key.reads_market(market):
            raise UnknownCreator(creator_id)
        if key.categories is not None and not category:
            raise OutOfScope(
                f"category: this key reads only {scope_text(key.categories)}; "
                "name one (?category=...)"
            )
        if not key.reads_category(category):
            raise OutOfScope(
                f"category: this key does not read category {category!r} "
                f"(it reads {scope_text(key.categories)})"
            )

    return creator_in_scope


def readable_markets(request: Request, markets) -> tuple[str, ...]:
    """The ones of ``markets`` the request's key reads (all without access control)."""
    key = request_key(request)
    return tuple(m for m in markets if key is None or key.reads_market(m))


def readable_categories(request: Request, categories) -> tuple[str, ...]:
    """The ones of ``categories`` the request's key reads (all without access control)."""
    key = request_key(request)
    return tuple(c for c in categories if key is None or key.reads_category(c))
