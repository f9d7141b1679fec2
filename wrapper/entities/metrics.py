"""Metrics of runs and models, kept as DigitalHub 0.15 keeps them (its `_commons/metrics.py`):
a metric is a number or a list of numbers, appended to, replaced or set once."""

from __future__ import annotations

import numbers
from typing import Any

from wrapper.errors import SpecError


def check_metric(key: Any, value: Any, call: str = "log_metric") -> None:
    """A SpecError unless `key` is a non-empty string and `value` a number (NumPy's too) or a
    list of numbers; bools are refused, as they are no measurement."""
    if not isinstance(key, str) or not key:
        raise SpecError(f"{call}: the key must be a non-empty string, not {key!r}")
    for item in value if isinstance(value, list) else (value,):
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise SpecError(
                f"{call}({key!r}): a {type(item).__name__} is not a metric value "
                "(a number or a list of numbers)"
            )


def log_metric(
    metrics: dict[str, Any],
    key: str,
    value: Any,
    overwrite: bool = False,
    single_value: bool = False,
) -> None:
    """Update `metrics` in place: a list extends the metric's list (or replaces it with
    `overwrite`); a number is appended to it (a list of one when new or with `overwrite`),
    or with `single_value` is the metric's value when it has none yet (or with `overwrite`)."""
    check_metric(key, value)
    known = key in metrics and not overwrite
    if isinstance(value, list):
        metrics[key] = _as_list(metrics[key]) + value if known else list(value)
    elif single_value:
        if not known:
            metrics[key] = value
    else:
        metrics[key] = [*_as_list(metrics[key]), value] if known else [value]


def log_metrics(metrics: dict[str, Any], values: dict[str, Any], overwrite: bool = False) -> None:
    """DigitalHub's `log_metrics`: lists are logged as lists; a number is appended to a metric
    already kept, else it is the metric's single value (replaced with `overwrite`)."""
    if not isinstance(values, dict):
        raise SpecError(f"log_metrics: expected a mapping of metrics, got {values!r}")
    for key, value in values.items():
        if isinstance(value, list) or (key in metrics and not overwrite):
            log_metric(metrics, key, value, overwrite)
        else:
            log_metric(metrics, key, value, overwrite, single_value=True)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]
