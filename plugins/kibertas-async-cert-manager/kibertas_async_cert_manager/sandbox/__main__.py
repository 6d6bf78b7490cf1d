"""``python -m kibertas_async_cert_manager.sandbox``: build cert-manager's controller and fetch its CRDs ahead
of ``sandbox up`` (CI runs it before the tests, so no sandbox start waits for a cold build)."""

from kibertas_async_cert_manager.sandbox.addon import build_controller, crd_directory

print(f"controller: {build_controller()}")
print(f"CRDs: {crd_directory()}")
