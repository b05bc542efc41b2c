"""Briefs: the requests for partner lists, read from CSV or Parquet and checked.

A brief (data contract, "partner list") is one row: ``brief_id`` (string, unique),
``market``, ``category``, ``as_of`` (timestamp; without a zone it is UTC), and optionally
``top_k`` (int >= 1, default 50), ``min_followers`` (int >= 0, default 0 = no minimum)
and ``commission_rate`` (in [0, 1]; missing = the model's training median, filled in
when scoring). A missing optional column or an empty cell takes the default. Unknown
extra columns are ignored.

``check_briefs`` turns any such frame into the canonical one (exactly ``BRIEF_COLUMNS``,
fixed dtypes, file order kept) or raises :class:`BriefError` with one line naming the
source, the column, the rule and a few offending briefs. It is idempotent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from marketplace.contract import MARKET_PATTERN, STRING_DTYPE, TIMESTAMP_DTYPE

REQUIRED_COLUMNS = ("brief_id", "market", "category", "as_of")
OPTIONAL_COLUMNS = ("top_k", "min_followers", "commission_rate")
BRIEF_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
DEFAULT_TOP_K = 50
DEFAULT_MIN_FOLLOWERS = 0
BRIEF_SUFFIXES = (".csv", ".parquet")
EXAMPLES = 3


class BriefError(ValueError):
    """A briefs file or frame that breaks the contract; the message is one line."""


def read_briefs(path) -> pd.DataFrame:
    """The checked briefs of a ``.csv`` or ``.parquet`` file (see ``check_briefs``)."""
    path = Path(path)
    if path.suffix.lower() not in BRIEF_SUFFIXES:
        raise BriefError(f"{path}: briefs file must end in .csv or .parquet")
    if not path.is_file():
        raise BriefError(f"{path}: briefs file not found")
    try:
        if path.suffix.lower() == ".csv":
            # Everything as text: ids like "007" stay strings, columns are typed below.
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        else:
            raw = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException, pd.errors.ParserError) as err:
        text = str(err).strip()
        reason = text.splitlines()[0] if text else type(err).__name__
        raise BriefError(f"{path}: unreadable briefs file ({reason})") from None
    return check_briefs(raw, source=str(path))


def check_briefs(frame: pd.DataFrame, source: str = "briefs") -> pd.DataFrame:
    """The canonical briefs frame: ``BRIEF_COLUMNS`` with dtypes str (ids, market,
    category), datetime64[us, UTC] (as_of), int64 (top_k, min_followers) and float64
    (commission_rate, NaN = the model's default); a RangeIndex in the input's order.

    Raises BriefError on a missing column, a null, empty or duplicated brief_id, a market
    that is not a 2-letter upper-case code, a null category, an unreadable as_of, a
    top_k below 1, a negative min_followers or a commission_rate outside [0, 1].
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise BriefError(f"{source}: missing column(s) {', '.join(missing)}")
    frame = frame.reset_index(drop=True)
    check = _Checker(frame, source)
    brief_id = check.text("brief_id")
    check.rule("brief_id", brief_id.isna() | (brief_id == ""), "must not be empty", by_row=True)
    check.ids = brief_id
    duplicated = brief_id.duplicated(keep=False)
    if duplicated.any():
        names = ", ".join(dict.fromkeys(brief_id[duplicated]))
        raise BriefError(
            f"{source}: column brief_id: must be unique (duplicated: {_shorten(names)})"
        )
    market = check.text("market")
    check.rule(
        "market",
        ~market.str.fullmatch(MARKET_PATTERN).fillna(False).astype(bool),
        "must be an upper-case 2-letter country code",
    )
    category = check.text("category")
    check.rule("category", category.isna() | (category == ""), "must not be empty")
    out = pd.DataFrame(
        {
            "brief_id": brief_id,
            "market": market,
            "category": category,
            "as_of": check.timestamp("as_of"),
            "top_k": check.integer("top_k", DEFAULT_TOP_K, minimum=1),
            "min_followers": check.integer("min_followers", DEFAULT_MIN_FOLLOWERS, minimum=0),
            "commission_rate": check.rate("commission_rate"),
        }
    )
    return out


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value) -> str:
    if isinstance(value, str):
        return repr(value)
    return "empty" if pd.isna(value) else str(value)


