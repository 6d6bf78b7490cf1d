"""Example kibertas-async plugin: one check with one option."""

from __future__ import annotations

from kibertas_async import CONFIGMAPS, Check, CheckContext, Option, Permission, hookimpl

GREETING = Option[str](
    "configmap-greeting",
    "Text the check stores in the ConfigMap and expects to read back.",
    default="hello",
    # An extra, shorter environment variable besides KIBERTAS_ASYNC_CONFIGMAP_GREETING:
    env=("GREETING",),
)


class ConfigMapRoundTrip(Check):
    """Writes a ConfigMap and watches until the API serves it back unchanged."""

    name = "configmap-roundtrip"
    description = "A ConfigMap written through the API can be read back."
    tags = frozenset({"example", "core"})
    timeout = 60.0
    options = (GREETING,)
    permissions = (Permission("", ("configmaps",), ("create", "get", "list", "watch", "delete")),)
    creates = ("Namespace configmap-roundtrip-test-*", "ConfigMap greeting")

    async def run(self, ctx: CheckContext) -> None:
        expected = ctx.options[GREETING]
        namespace = await ctx.namespace()  # labelled, and deleted again by cleanup

        async with ctx.step("create ConfigMap"):
            await ctx.create(CONFIGMAPS, {"metadata": {"name": "greeting"}, "data": {"text": expected}}, namespace)

        async with ctx.step("read it back", timeout=30):
            stored = await ctx.wait_for(
                CONFIGMAPS,
                "greeting",
                namespace,
                until=lambda obj: obj is not None,
                progress=lambda obj: "not visible yet" if obj is None else "visible",
            )
            assert stored is not None
            if stored.get("data", {}).get("text") != expected:
                ctx.fail(f"ConfigMap holds {stored.get('data')!r}, expected text={expected!r}")
            ctx.fact("resourceVersion", stored["metadata"]["resourceVersion"])


@hookimpl
def kibertas_async_register_checks() -> list[type[Check]]:
    """The checks this plugin provides (their options come with them)."""
    return [ConfigMapRoundTrip]
