"""What a perfect expected-sales model reaches on the calibration target (issue 18).

    .venv/bin/python benchmarks/sales_reach.py DATA [DATA ...] [--config TOML]

For each simulated data directory (with the simulator's ``DATA/truth``), takes the test
campaigns of the contract's time split (the training config's ``test_fraction``), their
(campaign, invitee) rows and realised gmv, and uses the simulator's own expected gmv of
each row as the prediction: no model can know more. Prints realised / expected gmv by
decile of expected gmv (``training.sales.decile_ratios``, as the training run's
``sales_calibration``) and how many deciles lie within 0.8-1.25. Where even this misses
the band, the miss is noise in the realised sales of that many rows, not a fault of any
model. Reads the data; trains and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from marketplace.cli import UserError  # noqa: E402
from marketplace.contract import InvalidData  # noqa: E402
from marketplace.io import read_table  # noqa: E402
from training.config import load_config  # noqa: E402
from training.sales import CALIBRATION_BAND, decile_ratios, deciles_within  # noqa: E402
from training.split import time_split  # noqa: E402
from training.stage import read_truth  # noqa: E402


def test_rows(data: Path, test_fraction: float, validation_fraction: float) -> pd.DataFrame:
    """campaign_id, creator_id, gmv (0 where nothing sold) and expected_gmv (the truth)
    of every invitation of the test campaigns of ``data``."""
    campaigns = read_table(data, "campaigns")
    test = time_split(campaigns, test_fraction, validation_fraction).test
    keys = ["campaign_id", "creator_id"]
    invited = read_table(data, "invitations")[keys]
    invited = invited[invited["campaign_id"].isin(test)].astype(str)
    results = read_table(data, "campaign_results")[[*keys, "gmv"]].astype({k: str for k in keys})
    truth = read_truth(data / "truth")
    rows = invited.merge(results, on=keys, how="left").merge(truth, on=keys, how="left")
    if rows["expected_gmv"].isna().any():
        raise UserError(f"{data / 'truth'}: expected_gmv lacks test invitations")
    return rows.fillna({"gmv": 0.0})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path, help="simulated data directories")
    parser.add_argument("--config", type=Path, help="training config (default: the default)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    for data in args.data:
        started = time.perf_counter()
        try:
            rows = test_rows(data, cfg.test_fraction, cfg.validation_fraction)
        except (UserError, InvalidData) as err:
            print(f"error: {data}: {err}", file=sys.stderr)
            return 2
        expected = rows["expected_gmv"].to_numpy(dtype=float)
        ratios = decile_ratios(expected, rows["gmv"].to_numpy(dtype=float))
        low, high = CALIBRATION_BAND
        print(
            f"{data}: {rows['campaign_id'].nunique():,} test campaigns, {len(rows):,} rows; "
            f"realised / true expected gmv by decile: "
            f"{' '.join(f'{r:.2f}' for r in ratios.values())}; "
            f"{deciles_within(ratios)} of {len(ratios)} within {low}-{high}; overall "
            f"{rows['gmv'].sum() / max(expected.sum(), 1e-12):.2f} "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