class _Checker:
    """Column conversions that raise BriefError naming source, column, rule, examples."""

    def __init__(self, frame: pd.DataFrame, source: str):
        self.frame, self.source = frame, source
        self.ids: pd.Series | None = None

    def rule(
        self, column: str, bad, rule: str, by_row: bool = False, show_values: bool = False
    ) -> None:
        bad = np.asarray(bad, dtype=bool)
        if not bad.any():
            return
        rows = np.flatnonzero(bad)
        examples = []
        for row in rows[:EXAMPLES]:
            label = (
                f"row {row + 1}" if by_row or self.ids is None else f"brief {self.ids.iloc[row]}"
            )
            if show_values:
                label += f": {_show(self.frame[column].iloc[row])}"
            examples.append(label)
        more = f" and {len(rows) - EXAMPLES} more" if len(rows) > EXAMPLES else ""
        raise BriefError(
            f"{self.source}: column {column}: {rule} ({_shorten(', '.join(examples))}{more})"
        )

    def text(self, column: str) -> pd.Series:
        values = self.frame[column]
        if pd.api.types.is_integer_dtype(values.dtype):
            values = values.astype("Int64").astype(STRING_DTYPE)
        elif values.dtype == object:
            is_text = values.map(lambda v: isinstance(v, str)).astype(bool)
            not_text = values.notna() & ~is_text
            self.rule(column, not_text, "must be a string", show_values=True)
        elif not pd.api.types.is_string_dtype(values.dtype):
            raise BriefError(
                f"{self.source}: column {column}: must be a string (found {values.dtype})"
            )
        return values.astype(STRING_DTYPE)

    def timestamp(self, column: str) -> pd.Series:
        values = self.frame[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            parsed = values.dt.tz_convert("UTC")
        elif values.dtype.kind == "M":
            parsed = values.dt.tz_localize("UTC")
        elif pd.api.types.is_string_dtype(values.dtype) or values.dtype == object:
            parsed = pd.to_datetime(
                values.astype(STRING_DTYPE).str.strip(), utc=True, format="ISO8601", errors="coerce"
            )
        else:
            raise BriefError(
                f"{self.source}: column {column}: must be a timestamp (found {values.dtype})"
            )
        self.rule(
            column,
            parsed.isna(),
            "must be a timestamp (ISO-8601, UTC when no zone)",
            show_values=True,
        )
        return parsed.astype(TIMESTAMP_DTYPE)

    def _numbers(self, column: str, kind: str) -> pd.Series | None:
        if column not in self.frame.columns:
            return None
        values = self.frame[column]
        if pd.api.types.is_bool_dtype(values.dtype):
            raise BriefError(f"{self.source}: column {column}: must be {kind}")
        if pd.api.types.is_numeric_dtype(values.dtype):
            present = values.notna().to_numpy()
            numbers = values.astype("Float64").astype(float)
        else:  # text: an empty cell is a missing value
            text = values.astype(STRING_DTYPE).str.strip()
            present = (text.notna() & (text != "")).to_numpy()
            numbers = pd.to_numeric(text.where(present), errors="coerce").astype(float)
        self.rule(
            column, present & ~np.isfinite(numbers.to_numpy()), f"must be {kind}", show_values=True
        )
        return numbers

    def integer(self, column: str, default: int, minimum: int) -> pd.Series:
        numbers = self._numbers(column, "an integer")
        if numbers is None:
            return pd.Series(default, index=self.frame.index, dtype="int64")
        present = numbers.notna()
        self.rule(
            column, present & (numbers != np.floor(numbers)), "must be an integer", show_values=True
        )
        self.rule(column, present & (numbers < minimum), f"must be >= {minimum}", show_values=True)
        return numbers.fillna(default).astype("int64")

    def rate(self, column: str) -> pd.Series:
        numbers = self._numbers(column, "a number")
        if numbers is None:
            return pd.Series(np.nan, index=self.frame.index, dtype="float64")
        self.rule(
            column,
            numbers.notna() & ((numbers < 0) | (numbers > 1)),
            "must be in [0, 1]",
            show_values=True,
        )
        return numbers.astype("float64")
