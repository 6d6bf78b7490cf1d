"""``python -m kibertas_async.sandbox.nodeagent``: the node agent process the add-on asks the sandbox to run.

On SIGTERM (``sandbox down``, the end of a test session) it stops and removes every container it
started, within the 10 s the sandbox gives a process before SIGKILL.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

import anyio

from kibertas_async.kube import ClusterTarget, connect
from kibertas_async.kube.client import CLOSE_TIMEOUT
from kibertas_async.sandbox.nodeagent.agent import NodeAgent

_CLEANUP_TIMEOUT = 8.0


async def _main(arguments: argparse.Namespace) -> None:
    kube = await connect(ClusterTarget(name=arguments.node, kubeconfig=str(arguments.kubeconfig)))
    agent = NodeAgent(
        kube,
        arguments.node,
        arguments.work_dir,
        apiserver_port=arguments.apiserver_port,
        podman=arguments.podman,
    )
    # The receiver stays open through the cleanup: the sandbox sends SIGTERM twice (to all, then to each),
    # and the second must not kill the agent with the default handler while it stops the containers.
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        try:
            async with anyio.create_task_group() as group:

                async def run_agent() -> None:
                    await agent.run()
                    group.cancel_scope.cancel()

                group.start_soon(run_agent)
                async for received in signals:
                    logging.getLogger(__name__).info("%s: stopping every container", signal.Signals(received).name)
                    break
                group.cancel_scope.cancel()
        finally:
            with anyio.move_on_after(_CLEANUP_TIMEOUT, shield=True):
                await agent.remove_all_containers()
            with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
                await kube.aclose()


def main() -> None:
    """Parse the command line and run the agent until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m kibertas_async.sandbox.nodeagent")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--apiserver-port", type=int, required=True)
    parser.add_argument("--podman", default="podman")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    anyio.run(_main, arguments)


if __name__ == "__main__":
    main()
