"""explorer.creators: a creator's profile agrees with the partner list, and the
counterfactuals move only what is worse for the brand."""

from __future__ import annotations

from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

from explorer.creators import moved_features
from features.registry import FAMILIES, features_of
from serving.partner_list import INDEX_COLUMNS
from tests.worlds import brief_json
from training.model import CONTRIB_COLUMNS

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def test_creator_profile_agrees_with_the_partner_list(explorer_world):
    brief = brief_json(explorer_world, top_k=5)
    row = explorer_world.client.post("/api/partner-lists", json=brief).json()["rows"][2]
    answer = explorer_world.client.get(
        f"/api/creators/{quote(row['creator_id'], safe='')}",
        params={"category": explorer_world.category, "as_of": brief["as_of"]},
    )
    assert answer.status_code == 200, answer.text
    p = answer.json()
    assert p["is_candidate"] and p["market"] == explorer_world.market
    assert p["score"] == pytest.approx(row["score"], rel=1e-12)
    assert p["raw_score"] == pytest.approx(row["raw_score"], rel=1e-12)
    for c in INDEX_COLUMNS:
        if row[c] is None:
            assert p["indices"][c] is None
        else:
            assert p["indices"][c] == pytest.approx(row[c], rel=1e-12)
    for c in CONTRIB_COLUMNS:
        assert p["contributions"][c] == pytest.approx(row[c], rel=1e-9, abs=1e-12)
    assert sum(p["contributions"].values()) == pytest.approx(p["raw_score"], abs=1e-9)
    steps = p["waterfall"]
    assert steps[0]["step"] == "base" and steps[-1]["step"] == "raw_score"
    assert steps[-2]["end"] == pytest.approx(p["raw_score"], abs=1e-9)
    assert sorted(c["family"] for c in p["counterfactuals"]) == sorted(FAMILIES)
    for c in p["counterfactuals"]:
        assert c["change"] == pytest.approx(c["score"] - p["score"], abs=1e-9)
    assert 1 < len(p["months"]) <= 6 and p["months"][-1]["score"] == pytest.approx(p["score"])
    assert [m["as_of"] for m in p["months"]] == sorted(m["as_of"] for m in p["months"])


def test_counterfactual_moves_only_what_is_worse_for_the_brand():
    family = next(f for f in FAMILIES if {x.direction for x in features_of(f)} >= {1, -1})
    names = [x.name for x in features_of(family)]
    directions = {x.name: x.direction for x in features_of(family)}
    targets = pd.Series({n: 10.0 for n in names})
    row = pd.Series({n: 5.0 for n in names} | {"other_feature": 1.0})
    moved = moved_features(row, family, targets)
    for n in names:  # 5 is worse than 10 when higher is better, better when lower is
        assert moved[n] == (5.0 if directions[n] < 0 else 10.0)
    row[names[0]] = np.nan
    assert moved_features(row, family, targets)[names[0]] == 10.0
    assert moved["other_feature"] == 1.0


def test_counterfactual_to_own_values_changes_nothing(explorer_world):
    from explorer.creators import Standing, counterfactuals

    ex = explorer_world.explorer
    brief = brief_json(explorer_world, top_k=1)
    row = explorer_world.client.post("/api/partner-lists", json=brief).json()["rows"][0]
    profile = explorer_world.client.get(
        f"/api/creators/{quote(row['creator_id'], safe='')}",
        params={"category": explorer_world.category, "as_of": brief["as_of"]},
    ).json()
    features = pd.Series(profile["features"], dtype=float)
    standing = Standing(
        raw=np.array([profile["raw_score"] + 1.0]),
        creator_ids=np.array(["someone else"], dtype=object),
        creator_id=row["creator_id"],
        market=profile["market"],
        category=profile["category"],
    )
    same = counterfactuals(ex.scorer, features, features, standing)
    assert all(c["change"] == pytest.approx(0.0, abs=1e-12) for c in same)
    assert all(c["rank"] == c["rank_before"] == 2 and c["outcome"] == "no change" for c in same)
    assert all(c["expected_gmv"] == pytest.approx(c["expected_gmv_before"]) for c in same)


def test_a_creator_who_is_not_a_candidate_that_day_has_no_score(explorer_world):
    ex = explorer_world.explorer
    from store.read import candidates

    first = set(
        candidates(ex.store, ex.store.days[0], explorer_world.market, "beauty")[0]["creator_id"]
    )
    last = set(
        candidates(ex.store, ex.store.days[-1], explorer_world.market, "beauty")[0]["creator_id"]
    )
    gone = sorted(first - last)
    assert gone, "the world has a creator active on the first stored day but not the last"
    answer = explorer_world.client.get(f"/api/creators/{quote(gone[0], safe='')}")
    assert answer.status_code == 200
    p = answer.json()
    assert not p["is_candidate"] and p["score"] is None and p["counterfactuals"] == []
    assert all(v is None for v in p["indices"].values())
    assert p["months"] and p["months"][0]["as_of"][:10] == ex.store.days[0]
    page = explorer_world.client.get(f"/creators/{quote(gone[0], safe='')}")
    assert page.status_code == 200 and "not a candidate that day" in page.text
