"""The explorer's web application: server-rendered pages and the JSON API (FastAPI).

Pages: ``/`` (the brief form), ``/partners`` (a brief's partner list: sortable by any
column, filterable by follower tier), ``/partners.csv`` (the contract's partner list, as
``python -m serving`` writes it), ``/creators/{creator_id}`` (a creator's profile).
API: ``GET /api/health``, ``POST /api/partner-lists``, ``GET /api/creators/{creator_id}``,
documented at ``/docs`` (Swagger UI, its assets served by the explorer itself:
``fastapi_offline``, no CDN). A user's mistake is HTTP 422 with a one-line ``detail`` naming
the field and the rule (an unknown creator: 404); no response ever carries a traceback.
With keys (``explorer.access``) or a token every request must carry one
(``Authorization: Bearer``, ``?token=`` which also sets a cookie, or that cookie), else
401; a key reads only its scope (``explorer.guard``: 403 outside it, 404 for a creator
outside it) at its rate (429 beyond it), and each request is audited.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from explorer.access import RateLimit, SingleToken
from explorer.core import (
    MAX_TOP_K,
    Explorer,
    QueryError,
    UnknownCreator,
    checked_brief,
    partner_list,
    partner_view,
    records,
    sorted_rows,
)
from explorer.creators import creator_profile
from explorer.discovery import MAX_RISING, rising_list, similar_list
from explorer.guard import (
    Access,
    OutOfScope,
    brief_in_scope,
    creator_scope,
    install,
    readable_categories,
    readable_markets,
)
from features.indices import HISTORY_RULES, index_name
from features.registry import FAMILIES, features_of
from marketplace.reference import TIER_LABELS
from serving.partner_list import INDEX_COLUMNS, PARTNER_COLUMNS
from store.discovery import DEFAULT_K, DEFAULT_RISING, MAX_K, OWN

TEMPLATES = Path(__file__).with_name("templates")
PAGE_PARAMETERS = ("sort", "order", "tier", "token")  # besides the brief's fields
INDEX_LABELS = {index_name(f): f for f in FAMILIES}  # column -> family, for headers
SIMILAR_SHOWN = 10  # look-alikes on a creator page
# a first click sorts these high-first
DESCENDING_FIRST = {"followers", "score", "expected_gmv", *INDEX_COLUMNS}


class BriefIn(BaseModel):
    """One brief (the data contract's brief columns); every optional field may also be
    null, which means the same as leaving it out."""

    model_config = ConfigDict(extra="forbid")
    brief_id: str | None = Field(
        None, min_length=1, max_length=200, description="default: <market>-<category>-<as_of day>"
    )
    market: str = Field(pattern=r"^[A-Z]{2}$", description="2-letter market code, e.g. ID")
    category: str = Field(min_length=1, description="product category, e.g. beauty")
    as_of: datetime | None = Field(
        None, description="ISO-8601, UTC when no zone; default: the data's last day"
    )
    # null is the same as leaving a field out (a pandas client sends null for a NaN)
    top_k: int | None = Field(50, ge=1, le=MAX_TOP_K, description="null: 50")
    min_followers: int | None = Field(0, ge=0, description="null: 0 (no minimum)")
    commission_rate: float | None = Field(
        None, ge=0, le=1, description="default: the model's training median"
    )


def one_line(errors) -> str:
    """``field: rule`` of the first pydantic/FastAPI validation error."""
    first = list(errors)[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    name = "body" if first.get("type") == "json_invalid" else ".".join(loc) or "request"
    message = str(first.get("msg", "invalid")).splitlines()[0]
    if first.get("type") == "extra_forbidden":
        message = "unknown field"
    return f"{name}: {message}"


def create_app(ex: Explorer, token: str | None = None, access: Access | None = None) -> FastAPI:
    """The application over an indexed Explorer; ``access`` (keys, rate limit, audit) or
    ``token`` (the single-key shortcut: ``explorer.access.SingleToken``, default rate
    limit, no audit), if any, guards every path."""
    # /docs and /redoc from assets the package ships: they work offline, behind a firewall
    app = FastAPIOffline(
        title="creator-scores explorer",
        description="Partner lists and creator profiles from the creator-scores "
        "model. Partner-list rows are the data contract's, the same "
        "values `python -m serving` writes for the same brief.",
        version="1",
    )
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["num"] = _num
    env.filters["percent"] = _percent
    env.filters["url"] = lambda value: quote(str(value), safe="")

    def page(name: str, status: int = 200, **context) -> HTMLResponse:
        context = {"markets": ex.markets, "categories": ex.categories, **context}
        html = env.get_template(name).render(
            ex=ex, label=INDEX_LABELS, max_top_k=MAX_TOP_K, **context
        )
        return HTMLResponse(html, status_code=status)

    def wants_html(request: Request) -> bool:
        return not request.url.path.startswith("/api") and request.url.path != "/openapi.json"

    def error(request: Request, status: int, detail: str) -> Response:
        if wants_html(request):
            return page("error.html", status=status, status_code=status, detail=detail)
        return JSONResponse({"detail": detail}, status_code=status)

    if access is None and token:
        access = Access(keys=SingleToken(token), limit=RateLimit())
    if access is not None:
        install(app, access)
    in_scope = creator_scope(ex)

    def shown(request: Request) -> dict:
        """The markets and categories a page offers: those the request's key reads."""
        return {
            "markets": readable_markets(request, ex.markets),
            "categories": readable_categories(request, ex.categories),
        }

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError):
        return error(request, 422, one_line(err.errors()))

    @app.exception_handler(QueryError)
    async def bad_query(request: Request, err: QueryError):
        return error(request, 422, str(err))

    @app.exception_handler(OutOfScope)
    async def out_of_scope(request: Request, err: OutOfScope):
        return error(request, 403, str(err))

    @app.exception_handler(UnknownCreator)
    async def unknown_creator(request: Request, err: UnknownCreator):
        return error(request, 404, f"creator_id: unknown creator {err.args[0]!r}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        return error(request, err.status_code, str(err.detail))

    @app.exception_handler(Exception)
    async def server_error(request: Request, err: Exception):
        return error(request, 500, f"internal error ({type(err).__name__}); see the server log")

    def brief_from_query(request: Request) -> BriefIn:
        unknown = [
            k
            for k in request.query_params
            if k not in BriefIn.model_fields and k not in PAGE_PARAMETERS
        ]
        if unknown:
            raise QueryError(unknown[0], "unknown field")
        values = {
            k: v for k, v in request.query_params.items() if k in BriefIn.model_fields and v != ""
        }
        try:
            return BriefIn.model_validate(values)
        except ValidationError as err:
            raise QueryError(*one_line(err.errors()).split(": ", 1)) from None

    # ---------------------------------------------------------------- pages

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def form(request: Request):
        return page("form.html", values=dict(request.query_params), **shown(request))

    @app.get("/partners", response_class=HTMLResponse, include_in_schema=False)
    def partners_page(request: Request):
        brief_in = brief_from_query(request)
        brief = checked_brief(ex, brief_in_scope(request, brief_in.model_dump()))
        sort = request.query_params.get("sort", "rank")
        descending = request.query_params.get("order", "asc") == "desc"
        tier = request.query_params.get("tier") or None
        listed, candidates = partner_list(ex, brief)
        rows = partner_view(ex, brief, listed)
        shown = sorted_rows(rows, sort, descending, tier)
        params = {
            k: v for k, v in request.query_params.items() if k in BriefIn.model_fields and v != ""
        }
        params["brief_id"] = brief["brief_id"].iloc[0]

        def link(**change) -> str:
            return "?" + urlencode(
                {
                    **params,
                    "sort": sort,
                    "order": "desc" if descending else "asc",
                    **({"tier": tier} if tier else {}),
                    **change,
                }
            )

        def sort_link(column: str) -> str:
            if column == sort:
                return link(order="asc" if descending else "desc")
            return link(sort=column, order="desc" if column in DESCENDING_FIRST else "asc")

        return page(
            "partners.html",
            brief=brief.iloc[0],
            rows=records(shown),
            total=len(rows),
            candidates=candidates,
            sort=sort,
            descending=descending,
            tier=tier,
            tiers=TIER_LABELS,
            sort_link=sort_link,
            link=link,
            index_columns=INDEX_COLUMNS,
            hidden=[*params.items(), ("sort", sort), ("order", "desc" if descending else "asc")],
            csv_link="/partners.csv?" + urlencode(params),
            creator_query=urlencode(
                {"category": brief["category"].iloc[0], "as_of": brief["as_of"].iloc[0].isoformat()}
            ),
        )

    @app.get("/partners.csv", include_in_schema=False)
    def partners_csv(request: Request):
        values = brief_in_scope(request, brief_from_query(request).model_dump())
        brief = checked_brief(ex, values)
        text = partner_list(ex, brief)[0].to_csv(index=False)
        name = quote(f"{brief['brief_id'].iloc[0]}.csv", safe="")
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
        )

    @app.get(
        "/creators/{creator_id:path}",
        response_class=HTMLResponse,
        include_in_schema=False,
        dependencies=[Depends(in_scope)],
    )
    def creator_page(
        request: Request,
        creator_id: str,
        category: str | None = None,
        as_of: str | None = None,
        commission_rate: float | None = None,
    ):
        profile = creator_profile(ex, creator_id, category, as_of, commission_rate)
        similar = None
        if profile["is_candidate"]:
            similar = records(
                similar_list(ex, creator_id, profile["category"], profile["as_of"], SIMILAR_SHOWN)[
                    1
                ]
            )
        return page(
            "creator.html",
            p=profile,
            similar=similar,
            meanings=family_meanings(),
            bars=waterfall_bars(profile["waterfall"]),
            lines=month_lines(profile["months"]),
            index_columns=INDEX_COLUMNS,
            **shown(request),
        )

    # ---------------------------------------------------------------- API

    @app.get("/api/health", summary="Status, model version and the size of the data")
    def health():
        return {"status": "ok", "model_version": ex.model_version, "data": ex.counts()}

    @app.post("/api/partner-lists", summary="The partner list of one brief")
    def api_partner_list(brief_in: BriefIn, request: Request):
        """Rows with the data contract's partner-list columns (the same values as
        ``python -m serving`` for this brief, model and data), best first; ``candidates``
        counts the creators ranked (the market's creators active in the 90 days before
        as_of with at least min_followers)."""
        brief = checked_brief(ex, brief_in_scope(request, brief_in.model_dump()))
        rows, candidates = partner_list(ex, brief)
        b = brief.iloc[0]
        return {
            "model_version": ex.model_version,
            "brief": {**records(brief)[0], "as_of": b["as_of"].isoformat()},
            "candidates": candidates,
            "columns": list(PARTNER_COLUMNS),
            "rows": records(rows),
        }

    # ------------------------------------------------------------ discovery (issue 21)

    @app.get("/rising", response_class=HTMLResponse, include_in_schema=False)
    def rising_page(
        request: Request,
        market: str | None = None,
        category: str | None = None,
        as_of: str | None = None,
        top: int = DEFAULT_RISING,
    ):
        market = market or (readable_markets(request, ex.markets) or ex.markets)[0]
        brief_in_scope(request, {"market": market, "category": category})
        question, rows = rising_list(ex, market, category, as_of, top)
        return page(
            "rising.html",
            q=question,
            rows=records(rows),
            index_columns=INDEX_COLUMNS,
            own=OWN,
            creator_query=urlencode({"as_of": question["as_of"]}),
        )

    @app.get("/api/rising", summary="The rising creators of a market (and category)")
    def api_rising(
        request: Request,
        market: str,
        category: str | None = None,
        as_of: str | None = None,
        top: int = Query(DEFAULT_RISING, ge=1, le=MAX_RISING),
        commission_rate: float | None = Query(None, ge=0, le=1),
    ):
        """Creators with a short history (a first post under 180 days before as_of, or no
        delivered campaign yet) whose estimated sales momentum, with its uncertainty,
        reaches above what their size and history suggest, best first by that estimate
        less its uncertainty; each row is a partner-list row (indices among the market's
        candidates) with ``sales_90d`` (the estimate as the next 90 days' gmv), ``lift``,
        ``uncertainty``, ``history_days``, ``followers``, ``why`` (the families that lift
        it) and ``provisional``. Without a category each creator is judged in its declared
        one. ``rising`` counts every rising creator of the market."""
        brief_in_scope(request, {"market": market, "category": category})
        question, rows = rising_list(ex, market, category, as_of, top, commission_rate)
        return {"model_version": ex.model_version, **question, "rows": records(rows)}

    @app.get(
        "/api/creators/{creator_id:path}/similar",
        summary="The creators of the same market most like this one",
        dependencies=[Depends(in_scope)],
    )
    def api_similar(
        creator_id: str,
        category: str | None = None,
        as_of: str | None = None,
        k: int = Query(DEFAULT_K, ge=1, le=MAX_K),
        commission_rate: float | None = Query(None, ge=0, le=1),
    ):
        """The k candidates of the creator's market nearest to it in its nine look-alike
        signals (``serving.discovery.lookalike_signals``; the category family's of
        ``category``, default its declared one): root mean square of the signal gaps, a
        null against a value 33.3 points, two nulls none; nearest first, ties by
        creator_id. Each row is a partner-list row for that market and category with
        ``distance`` (percentile points) and ``followers``."""
        question, rows = similar_list(ex, creator_id, category, as_of, k, commission_rate)
        return {"model_version": ex.model_version, **question, "rows": records(rows)}

    @app.get(
        "/api/creators/{creator_id:path}",
        summary="A creator's profile for a category",
        dependencies=[Depends(in_scope)],
    )
    def api_creator(
        creator_id: str,
        category: str | None = None,
        as_of: str | None = None,
        commission_rate: float | None = None,
    ):
        """Score, raw_score, indices (percentiles among the market's candidates),
        contributions, the counterfactual score per family (its features moved to the
        peers' 75th percentile, everything else unchanged) and the recent months."""
        return creator_profile(ex, creator_id, category, as_of, commission_rate)

    return app


