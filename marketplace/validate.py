"""Check raw tables against every rule of the data contract.

Column-level rules (presence, type, nullability, ranges, enums, patterns, uniqueness)
run as pandera schemas from `marketplace.contract`; rules across columns and tables
(foreign keys, time order, response consistency) are vectorised pandas below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from marketplace.contract import (
    COLUMNS,
    KEYS,
    KIND_RULES,
    MISSING_COLUMN,
    MISSING_TABLE,
    NOT_NULL,
    RESPONSES,
    TABLES,
    UNIQUE,
    InvalidData,
    Violation,
    example_ids_at,
    rule_schema,
    type_schema,
    violation,
)
from marketplace.io import (
    part_batches,
    part_paths,
    read_part_batches,
    read_path,
    read_tables,
    table_path,
)

__all__ = [
    "InvalidData",
    "Violation",
    "is_partitioned",
    "load_valid_tables",
    "validate_parts",
    "validate_tables",
]

_PANDERA_RULES = {
    "not_nullable": NOT_NULL,
    "field_uniqueness": UNIQUE,
    "multiple_fields_uniqueness": UNIQUE,
    "column_in_dataframe": MISSING_COLUMN,
}
_TYPE_RULES = frozenset(KIND_RULES.values())

Tables = Mapping[str, pd.DataFrame]


def load_valid_tables(directory) -> dict[str, pd.DataFrame]:
    """Read the tables of `directory` and validate them; InvalidData if anything fails."""
    tables = read_tables(directory)
    violations = validate_tables(tables)
    if violations:
        raise InvalidData(violations)
    return tables


def validate_tables(tables: Tables) -> list[Violation]:
    """Every contract violation of `tables`, in table order; empty when all is well."""
    violations: list[Violation] = []
    frames: dict[str, pd.DataFrame] = {}
    usable: set[tuple[str, str]] = set()
    for name in TABLES:
        if name not in tables:
            violations.append(Violation(name, "", MISSING_TABLE))
            continue
        frames[name] = tables[name].reset_index(drop=True)
        found, good = check_columns(frames[name], name)
        violations += found
        usable |= {(name, c) for c in good}
    violations += check_cross_rules(frames, usable)
    return violations


# ---------------------------------------------------------------- column rules


def check_columns(frame: pd.DataFrame, table: str) -> tuple[list[Violation], list[str]]:
    """Column-level violations of one table, and the columns present with the right type."""
    type_problems = _run_schema(type_schema(table), frame, table)
    broken = {v.column for v in type_problems}
    good = [c for c in COLUMNS[table] if c in frame.columns and c not in broken]
    return type_problems + _run_schema(rule_schema(table, good), frame, table), good


def _run_schema(schema: pa.DataFrameSchema, frame: pd.DataFrame, table: str) -> list[Violation]:
    try:
        schema.validate(frame, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as err:
        return _from_failure_cases(err.failure_cases, frame, table)
    return []


def _from_failure_cases(cases: pd.DataFrame, frame: pd.DataFrame, table: str) -> list[Violation]:
    """One Violation per (column, rule) of pandera's failure cases."""
    check = cases["check"].astype(str)
    missing = check == "column_in_dataframe"
    pair = check == "multiple_fields_uniqueness"
    column = cases["column"].astype(object).where(~missing, cases["failure_case"])
    column = column.where(~pair, "/".join(KEYS[table]))
    cases = cases.assign(
        where=column.astype(str),
        rule=check.replace(_PANDERA_RULES),
        row=pd.to_numeric(cases["index"], errors="coerce"),
    )
    violations = []
    for (col, rule), group in cases.groupby(["where", "rule"], sort=False):
        violations.append(_grouped_violation(frame, table, col, rule, group["row"]))
    return violations


def _grouped_violation(
    frame: pd.DataFrame, table: str, column: str, rule: str, rows: pd.Series
) -> Violation:
    positions = rows.dropna().astype(np.int64).unique()
    if len(positions):
        return Violation(
            table, column, rule, len(positions), example_ids_at(frame, table, positions[:5])
        )
    whole_column = len(frame) if rule in _TYPE_RULES else 0  # a wrong type affects every row
    return Violation(table, column, rule, whole_column)


# ---------------------------------------------------------------- cross rules


@dataclass(frozen=True)
class CrossRule:
    """A rule across columns or tables: rows of `table` where `broken` is true fail."""

    table: str
    column: str
    rule: str
    needs: tuple[tuple[str, str], ...]
    broken: Callable[[Mapping[str, pd.DataFrame]], object]


def check_cross_rules(frames: Tables, usable: set[tuple[str, str]]) -> list[Violation]:
    """Violations of the cross rules whose columns are all present and well typed."""
    found = []
    for rule in CROSS_RULES:
        if all(need in usable for need in rule.needs):
            frame = frames[rule.table]
            found.append(violation(frame, rule.table, rule.column, rule.rule, rule.broken(frames)))
    return [v for v in found if v is not None]


