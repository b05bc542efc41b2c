"""Reading the store with DuckDB (embedded, no server).

``open_store`` checks the manifest against the files once; then every question is one
query on the files of the days and markets it needs (the manifest names them, so a day
being written or dropped is never half seen):

- ``candidates``: a brief's candidates (a day, a market, ``followers >= min_followers``)
  with the brief's category features joined, ordered by creator_id: the pairs and
  features serving's ``explained_top`` takes;
- ``creator_days``: one creator's rows in one category on every stored day (a creator
  page's history);
- ``creator_directory``: every creator's market and declared category;
- ``targets``: the counterfactual targets of a market and category on a day.

A connection is not shared between threads: every call takes its own cursor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features.indices import HISTORY_INPUTS, index_name
from features.registry import FAMILIES, FEATURE_NAMES, features_of
from marketplace.contract import STRING_DTYPE
from store.layout import StoreError, check_files, market_file, read_manifest, registry_digest
from store.snapshot import CATEGORY_COLUMNS, OTHER

INDEX_COLUMNS = tuple(index_name(f) for f in FAMILIES)


@dataclass
class Store:
    """An opened store: its folder, manifest and a DuckDB connection."""

    path: Path
    manifest: dict
    con: duckdb.DuckDBPyConnection = field(repr=False)

    @property
    def days(self) -> list[str]:
        """The stored days, oldest first (``YYYY-MM-DD``)."""
        return sorted(self.manifest["days"])

    def markets(self, day: str) -> list[str]:
        """The markets with candidates on ``day``."""
        return sorted(self.manifest["days"][day]["markets"])

    def categories(self, day: str) -> list[str]:
        """The data's categories on ``day``."""
        return list(self.manifest["days"][day]["categories"])

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own for this call (DuckDB connections are not thread-safe)."""
        return self.con.cursor()


def open_store(path) -> Store:
    """The store at ``path``, checked: StoreError (one line) when it has no manifest, no
    day, another feature registry, or a day whose files are missing, unreadable or
    disagree with the manifest's row counts."""
    path = Path(path)
    manifest = read_manifest(path)
    if not manifest["days"]:
        raise StoreError(f"{path}: the store holds no day yet (python -m store build)")
    if manifest.get("registry_digest") != registry_digest():
        raise StoreError(
            f"{path}: built with another feature registry ({manifest.get('registry_digest')}; "
            f"this code's is {registry_digest()}): rebuild it with python -m store build"
        )
    check_files(path, manifest)
    con = duckdb.connect(config={"enable_object_cache": True})
    return Store(path=path, manifest=manifest, con=con)


def stored_day(store: Store, as_of: pd.Timestamp) -> str:
    """The stored day of an as_of (UTC midnight of a stored day); StoreError naming the
    nearest stored days otherwise."""
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    day = as_of.strftime("%Y-%m-%d")
    if as_of == as_of.normalize() and day in store.manifest["days"]:
        return day
    return _not_stored(store, as_of)


def _not_stored(store: Store, as_of: pd.Timestamp) -> str:
    days = pd.to_datetime(pd.Series(store.days)).dt.tz_localize("UTC")
    earlier, later = days[days < as_of], days[days > as_of]
    near = [d.strftime("%Y-%m-%d") for d in (earlier.max(), later.min()) if not pd.isna(d)]
    raise StoreError(
        f"as_of {as_of.isoformat()}: not a stored day (nearest stored: {' and '.join(near)}; "
        "a stored day D is as of D 00:00 UTC)"
    )


def category_key(store: Store, day: str, category: str) -> str:
    """The category whose stored rows a question in ``category`` reads on ``day``: itself
    when the day knows it, else the unknown-category row (OTHER)."""
    return category if category in store.manifest["days"][day]["categories"] else OTHER


def joined_candidates(
    store: Store, day: str, market: str, where: str, params: dict, extra: str = ""
) -> pd.DataFrame:
    """One query over a market's two files of ``day``: every creator column joined with
    its category row (``c`` the creators file, ``k`` the categories file), the rows
    ``where`` keeps (``params`` its parameters), with ``extra`` selected columns."""
    files = [str(market_file(store.path, day, market, t)) for t in ("creators", "categories")]
    return (
        store.cursor()
        .execute(
            f"SELECT * EXCLUDE (k.creator_id, k.category){extra} FROM read_parquet($c) c "
            f"JOIN read_parquet($k) k ON c.creator_id = k.creator_id WHERE {where}",
            {"c": files[0], "k": files[1], **params},
        )
        .df()
    )


