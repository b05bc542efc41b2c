"""Our ranker against peers on the same features and split: ``python benchmarks/peers.py``.

For each simulated marketplace (``--creators``, ``--seeds``, ``--scenarios`` when the
simulator has them) the contract's time split is built once and every ranker is fitted
on its fit campaigns, early-stopped on its validation campaigns and scored on its test
campaigns (ndcg@10, gmv_capture@10, and ndcg@10 as a share of the oracle's):

- ``model``: ``training.run.train_on_pairs`` with the committed config (or ``--config``);
- ``lightgbm``: a plain LightGBM lambdarank reference (unconstrained, the committed
  parameters, early-stopped on validation);
- ``xgboost``: XGBoost ``rank:ndcg`` (labels: one grade per doubling of gmv, exponential
  gain, so the gain is close to linear in gmv as the metric's);
- ``catboost``: CatBoost ``YetiRank`` (label: gmv over the campaign's best gmv).

XGBoost and CatBoost are optional peers, not dependencies of the package: install them
in the venv by hand (``.venv/bin/pip install xgboost catboost``); a missing one is
skipped with a note. Figures are printed as a Markdown table (``--markdown FILE``
appends it to FILE).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.registry import FEATURE_NAMES  # noqa: E402
from marketplace.simulate import SimConfig, simulate  # noqa: E402
from training.config import load_config  # noqa: E402
from training.labels import grades  # noqa: E402
from training.metrics import evaluate  # noqa: E402
from training.model import fit_model  # noqa: E402
from training.run import oracle_scores, pairs_and_posts, split_pairs, train_on_pairs  # noqa: E402

PEERS = ("model", "lightgbm", "xgboost", "catboost")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def marketplace(creators: int, days: int, seed: int, scenario: str | None):
    """Tables and truth of a simulated marketplace (``scenario`` when the simulator has it)."""
    if scenario and "scenario" not in inspect.signature(SimConfig).parameters:
        raise SystemExit(f"error: this simulator has no scenarios (asked for {scenario})")
    extra = {"scenario": scenario} if scenario else {}
    return simulate(SimConfig(creators=creators, days=days, seed=seed, **extra))


def fit_xgboost(fit, valid, test, cfg) -> np.ndarray:
    import xgboost as xgb

    def matrix(frame):
        data = xgb.DMatrix(
            frame[list(FEATURE_NAMES)].to_numpy(dtype=float),
            label=grades(frame["campaign_id"], frame["gmv"], 30, 1),
        )
        data.set_group(frame.groupby("campaign_id", sort=False).size().to_numpy())
        return data

    params = {
        "objective": "rank:ndcg",
        "eval_metric": f"ndcg@{cfg.eval_at}",
        "eta": cfg.learning_rate,
        "max_depth": 6,
        "min_child_weight": 1,
        "subsample": cfg.bagging_fraction,
        "colsample_bytree": cfg.feature_fraction,
        "lambda": cfg.lambda_l2,
        "ndcg_exp_gain": True,
        "seed": cfg.seed,
        "nthread": cfg.num_threads,
        "tree_method": "hist",
    }
    train_set, valid_set = matrix(fit), matrix(valid)
    booster = xgb.train(
        params,
        train_set,
        num_boost_round=cfg.max_rounds,
        evals=[(valid_set, "valid")],
        early_stopping_rounds=cfg.early_stopping_rounds,
        verbose_eval=False,
    )
    return booster.predict(
        xgb.DMatrix(test[list(FEATURE_NAMES)].to_numpy(dtype=float)),
        iteration_range=(0, booster.best_iteration + 1),
    )


def fit_catboost(fit, valid, test, cfg) -> np.ndarray:
    from catboost import CatBoost, Pool

    def pool(frame):
        best = frame.groupby("campaign_id")["gmv"].transform("max").to_numpy()
        relevance = np.divide(
            frame["gmv"].to_numpy(), best, out=np.zeros(len(frame)), where=best > 0
        )
        return Pool(
            frame[list(FEATURE_NAMES)].to_numpy(dtype=float),
            label=relevance,
            group_id=frame["campaign_id"].to_numpy(),
        )

    model = CatBoost(
        {
            "loss_function": "YetiRank",
            "eval_metric": f"NDCG:top={cfg.eval_at}",
            "iterations": cfg.max_rounds,
            "learning_rate": cfg.learning_rate,
            "depth": 6,
            "random_seed": cfg.seed,
            "thread_count": cfg.num_threads,
            "od_type": "Iter",
            "od_wait": cfg.early_stopping_rounds,
            "use_best_model": True,
            "verbose": False,
            "allow_writing_files": False,
        }
    )
    model.fit(pool(fit), eval_set=pool(valid))
    return model.predict(test[list(FEATURE_NAMES)].to_numpy(dtype=float))


def compare(tables, truth, cfg, peers) -> list[dict]:
    """One row per ranker: ndcg@10, its share of the oracle's, gmv_capture@10, seconds."""
    pairs, posts, _ = pairs_and_posts(tables)  # no drift reference: nothing is served
    _, (fit, valid, test) = split_pairs(tables, cfg, pairs)
    scores, seconds = {}, {}
    for peer in peers:
        started = time.perf_counter()
        try:
            if peer == "model":
                result = train_on_pairs(tables, pairs, posts, cfg)
                scores[peer] = result.test["score_model"].to_numpy()
            elif peer == "lightgbm":
                plain = dataclasses.replace(cfg, monotone=False)
                fitted = fit_model(fit, valid, list(FEATURE_NAMES), plain, "lambdarank")
                scores[peer] = fitted.booster.predict(
                    test[list(FEATURE_NAMES)], num_iteration=fitted.best_iteration
                )
            elif peer == "xgboost":
                scores[peer] = fit_xgboost(fit, valid, test, cfg)
            elif peer == "catboost":
                scores[peer] = fit_catboost(fit, valid, test, cfg)
        except ImportError as err:
            log(f"{peer}: skipped ({err}); install it in the venv by hand to compare")
            continue
        seconds[peer] = time.perf_counter() - started
        log(f"{peer}: fitted in {seconds[peer]:.1f}s")
    scores["oracle"] = oracle_scores(test, truth["expected_gmv"])
    metrics = evaluate(
        test["campaign_id"].to_numpy(), test["gmv"].to_numpy(), scores, (cfg.eval_at,)
    )
    ndcg, capture = metrics[f"ndcg@{cfg.eval_at}"], metrics[f"gmv_capture@{cfg.eval_at}"]
    return [
        {
            "ranker": name,
            "ndcg@10": ndcg[name],
            "of_oracle": ndcg[name] / ndcg["oracle"],
            "gmv_capture@10": capture[name],
            "seconds": seconds.get(name, np.nan),
            "test_campaigns": metrics["test_queries"],
        }
        for name in scores
    ]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/peers.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--creators", type=int, nargs="+", default=[3000], metavar="N")
    parser.add_argument("--days", type=int, default=540)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11], metavar="S")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=[None],
        metavar="NAME",
        help="simulator scenarios (default: the simulator's default)",
    )
    parser.add_argument(
        "--peers", default=",".join(PEERS), help=f"comma-separated rankers among {', '.join(PEERS)}"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML overriding the training config for every ranker",
    )
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="append the table to FILE")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config)
    peers = [p for p in args.peers.split(",") if p]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        raise SystemExit(
            f"error: --peers: unknown {', '.join(unknown)}; choose from {', '.join(PEERS)}"
        )
    rows = []
    for scenario in args.scenarios:
        for creators in args.creators:
            for seed in args.seeds:
                log(f"marketplace: {scenario or 'default'}, {creators:,} creators, seed {seed} ...")
                tables, truth = marketplace(creators, args.days, seed, scenario)
                for row in compare(tables, truth, cfg, peers):
                    rows.append(
                        {
                            "scenario": scenario or "default",
                            "creators": creators,
                            "seed": seed,
                            **row,
                        }
                    )
    table = pd.DataFrame(rows)
    text = markdown(table)
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as handle:
            handle.write("\n" + text + "\n")
    return 0


def markdown(table: pd.DataFrame) -> str:
    """``table`` as a Markdown table, floats to 4 decimals."""
    cells = [
        [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
        for row in table.itertuples(index=False)
    ]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


if __name__ == "__main__":
    sys.exit(main())