def _in(child: pd.Series, parent: pd.Series) -> np.ndarray:
    """True where a non-null `child` value is missing from `parent`."""
    return (child.notna() & ~child.isin(parent)).to_numpy()


def _pair_missing(child: pd.DataFrame, parent: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """True where a fully non-null `child` key pair is not a row of `parent`."""
    left = pd.MultiIndex.from_frame(child[cols])
    right = pd.MultiIndex.from_frame(parent[cols])
    return child[cols].notna().all(axis=1).to_numpy() & ~left.isin(right)


def _campaign_created_at(t: Tables) -> pd.Series:
    """Each invitation's campaign created_at (NaT when the campaign is unknown)."""
    campaigns = t["campaigns"].drop_duplicates("campaign_id")
    invitations = t["invitations"]
    positions = pd.Index(campaigns["campaign_id"]).get_indexer(invitations["campaign_id"])
    created = campaigns["created_at"].array.take(positions, allow_fill=True)
    return pd.Series(created, index=invitations.index)


def _response_mismatch(t: Tables) -> np.ndarray:
    inv = t["invitations"]
    known = inv["response"].isin(RESPONSES)
    return (known & (inv["responded_at"].isna() != (inv["response"] == "no_response"))).to_numpy()


def _fk(table: str, column: str, parent: str) -> CrossRule:
    return CrossRule(
        table,
        column,
        f"must be in {parent}",
        ((table, column), (parent, column)),
        lambda t: _in(t[table][column], t[parent][column]),
    )


_PAIR = ["campaign_id", "creator_id"]
_INV = "invitations"

CROSS_RULES: tuple[CrossRule, ...] = (
    _fk("follower_snapshots", "creator_id", "creators"),
    _fk("posts", "creator_id", "creators"),
    CrossRule(
        "campaigns",
        "start_at",
        "must be >= created_at",
        (("campaigns", "created_at"), ("campaigns", "start_at")),
        lambda t: (t["campaigns"]["start_at"] < t["campaigns"]["created_at"]).to_numpy(),
    ),
    CrossRule(
        "campaigns",
        "end_at",
        "must be > start_at",
        (("campaigns", "start_at"), ("campaigns", "end_at")),
        lambda t: (t["campaigns"]["end_at"] <= t["campaigns"]["start_at"]).to_numpy(),
    ),
    _fk(_INV, "campaign_id", "campaigns"),
    _fk(_INV, "creator_id", "creators"),
    CrossRule(
        _INV,
        "invited_at",
        "must be >= the campaign's created_at",
        (
            (_INV, "campaign_id"),
            (_INV, "invited_at"),
            ("campaigns", "campaign_id"),
            ("campaigns", "created_at"),
        ),
        lambda t: (t[_INV]["invited_at"] < _campaign_created_at(t)).to_numpy(),
    ),
    CrossRule(
        _INV,
        "responded_at",
        "must be null exactly when response is no_response",
        ((_INV, "response"), (_INV, "responded_at")),
        _response_mismatch,
    ),
    CrossRule(
        _INV,
        "responded_at",
        "must be >= invited_at",
        ((_INV, "invited_at"), (_INV, "responded_at")),
        lambda t: (t[_INV]["responded_at"] < t[_INV]["invited_at"]).to_numpy(),
    ),
    CrossRule(
        _INV,
        "posts_promised",
        "must be set when response is accepted",
        ((_INV, "response"), (_INV, "posts_promised")),
        lambda t: (
            (t[_INV]["response"] == "accepted") & t[_INV]["posts_promised"].isna()
        ).to_numpy(),
    ),
    CrossRule(
        "campaign_results",
        "/".join(_PAIR),
        "must be a row of invitations",
        tuple(("campaign_results", c) for c in _PAIR) + tuple((_INV, c) for c in _PAIR),
        lambda t: _pair_missing(t["campaign_results"], t[_INV], _PAIR),
    ),
)


# ---------------------------------------------------------------- part by part

# Tables that cross rules look up whole (the columns they need): the only ones held in
# memory whole while a directory is validated part by part.
_LOOKED_UP = {
    "creators": ("creator_id",),
    "campaigns": ("campaign_id", "created_at"),
    "invitations": _PAIR,
}


def is_partitioned(directory) -> bool:
    """True when some table of ``directory`` is a directory of Parquet parts."""
    paths = (table_path(directory, name) for name in TABLES)
    return any(path is not None and path.is_dir() for path in paths)


BATCH_ROWS = 2_000_000  # rows of a part checked at a time


def validate_parts(directory) -> tuple[list[Violation], dict[str, int]]:
    """Every contract violation of ``directory`` checked one Parquet part at a time, and
    each table's row count: the same lines as ``validate_tables`` on the whole tables.

    As with ``read_tables``, values that cannot be read as their column's type stop the
    checks: only such problems are reported then. Memory: BATCH_ROWS rows of one part at
    a time, plus the key columns of creators, campaigns and invitations and an 8-byte
    hash of every row's key (uniqueness across parts and batches).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return [Violation("", "", f"data directory not found: {directory}")], {}
    found, unreadable = _Merged(), _Merged()
    looked_up: dict[str, pd.DataFrame] = {}
    usable: set[tuple[str, str]] = set()
    cross: list[tuple[CrossRule, Violation]] = []
    rows: dict[str, int] = {}
    for name in TABLES:
        path = table_path(directory, name)
        if path is None:
            unreadable.add(Violation(name, "", MISSING_TABLE))
            continue
        good, pieces, hashes = set(COLUMNS[name]), [], []
        parts = part_paths(path)
        # uniqueness across parts or batches: by key hashes, below
        across = sum(part_batches(part, BATCH_ROWS) for part in parts) > 1
        for part in parts:
            part_hashes = []
            try:
                for frame in read_part_batches(part, name, BATCH_ROWS):
                    part_found, part_good = check_columns(frame, name)
                    found.extend(v for v in part_found if not (across and v.rule == UNIQUE))
                    good &= set(part_good)
                    if across:
                        part_hashes.append(_key_hashes(frame, name))
                    cross += [(rule, v) for rule, v in _part_cross(frame, name, looked_up, usable)]
                    if name in _LOOKED_UP:
                        pieces.append(frame[list(_LOOKED_UP[name])])
                    rows[name] = rows.get(name, 0) + len(frame)
                    del frame
            except InvalidData as err:
                unreadable.extend(err.violations)
                good = set()
                part_hashes = []
            hashes.append(np.concatenate(part_hashes) if part_hashes else np.empty(0, np.uint64))
        if not parts:
            unreadable.add(Violation(name, "", f"no Parquet parts in {path.name}/"))
        usable |= {(name, c) for c in good}
        if across and set(KEYS[name]) <= good:
            found.extend(_duplicates(parts, hashes, name))
        if name in _LOOKED_UP and pieces:
            looked_up[name] = pd.concat(pieces, ignore_index=True)
    if unreadable.violations():
        return unreadable.violations(), rows
    found.extend(v for rule, v in cross if all(need in usable for need in rule.needs))
    return found.violations(), rows


def _part_cross(
    frame: pd.DataFrame, name: str, looked_up: dict[str, pd.DataFrame], usable: set[tuple[str, str]]
):
    """(rule, violation) of the cross rules on one part of table ``name``: those whose
    other tables are already checked (the table's own columns are judged at the end)."""
    frames = {**looked_up, name: frame}
    for rule in CROSS_RULES:
        others = [need for need in rule.needs if need[0] != name]
        if rule.table != name or not all(need in usable for need in others):
            continue
        if not all(col in frame.columns for t, col in rule.needs if t == name):
            continue
        found = violation(frame, name, rule.column, rule.rule, rule.broken(frames))
        if found is not None:
            yield rule, found


def _key_hashes(frame: pd.DataFrame, name: str) -> np.ndarray:
    keys = list(KEYS[name])
    return pd.util.hash_pandas_object(frame[keys], index=False).to_numpy()


def _duplicates(parts: list[Path], hashes: list[np.ndarray], name: str) -> list[Violation]:
    """The uniqueness violation of a table's key across all its parts (rows whose key
    occurs more than once), with example ids read back from the parts."""
    every = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
    ordered = np.sort(every)  # memory: two copies of the hashes, not np.unique's inverse
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    if len(repeated) == 0:
        return []
    duplicated = np.flatnonzero(np.isin(every, repeated))
    starts = np.cumsum([0] + [len(h) for h in hashes])
    examples: list[str] = []
    for i, part in enumerate(parts):
        inside = duplicated[(duplicated >= starts[i]) & (duplicated < starts[i + 1])]
        if len(inside) and len(examples) < 5:
            frame = read_path(part, name)
            examples += example_ids_at(frame, name, inside[: 5 - len(examples)] - starts[i])
    return [Violation(name, "/".join(KEYS[name]), UNIQUE, len(duplicated), tuple(examples))]


class _Merged:
    """Violations merged by (table, column, rule): rows added up, the first 5 examples."""

    def __init__(self):
        self._by_key: dict[tuple[str, str, str], Violation] = {}

    def add(self, v: Violation) -> None:
        key = (v.table, v.column, v.rule)
        old = self._by_key.get(key)
        if old is not None:
            v = Violation(
                v.table, v.column, v.rule, old.rows + v.rows, (old.examples + v.examples)[:5]
            )
        self._by_key[key] = v

    def extend(self, violations) -> None:
        for v in violations:
            self.add(v)

    def violations(self) -> list[Violation]:
        return list(self._by_key.values())
