"""The training configuration: a typed dataclass loaded from TOML, unknown keys rejected.

The committed default is ``training/default.toml``; a user's file overrides any subset
of its keys. The seed lives here and reaches LightGBM and every random draw.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).with_name("default.toml")
OBJECTIVES = ("lambdarank", "rank_xendcg")


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class TrainConfig:
    """The training config (seed, split, LightGBM, labels, backtest, gate), checked on creation."""

    seed: int = 42
    # time split (data contract): test = last test_fraction of campaigns by created_at;
    # validation = the last validation_fraction of the campaigns that ended before it.
    test_fraction: float = 0.2
    validation_fraction: float = 0.2
    # labels: per-campaign grades, steps_per_doubling grades for each doubling of gmv,
    # the campaign's best gmv at max_grade; label_gain[g] = 2^(g / steps) - 1.
    max_grade: int = 30
    grade_steps_per_doubling: int = 2
    # LightGBM
    objectives: tuple[str, ...] = OBJECTIVES
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 40
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    lambdarank_truncation_level: int = 30
    max_rounds: int = 1500
    early_stopping_rounds: int = 100
    eval_at: int = 10
    num_threads: int = 2
    ks: tuple[int, ...] = field(default=(5, 10, 20))
    # monotone constraints from the registry's directions (+1 never lowers the score,
    # -1 never raises it; direction 0 is free)
    monotone: bool = True
    # walk-forward backtest: backtest_folds successive test periods of test_fraction of
    # the campaigns each, the last one the contract's test set (1 = that one alone)
    backtest_folds: int = 3
    # bootstrap over test campaigns: intervals of the backtest and the champion gate
    bootstrap_samples: int = 1000
    confidence: float = 0.9
    # the champion gate compares on at least this many fair test campaigns
    gate_min_campaigns: int = 10

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
