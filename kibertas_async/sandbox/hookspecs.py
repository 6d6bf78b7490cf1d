"""The sandbox's own hook, registered by the sandbox on the plugin manager it creates
(:func:`kibertas_async.sandbox.addons.discovery.plugin_addons`), so the runtime's contract
(:mod:`kibertas_async.hookspecs`) never names the sandbox.

A plugin implements it with ``@kibertas_async.hookimpl(optionalhook=True)``: a ``run`` loads the same
plugin without this spec, and ``optionalhook`` tells pluggy that is no misspelling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kibertas_async._markers import hookspec

if TYPE_CHECKING:
    from kibertas_async.sandbox.addons import SandboxAddon


@hookspec
def kibertas_async_register_sandbox_addons() -> list[SandboxAddon]:
    """Return the sandbox add-ons your checks need, so ``kibertas-async sandbox up`` (and the pytest
    fixture in :mod:`kibertas_async.testing`) start them beside every local cluster.

    An add-on may also define ``cluster_settings(context) -> Mapping[str, object]``: option values for
    that cluster (e.g. the ingress hostname, the stand-in's URL), written to the sandbox's run config
    file so ``kibertas-async run --config <it>`` works against the sandbox as is.
    """
    raise NotImplementedError
