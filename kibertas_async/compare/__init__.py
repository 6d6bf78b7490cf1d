"""Blue/green comparison of two clusters' results: ``run --compare old,new`` and ``compare OLD NEW``.

See :mod:`kibertas_async.compare._comparison` for what counts as a regression; the result types
(:class:`Comparison` and its parts) live in the leaf :mod:`kibertas_async.results`.
"""

from kibertas_async.compare._comparison import compare, compare_run, comparison_to_dict, outcome_mark
from kibertas_async.results import (
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