def family_meanings() -> dict[str, dict]:
    """Per family: the features it averages (name, direction, description) and the
    history it needs for an index, from the feature registry."""
    return {
        f: {
            "index_column": index_name(f),
            "needs": HISTORY_RULES.get(f, ""),
            "features": [(x.name, x.direction, x.description) for x in features_of(f)],
        }
        for f in FAMILIES
    }


def waterfall_bars(steps: list[dict], width: float = 560.0) -> list[dict]:
    """SVG geometry (x, width in pixels; kind base/up/down/total) of each waterfall step."""
    ends = [v for s in steps for v in (s["start"], s["end"])]
    lo, hi = min([0.0, *ends]), max([0.0, *ends])
    scale = width / (hi - lo) if hi > lo else 1.0
    out = []
    for s in steps:
        left, right = sorted((s["start"], s["end"]))
        kind = (
            "total"
            if s["step"] in ("base", "raw_score")
            else "up"
            if s["contribution"] >= 0
            else "down"
        )
        out.append(
            {
                **s,
                "x": (left - lo) * scale,
                "w": max((right - left) * scale, 1.0),
                "kind": kind,
                "zero": (0.0 - lo) * scale,
            }
        )
    return out


def month_lines(months: list[dict], width: float = 560.0, height: float = 160.0) -> dict:
    """SVG polyline points (0-100 scale) of each index and the score over the months."""
    n = len(months)
    xs = [width * (i / (n - 1) if n > 1 else 0.5) for i in range(n)]
    lines = {}
    for column in (*INDEX_COLUMNS, "score"):
        points = [
            f"{x:.1f},{height * (1 - m[column] / 100):.1f}"
            for x, m in zip(xs, months, strict=True)
            if m.get(column) is not None
        ]
        lines[column] = " ".join(points)
    return {
        "width": width,
        "height": height,
        "lines": lines,
        "labels": [(x, m["as_of"][:10]) for x, m in zip(xs, months, strict=True)],
    }


def _percent(share) -> str:
    """A share (0-1) for the page in whole per cent, '–' when missing."""
    shown = _num(None if share is None else 100.0 * share)
    return shown if shown == "–" else f"{shown} %"


def _num(value, digits: int = 0) -> str:
    """A number for the page: rounded, '–' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (int, np.integer)) and digits == 0:
        return f"{value:,}"
    return f"{float(value):,.{digits}f}"
