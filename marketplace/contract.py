"""The six raw tables of the data contract as code.

Column kinds, the exact dtypes that `marketplace.io` returns, key columns, enums, the
pandera schemas for the column-level rules, and `Violation` / `InvalidData`: how a
broken rule is reported. Cross-table rules live in `marketplace.validate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

TABLES: tuple[str, ...] = (
    "creators",
    "follower_snapshots",
    "posts",
    "campaigns",
    "invitations",
    "campaign_results",
)

FORMATS: tuple[str, ...] = ("video", "live")
RESPONSES: tuple[str, ...] = ("accepted", "declined", "no_response")
MARKET_PATTERN = r"^[A-Z]{2}$"

# The dtypes `marketplace.io` returns for each kind of column.
STRING_DTYPE = pd.StringDtype(na_value=np.nan)  # pandas' default "str"; missing is NaN
TIMESTAMP_DTYPE = pd.DatetimeTZDtype(unit="us", tz="UTC")  # dates too: midnight UTC
INT_DTYPE = np.dtype("int64")
NULLABLE_INT_DTYPE = pd.Int64Dtype()
FLOAT_DTYPE = np.dtype("float64")
BOOL_DTYPE = np.dtype("bool")

# Rule texts shared by reading and validation.
MISSING_TABLE = "missing table"
MISSING_COLUMN = "missing column"
NOT_NULL = "must not be null"
UNIQUE = "must be unique"
NOT_EMPTY = "must not be empty"
NON_NEGATIVE = "must be >= 0"
UNIT_INTERVAL = "must be in [0, 1]"
FORMAT_ENUM = "must be one of " + ", ".join(FORMATS)
RESPONSE_ENUM = "must be one of " + ", ".join(RESPONSES)
MARKET_CODE = "must be an upper-case 2-letter country code"
KIND_RULES: dict[str, str] = {
    "string": "must be a string",
    "timestamp": "must be a UTC timestamp",
    "date": "must be a date",
    "int": "must be an integer",
    "float": "must be a number",
    "bool": "must be true or false",
}


@dataclass(frozen=True)
class Field:
    """One contract column: name, kind (a key of KIND_RULES) and nullability."""

    name: str
    kind: str
    nullable: bool = False


def _f(name: str, kind: str, nullable: bool = False) -> Field:
    return Field(name, kind, nullable)


_COUNTS = tuple(_f(c, "int") for c in ("views", "likes", "comments", "shares", "orders"))

FIELDS: dict[str, tuple[Field, ...]] = {
    "creators": (
        _f("creator_id", "string"),
        _f("market", "string"),
        _f("joined_at", "timestamp"),
        _f("primary_category", "string", nullable=True),
    ),
    "follower_snapshots": (
        _f("creator_id", "string"),
        _f("snapshot_date", "date"),
        _f("followers", "int"),
    ),
    "posts": (
        _f("post_id", "string"),
        _f("creator_id", "string"),
        _f("posted_at", "timestamp"),
        _f("format", "string"),
        _f("category", "string", nullable=True),
        _f("is_shoppable", "bool"),
        *_COUNTS,
        _f("gmv", "float"),
    ),
    "campaigns": (
        _f("campaign_id", "string"),
        _f("brand_id", "string"),
        _f("market", "string"),
        _f("category", "string"),
        _f("created_at", "timestamp"),
        _f("start_at", "timestamp"),
        _f("end_at", "timestamp"),
        _f("commission_rate", "float", nullable=True),
    ),
    "invitations": (
        _f("campaign_id", "string"),
        _f("creator_id", "string"),
        _f("invited_at", "timestamp"),
        _f("response", "string"),
        _f("responded_at", "timestamp", nullable=True),
        _f("posts_promised", "int", nullable=True),
        _f("posts_delivered", "int", nullable=True),
    ),
    "campaign_results": (
        _f("campaign_id", "string"),
        _f("creator_id", "string"),
        _f("gmv", "float"),
        _f("orders", "int"),
    ),
}

COLUMNS: dict[str, tuple[str, ...]] = {t: tuple(f.name for f in fs) for t, fs in FIELDS.items()}

# The key of each table: unique, and the example ids of a violation.
KEYS: dict[str, tuple[str, ...]] = {
    "creators": ("creator_id",),
    "follower_snapshots": ("creator_id", "snapshot_date"),
    "posts": ("post_id",),
    "campaigns": ("campaign_id",),
    "invitations": ("campaign_id", "creator_id"),
    "campaign_results": ("campaign_id", "creator_id"),
}


def dtype_of(field: Field):
    """The exact dtype `marketplace.io` gives a column."""
    if field.kind == "string":
        return STRING_DTYPE
    if field.kind in ("timestamp", "date"):
        return TIMESTAMP_DTYPE
    if field.kind == "int":
        return NULLABLE_INT_DTYPE if field.nullable else INT_DTYPE
    return FLOAT_DTYPE if field.kind == "float" else BOOL_DTYPE


DTYPES: dict[str, dict[str, object]] = {
    t: {f.name: dtype_of(f) for f in fs} for t, fs in FIELDS.items()
}


# ---------------------------------------------------------------- violations


@dataclass(frozen=True)
class Violation:
    """One broken rule: where, which rule, how many rows, a few example ids."""

    table: str
    column: str
    rule: str
    rows: int = 0
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = ".".join(p for p in (self.table, self.column) if p)
        line = f"{where}: {self.rule}" if where else self.rule
        if not self.rows:
            return line
        count = f"{self.rows} row{'s' if self.rows != 1 else ''}"
        if self.examples:
            count += ", e.g. " + ", ".join(self.examples)
        return f"{line} ({count})"


class InvalidData(Exception):
    """Data that breaks the contract; `violations` lists every broken rule."""

    def __init__(self, violations) -> None:
        self.violations: tuple[Violation, ...] = tuple(violations)
        super().__init__("\n".join(str(v) for v in self.violations))


def example_ids(frame: pd.DataFrame, table: str, mask, limit: int = 5) -> tuple[str, ...]:
    """Key values of the first `limit` rows where `mask` is true ("a/b" for pairs)."""
    return example_ids_at(frame, table, np.flatnonzero(np.asarray(mask, dtype=bool))[:limit])


def example_ids_at(frame: pd.DataFrame, table: str, positions) -> tuple[str, ...]:
    """Key values of the rows at `positions` ("a/b" for pairs, "row i" without a key)."""
    rows = frame.iloc[np.asarray(positions, dtype=np.int64)]
    keys = [c for c in KEYS[table] if c in rows.columns]
    if not keys:
        return tuple(f"row {i}" for i in positions)
    parts = [_key_text(rows[c]) for c in keys]
    return tuple("/".join(p) for p in zip(*parts, strict=True))


def _key_text(values: pd.Series) -> list[str]:
    if isinstance(values.dtype, pd.DatetimeTZDtype) or values.dtype.kind == "M":
        return [_time_text(v) for v in values]
    return ["null" if pd.isna(v) else str(v) for v in values]


def _time_text(value: pd.Timestamp) -> str:
    if pd.isna(value):
        return "null"
    return str(value.date()) if value == value.normalize() else value.isoformat()


def violation(frame: pd.DataFrame, table: str, column: str, rule: str, mask) -> Violation | None:
    """The Violation for the rows in `mask`, or None when there are none."""
    mask = np.asarray(mask, dtype=bool)
    rows = int(mask.sum())
    if rows == 0:
        return None
    return Violation(table, column, rule, rows, example_ids(frame, table, mask))


# ---------------------------------------------------------------- pandera schemas


def _is_kind(kind: str) -> Callable[[pd.Series], bool]:
    """A whole-column type check for a contract kind (any width or unit is fine)."""

    def check(s: pd.Series) -> bool:
        d = s.dtype
        if kind == "string":
            return pd.api.types.is_string_dtype(s)
        if kind in ("timestamp", "date"):
            return isinstance(d, pd.DatetimeTZDtype) and str(d.tz) == "UTC"
        if kind == "int":
            return pd.api.types.is_integer_dtype(d)
        if kind == "float":
            return pd.api.types.is_numeric_dtype(d) and not pd.api.types.is_bool_dtype(d)
        return pd.api.types.is_bool_dtype(d)

    return check


def _check(rule: str, fn: Callable[[pd.Series], object]) -> pa.Check:
    """A vectorised pandera check named by its rule text (nulls are skipped)."""
    return pa.Check(fn, name=rule, error=rule)


_NON_NEGATIVE = _check(NON_NEGATIVE, lambda s: s >= 0)
_NOT_EMPTY = _check(NOT_EMPTY, lambda s: s.str.strip().str.len() > 0)
_MARKET = _check(MARKET_CODE, lambda s: s.str.fullmatch(MARKET_PATTERN) == True)  # noqa: E712
_MIDNIGHT = _check(KIND_RULES["date"], lambda s: s == s.dt.normalize())

# Column-level rules beyond type and nullability.
_CHECKS: dict[tuple[str, str], tuple[pa.Check, ...]] = {
    ("creators", "creator_id"): (_NOT_EMPTY,),
    ("creators", "market"): (_MARKET,),
    ("follower_snapshots", "snapshot_date"): (_MIDNIGHT,),
    ("follower_snapshots", "followers"): (_NON_NEGATIVE,),
    ("posts", "post_id"): (_NOT_EMPTY,),
    ("posts", "format"): (_check(FORMAT_ENUM, lambda s: s.isin(FORMATS)),),
    **{
        ("posts", c): (_NON_NEGATIVE,)
        for c in ("views", "likes", "comments", "shares", "orders", "gmv")
    },
    ("campaigns", "campaign_id"): (_NOT_EMPTY,),
    ("campaigns", "brand_id"): (_NOT_EMPTY,),
    ("campaigns", "market"): (_MARKET,),
    ("campaigns", "commission_rate"): (_check(UNIT_INTERVAL, lambda s: (s >= 0) & (s <= 1)),),
    ("invitations", "response"): (_check(RESPONSE_ENUM, lambda s: s.isin(RESPONSES)),),
    ("invitations", "posts_promised"): (_NON_NEGATIVE,),
    ("invitations", "posts_delivered"): (_NON_NEGATIVE,),
    ("campaign_results", "gmv"): (_NON_NEGATIVE,),
    ("campaign_results", "orders"): (_NON_NEGATIVE,),
}


def type_schema(table: str) -> pa.DataFrameSchema:
    """Pandera schema for column presence and type (extra columns are allowed)."""
    columns = {
        f.name: pa.Column(None, list(_type_checks(f, True)), nullable=True) for f in FIELDS[table]
    }
    return pa.DataFrameSchema(columns, strict=False, name=table)


def rule_schema(table: str, columns=None, with_types: bool = False) -> pa.DataFrameSchema:
    """Pandera schema for nullability, ranges, enums, patterns and uniqueness.

    Only `columns` (default: all) are checked; give those whose type is right.
    `with_types` adds the type check of `type_schema` in front of each column's rules.
    """
    keep = set(COLUMNS[table] if columns is None else columns)
    key = KEYS[table]
    fields = [f for f in FIELDS[table] if f.name in keep]
    single_key = len(key) == 1
    schema_columns = {
        f.name: pa.Column(
            None,
            [*_type_checks(f, with_types), *_CHECKS.get((table, f.name), ())],
            nullable=f.nullable,
            unique=single_key and f.name == key[0],
        )
        for f in fields
    }
    unique = list(key) if not single_key and keep.issuperset(key) else None
    return pa.DataFrameSchema(schema_columns, unique=unique, strict=False, name=table)


def _type_checks(field: Field, with_types: bool) -> tuple[pa.Check, ...]:
    if not with_types:
        return ()
    return (_check(KIND_RULES[field.kind], _is_kind(field.kind)),)


# Every column-level rule of each table (type included) in one schema.
SCHEMAS: dict[str, pa.DataFrameSchema] = {t: rule_schema(t, with_types=True) for t in TABLES}
