"""The index audit (``features.audit``) on every simulator scenario and size.

    .venv/bin/python benchmarks/audit_scenarios.py [--sizes 3000,10000] [--seed 100]

Prints one column per (scenario, size): each index's Spearman correlation with the trait
it names, the authenticity index's AUC for bought growth, and the gap between genuine
fast growers' median authenticity and genuine creators'. Scenario i uses seed + i, so
none of these marketplaces is the one the tests or the demo use.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from features.audit import audit_frame, audit_table
from marketplace.sim_world import SCENARIOS
from marketplace.simulate import SimConfig, simulate


def scenario_audits(sizes: list[int], seed: int) -> pd.DataFrame:
    columns = {}
    for i, name in enumerate(SCENARIOS):
        for n in sizes:
            tables, truth = simulate(SimConfig(creators=n, days=540, seed=seed + i, scenario=name))
            table = audit_table(audit_frame(tables, truth["creator_traits"]))
            table = table[table["measure"] != "median"]
            columns[f"{name} {n:,}"] = pd.Series(
                table["value"].to_numpy(), index=table["index"] + " " + table["measure"]
            )
            print(f"audited {name} at {n:,} creators", file=sys.stderr)
    return pd.DataFrame(columns)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000,10000", help="creators, comma-separated")
    parser.add_argument("--seed", type=int, default=100, help="seed of the first scenario")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(scenario_audits(sizes, args.seed).round(3).T.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
