"""A test plugin (``--plugin tests.engine.context_logging_plugin``) whose check logs the way a plugin's own
code and its libraries do: through its own ``structlog.get_logger()`` and a standard-library logger, never
``ctx.log``, from the check's task and from a task it starts, inside a step and after it."""

from __future__ import annotations

import logging

import anyio
import structlog

from kibertas_async import Check, CheckContext, hookimpl


class LogsOnItsOwn(Check):
    name = "logs-on-its-own"
    description = "Logs without ctx.log, to show the run's context reaches every logger."
    needs_kubernetes = False
    creates = ("nothing",)

    async def run(self, ctx: CheckContext) -> None:
        async with ctx.step("talk"):
            structlog.get_logger("a-plugin").info("plugin.own_logger")
            logging.getLogger("a-library").warning("a library's stdlib record")
            async with anyio.create_task_group() as group:
                group.start_soon(self._child)
        structlog.get_logger("a-plugin").info("plugin.after_the_step")

    @staticmethod
    async def _child() -> None:
        structlog.get_logger("a-plugin").info("plugin.child_task")


@hookimpl
def kibertas_async_register_checks() -> list[type[Check]]:
    return [LogsOnItsOwn]
