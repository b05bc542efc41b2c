"""LightGBM lambdarank with and without monotone constraints / stronger regularisation,
on the walk-forward folds: ``python benchmarks/constraints.py``.

One simulated marketplace (``--creators``, ``--seed``, ``--scenario``); the three
walk-forward folds of ``training`` (``training.run.fold_splits``); for each variant a
lambdarank model per fold (the committed config otherwise, one thread), early-stopped
on the fold's validation campaigns. Printed per variant: the mean ndcg@10 over the
folds' test campaigns, the same as a share of the oracle's, and the last fold's share
alone (the contract's test period: three times fewer campaigns, three times the noise).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.build import index_history  # noqa: E402
from features.pairs import training_pairs  # noqa: E402
from features.registry import FEATURE_NAMES  # noqa: E402
from marketplace.simulate import SimConfig, simulate  # noqa: E402
from training.config import load_config  # noqa: E402
from training.metrics import mean_ndcg  # noqa: E402
from training.model import fit_model  # noqa: E402
from training.run import fold_splits, oracle_scores, split_parts  # noqa: E402

VARIANTS = {
    "plain": dict(monotone=False),
    "monotone": dict(monotone=True),
    "monotone_regularised": dict(monotone=True, min_data_in_leaf=100, lambda_l2=10.0),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/constraints.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--creators", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--scenario", default="default")
    args = parser.parse_args(argv)
    tables, truth = simulate(
        SimConfig(creators=args.creators, seed=args.seed, scenario=args.scenario)
    )
    pairs = training_pairs(tables, index_history(tables))
    base = dataclasses.replace(load_config(), num_threads=1, objectives=("lambdarank",))
    parts = [split_parts(pairs, s) for s in fold_splits(tables, base, pairs, base.backtest_folds)]
    features = list(FEATURE_NAMES)
    print(
        "| scenario | creators | variant | ndcg@10 (folds) | of_oracle (folds) | of_oracle (last fold) |"
    )
    print("|---|---|---|---|---|---|")
    for name, values in VARIANTS.items():
        cfg = dataclasses.replace(base, **values)
        model, oracle = [], []
        for fit, valid, test in parts:
            fitted = fit_model(fit, valid, features, cfg, "lambdarank")
            query, gain = test["campaign_id"].to_numpy(), test["gmv"].to_numpy()
            model.append(
                mean_ndcg(
                    query,
                    gain,
                    fitted.booster.predict(test[features], num_iteration=fitted.best_iteration),
                    10,
                )
            )
            oracle.append(mean_ndcg(query, gain, oracle_scores(test, truth["expected_gmv"]), 10))
        print(
            f"| {args.scenario} | {args.creators} | {name} | {np.mean(model):.4f} | "
            f"{np.mean(model) / np.mean(oracle):.4f} | {model[-1] / oracle[-1]:.4f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
