"""Checks: the :class:`Check` base class, the context it runs with, and its cleanup stack."""

from kibertas_async.checks.check import Check, Permission
from kibertas_async.checks.cleanup import CleanupGuard, CleanupStack
from kibertas_async.checks.context import CheckContext, Step

__all__ = ["Check", "CheckContext", "CleanupGuard", "CleanupStack", "Permission", "Step"]
