"""The training configuration: a typed dataclass loaded from TOML, unknown keys rejected.

The committed default is ``training/default.toml``, the one place the default values are
written; a user's file overrides any subset of its keys. The seed reaches LightGBM and
every random draw.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).with_name("default.toml")
OBJECTIVES = ("lambdarank", "rank_xendcg")


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class TrainConfig:
    """The training config (seed, split, LightGBM, labels, backtest, gate), checked on
    creation. Its values are written once, in ``default.toml``: ``load_config()``; the
    fields have no defaults of their own."""

    seed: int
    # time split (data contract): test = last test_fraction of campaigns by created_at;
    # validation = the last validation_fraction of the campaigns that ended before it.
    test_fraction: float
    validation_fraction: float
    # labels: per-campaign grades, steps_per_doubling grades for each doubling of gmv,
    # the campaign's best gmv at max_grade; label_gain[g] = 2^(g / steps) - 1.
    max_grade: int
    grade_steps_per_doubling: int
    # LightGBM
    objectives: tuple[str, ...]
    learning_rate: float
    num_leaves: int
    min_data_in_leaf: int
    feature_fraction: float
    bagging_fraction: float
    bagging_freq: int
    lambda_l2: float
    lambdarank_truncation_level: int
    max_rounds: int
    early_stopping_rounds: int
    eval_at: int
    num_threads: int
    ks: tuple[int, ...]
    # monotone constraints from the registry's directions (+1 never lowers the score,
    # -1 never raises it; direction 0 is free)
    monotone: bool
    # walk-forward backtest: backtest_folds successive test periods of test_fraction of
    # the campaigns each, the last one the contract's test set (1 = that one alone)
    backtest_folds: int
    # bootstrap over test campaigns: intervals of the backtest and the champion gate
    bootstrap_samples: int
    confidence: float
    # the champion gate compares on at least this many fair test campaigns
    gate_min_campaigns: int

    def __post_init__(self) -> None:
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown or not self.objectives:
            raise ConfigError(
                f"objectives: {unknown or 'empty'}; choose from {', '.join(OBJECTIVES)}"
            )
        for name, upper in (
            ("test_fraction", 0.5),
            ("validation_fraction", 0.5),
            ("learning_rate", 1.0),
            ("feature_fraction", 1.0),
            ("bagging_fraction", 1.0),
            ("confidence", 0.999),
        ):
            value = getattr(self, name)
            if not 0 < value <= upper:
                raise ConfigError(f"{name}: must be in (0, {upper}], got {value}")
        if not 1 <= self.max_grade <= 30:
            raise ConfigError(f"max_grade: must be in 1..30 (LightGBM), got {self.max_grade}")
        if self.grade_steps_per_doubling < 1:
            raise ConfigError("grade_steps_per_doubling: must be >= 1")
        for name in (
            "num_leaves",
            "min_data_in_leaf",
            "max_rounds",
            "early_stopping_rounds",
            "eval_at",
            "num_threads",
            "backtest_folds",
            "bootstrap_samples",
            "gate_min_campaigns",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")

        if self.backtest_folds * self.test_fraction > 0.8:
            raise ConfigError(
                f"backtest_folds x test_fraction: must be <= 0.8 (folds of "
                f"test_fraction each, with older campaigns to fit on), got "
                f"{self.backtest_folds} x {self.test_fraction}"
            )

    def as_dict(self) -> dict:
        """The config as a plain dict (tuples stay tuples), as logged to MLflow."""
        return dataclasses.asdict(self)


def load_config(path: Path | None = None) -> TrainConfig:
    """The default config, overridden by the keys of ``path`` (TOML) when given."""
    values = _read_toml(DEFAULT_CONFIG)
    if path is not None:
        values.update(_read_toml(Path(path)))
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{path or DEFAULT_CONFIG}: unknown key(s) {', '.join(unknown)}")
    missing = [name for name in known if name not in values]
    if missing:
        raise ConfigError(f"{DEFAULT_CONFIG}: missing key(s) {', '.join(missing)}")
    return TrainConfig(
        **{name: _typed(name, value, str(known[name].type), path) for name, value in values.items()}
    )


def _typed(name: str, value, expected: str, path):
    """``value`` as the field's type (TOML lists become tuples, integers may be floats)."""
    if expected.startswith("tuple"):
        if not isinstance(value, list):
            raise ConfigError(f"{path}: {name} must be a list")
        return tuple(value)
    if expected == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {name} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{path}: {name} must be a number")
    if expected == "int" and not isinstance(value, int):
        raise ConfigError(f"{path}: {name} must be an integer")
    return float(value) if expected == "float" else value


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
