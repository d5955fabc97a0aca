"""FCA schedules on the Python side: parsing and validation (docs/FCA.md, docs/MODEL_FORMAT.md).

A schedule is one keep ratio per encoder layer, each in (0, 1] and non-increasing with depth,
plus the cluster count C >= 0 (0 drops the coarse tokens) and the cluster pooling. The
converter (writing a schedule into a model file), the PyTorch FCA reference and the training
pipeline all check schedules here, so that a schedule is refused with the same words wherever
it is given. (The engine has its own parser and validator in C++, src/fca/.)
"""
from __future__ import annotations

import math
from typing import Sequence

POOLINGS = ("weighted", "mean")


class ScheduleError(ValueError):
    """An invalid FCA schedule (keep ratios, clusters or pooling)."""


def parse_keep_ratios(text: str) -> list[float]:
    """'1,0.9,0.8' -> [1.0, 0.9, 0.8] (ScheduleError on a non-number). Only parses: the
    values are checked by validate_keep_ratios / validate_schedule."""
    ratios = []
    for item in text.split(","):
        item = item.strip()
        try:
            ratios.append(float(item))
        except ValueError:
            raise ScheduleError(f"keep ratio {item!r} is not a number "
                                f"(expected comma-separated numbers like 1,0.9,0.8)") from None
    return ratios


def validate_keep_ratios(keep_ratios: Sequence[float]) -> None:
    """Every ratio is a finite number in (0, 1] and none keeps more than the layer before.
    Needs no model, so a tool can check its options before it loads one."""
    ratios = list(keep_ratios)
    for i, r in enumerate(ratios):
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
            raise ScheduleError(f"keep ratio of layer {i} is {r!r}, not a finite number")
        if not 0.0 < r <= 1.0:
            raise ScheduleError(f"keep ratio {_shown(r)} of layer {i} is not in (0, 1]")
        if i > 0 and r > ratios[i - 1]:
            raise ScheduleError(f"keep ratios must be non-increasing, but layer {i} ({_shown(r)}) keeps more "
                                f"than layer {i - 1} ({_shown(ratios[i - 1])})")


def validate_schedule(keep_ratios: Sequence[float] | None, num_layers: int, clusters: int,
                      pooling: str) -> None:
    """Raise ScheduleError with a clear message for an invalid schedule of a model with
    `num_layers` layers. keep_ratios None = dense (only clusters and pooling are checked)."""
    if isinstance(clusters, bool) or not isinstance(clusters, int):
        raise ScheduleError(f"clusters must be an integer >= 0, got {clusters!r}")
    if clusters < 0:
        raise ScheduleError(f"clusters must be >= 0, got {clusters}")
    if pooling not in POOLINGS:
        raise ScheduleError(f"pooling is {pooling!r}; expected 'weighted' or 'mean'")
    if keep_ratios is None:
        return
    ratios = list(keep_ratios)
    if len(ratios) != num_layers:
        raise ScheduleError(f"the schedule has {len(ratios)} keep ratios; the model has {num_layers} layers "
                            f"(one ratio per layer)")
    validate_keep_ratios(ratios)


def _shown(ratio: float) -> str:
    """A ratio as a message shows it: exactly (repr), but 0 and 1 without a trailing ".0",
    as they are usually typed."""
    text = repr(float(ratio))
    return text[:-2] if text.endswith(".0") else text
