"""The pluggy markers, in a leaf module: whatever implements a hook (the built-in outputs, the live
board, plugins through ``kibertas_async.hookimpl``) imports this, not the contract
(:mod:`kibertas_async.hookspecs`), which names the types of every layer."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "kibertas_async"
"""One word for the pluggy project, the entry-point group and the hook prefix."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
