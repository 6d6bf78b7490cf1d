"""Blue/green comparison of two clusters' results: ``run --compare old,new`` and ``compare OLD NEW``.

See :mod:`kibertas_async.compare.comparison` for what counts as a regression.
"""

from kibertas_async.compare.comparison import (
    DEFAULT_REGRESSION_FACTOR,
    DEFAULT_TIMING_FLOOR,
    CheckComparison,
    Comparison,
    ComparisonSettings,
    Regression,
    Side,
    SideResult,
    Timing,
    VersionPair,
    compare,
    compare_run,
    comparison_to_dict,
    outcome_mark,
)

__all__ = [
    "DEFAULT_REGRESSION_FACTOR",
    "DEFAULT_TIMING_FLOOR",
    "CheckComparison",
    "Comparison",
    "ComparisonSettings",
    "Regression",
    "Side",
    "SideResult",
    "Timing",
    "VersionPair",
    "compare",
    "compare_run",
    "comparison_to_dict",
    "outcome_mark",
]