def candidates(
    store: Store, day: str, market: str, category: str, min_followers: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A brief's candidates on a stored day: (``pairs`` with brief 0, creator_id and
    followers; their features, the registry's columns with commission_rate NaN; their
    stored indices, among ALL the market's candidates), ordered by creator_id."""
    if market not in store.manifest["days"][day]["markets"]:
        return _no_candidates()
    frame = joined_candidates(
        store,
        day,
        market,
        "k.category = $category AND c.followers >= $min ORDER BY c.creator_id",
        {"category": category_key(store, day, category), "min": int(min_followers)},
    )
    return candidate_frames(frame)


def candidate_rows(
    store: Store, day: str, market: str, category: str, creator_ids
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Some candidates of a stored day (``creator_ids``, all candidates of ``market``
    that day) as ``candidates`` gives them, in the order of ``creator_ids``: a brief's
    top rows, read without the others."""
    ids = [str(i) for i in creator_ids]
    if not ids:
        return _no_candidates()
    frame = joined_candidates(
        store,
        day,
        market,
        "k.category = $category AND c.creator_id IN (SELECT unnest($ids)) "
        "AND k.creator_id IN (SELECT unnest($ids))",
        {"category": category_key(store, day, category), "ids": ids},
    )
    order = pd.Index(frame["creator_id"].astype(str)).get_indexer(ids)
    if (order < 0).any():
        missing = ids[int(np.flatnonzero(order < 0)[0])]
        raise StoreError(f"{store.path}: creator {missing} is not a candidate of {market} on {day}")
    return candidate_frames(frame.iloc[order].reset_index(drop=True))


# what family_indices reads: every family's directed features and the history rules' inputs
INDEX_INPUTS = tuple(
    dict.fromkeys(
        [f.name for fam in FAMILIES for f in features_of(fam) if f.direction != 0]
        + list(HISTORY_INPUTS)
    )
)


def index_inputs(
    store: Store, day: str, market: str, category: str, min_followers: int = 0
) -> pd.DataFrame:
    """The columns ``features.indices.family_indices`` reads (``INDEX_INPUTS``) of the
    candidates ``candidates`` gives, in its order (float64). Both files are read in
    their order (creator_id) without a join: a brief's whole market in a fraction of
    the time."""
    if market not in store.manifest["days"][day]["markets"]:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in INDEX_INPUTS})
    files = {t: str(market_file(store.path, day, market, t)) for t in ("creators", "categories")}
    inside = [c for c in INDEX_INPUTS if c in CATEGORY_COLUMNS]
    outside = [c for c in INDEX_INPUTS if c not in inside]
    read = store.cursor().execute
    creators = read(
        f"SELECT followers, {_quoted(outside)} FROM read_parquet($f)", {"f": files["creators"]}
    ).fetchnumpy()
    rows = read(
        f"SELECT creator_id, {_quoted(inside)} FROM read_parquet($f) WHERE category = $category",
        {"f": files["categories"], "category": category_key(store, day, category)},
    ).fetchnumpy()
    if len(rows["creator_id"]) != len(creators["followers"]) or not _ascending(rows["creator_id"]):
        raise StoreError(f"{files['categories']}: not one row per candidate in creator_id order")
    keep = np.asarray(creators["followers"]) >= int(min_followers)
    found = {**creators, **rows}
    return pd.DataFrame({c: fetched_floats(found[c])[keep] for c in INDEX_INPUTS})


def fetched_floats(values) -> np.ndarray:
    """A fetched column as float64, NULL as NaN (DuckDB's numpy columns with NULLs are
    masked arrays whose data under the mask is not NaN)."""
    return np.ma.filled(np.ma.asarray(values).astype("float64"), np.nan)


def _quoted(columns) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _ascending(values) -> bool:
    values = np.asarray(values, dtype=object)
    return bool(len(values) < 2 or (values[1:] > values[:-1]).all())


def _no_candidates() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return candidate_frames(
        pd.DataFrame(columns=["creator_id", "followers", *FEATURE_NAMES, *INDEX_COLUMNS])
    )


def candidate_frames(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A query's candidate rows (creator_id, followers, the features, the stored indices)
    as (pairs with brief 0, features with the registry's columns, indices), row for row."""
    pairs = pd.DataFrame(
        {
            "brief": np.zeros(len(frame), np.int64),
            "creator_id": frame["creator_id"].astype(STRING_DTYPE).reset_index(drop=True),
            "followers": frame["followers"].to_numpy(np.int64),
        }
    )
    features = frame.reindex(columns=FEATURE_NAMES).astype("float64").reset_index(drop=True)
    indices = frame[list(INDEX_COLUMNS)].astype("float64").reset_index(drop=True)
    return pairs, features, indices


def creator_days(store: Store, creator_id: str, market: str, category: str) -> pd.DataFrame:
    """The creator's rows on every stored day it was a candidate in ``market``: ``day``
    (UTC midnight), ``followers``, the features (commission_rate NaN) and the stored
    indices in ``category``, oldest first. Two queries (its creator rows, its category
    rows) over the days' files, each file pruned to the row group holding its id."""
    columns = ["day", "followers", *FEATURE_NAMES, *INDEX_COLUMNS]
    days = [d for d in store.days if market in store.manifest["days"][d]["markets"]]
    if not days:
        return pd.DataFrame(columns=columns)

    def rows(table: str, where: str, params: dict) -> pd.DataFrame:
        files = [str(market_file(store.path, d, market, table)) for d in days]
        return (
            store.cursor()
            .execute(
                "SELECT * EXCLUDE (market) FROM read_parquet($f, hive_partitioning = true, "
                f"hive_types = {{'day': VARCHAR}}) WHERE creator_id = $id{where}",
                {"f": files, "id": creator_id, **params},
            )
            .df()
        )

    creators = rows("creators", "", {})
    categories = rows(
        "categories", " AND category IN ($category, $other)", {"category": category, "other": OTHER}
    )
    wanted = categories["day"].map(lambda d: category_key(store, d, category))
    categories = categories[categories["category"].astype(str) == wanted.astype(str)]
    frame = creators.merge(
        categories.drop(columns=["creator_id", "category"]), on="day", how="inner"
    ).sort_values("day")
    frame["day"] = pd.to_datetime(frame["day"]).dt.tz_localize("UTC")
    return frame.reset_index(drop=True).reindex(columns=columns)


def creator_directory(store: Store, days: list[str] | None = None) -> pd.DataFrame:
    """Every creator of the stored ``days`` (default: all): market and primary_category,
    indexed by creator_id (sorted)."""
    files = [
        str(market_file(store.path, day, market, "creators"))
        for day in (store.days if days is None else days)
        for market in store.markets(day)
    ]
    frame = (
        store.cursor()
        .execute(
            "SELECT creator_id, any_value(market_of) AS market, "
            "any_value(primary_category) AS primary_category FROM "
            "(SELECT creator_id, primary_category, regexp_extract(filename, 'market=([^/]+)', 1) "
            "AS market_of FROM read_parquet($files, filename = true)) "
            "GROUP BY creator_id ORDER BY creator_id",
            {"files": files},
        )
        .df()
    )
    return frame.astype(STRING_DTYPE).set_index("creator_id")


def targets(store: Store, day: str, market: str, category: str) -> pd.Series:
    """The counterfactual target of every feature with a family (NaN without peers)."""
    if market not in store.manifest["days"][day]["markets"]:
        return pd.Series(np.nan, index=list(FEATURE_NAMES), dtype=float)
    frame = (
        store.cursor()
        .execute(
            "SELECT feature, target FROM read_parquet($t) WHERE category = $category",
            {
                "t": str(market_file(store.path, day, market, "targets")),
                "category": category_key(store, day, category),
            },
        )
        .df()
    )
    return pd.Series(frame["target"].to_numpy(float), index=frame["feature"].astype(str))
