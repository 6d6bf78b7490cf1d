"""Where results go: notifiers (messages) and reporters (files, tables), both registered by plugins."""

from kibertas_async.outputs.protocols import Notifier, Reporter, RunInfo

__all__ = ["Notifier", "Reporter", "RunInfo"]
