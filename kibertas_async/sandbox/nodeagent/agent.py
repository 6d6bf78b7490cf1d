"""The node agent's process: one Node, its Lease, and the Pods bound to it run with podman.

A kubelet in miniature, for the sandbox: it registers its Node (Ready, tainted so only pods that ask
for it land there), renews the Node's Lease, follows the Pods with ``spec.nodeName=<node>`` through an
:class:`~kibertas_async.kube.Informer`, and for each one creates and starts one podman container per
container of the Pod, then reports Pending → Running → Succeeded/Failed (with exit codes) through
``pods/status``. A Pod being deleted has its containers stopped (SIGTERM, SIGKILL after its grace
period), removed, and is then deleted with grace 0. ``$(VAR)`` references in ``command``, ``args`` and
``env`` values are expanded as a kubelet expands them (:func:`expand_references`). Not done: init
containers, restarts (every ``restartPolicy`` acts as ``Never``), probes, resource limits, token refresh.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from kibertas_async.kube import Change, Informer, KubeApiError, KubeClient, KubeObject
from kibertas_async.kube.resources import CONFIGMAPS, NODES, PODS, SECRETS, Resource
from kibertas_async.sandbox.nodeagent import NODE_AGENT_LABEL, pod_log_path
from kibertas_async.sandbox.nodeagent.podman import (
    AGENT_DIR_LABEL,
    POD_UID_LABEL,
    Mount,
    container_name,
    create_argv,
)

LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
"""Seconds, as a kubelet's default; renewed every quarter of it."""
NODE_AGENT_VALUE = "podman"
_MERGE_PATCH = "application/merge-patch+json"
_CONFIG_RETRY = 2.0
_STOP_ON_EXIT = 2
"""Seconds each container gets after SIGTERM when the agent itself stops (the sandbox kills it at 10 s)."""

log = logging.getLogger("kibertas_async.sandbox.nodeagent")


class PodConfigError(Exception):
    """A Pod cannot start yet: a Secret or ConfigMap it needs is missing (a kubelet retries too)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeAgent:
    """Runs the Pods bound to one Node."""

    def __init__(self, kube: KubeClient, node: str, work_dir: Path, *, apiserver_port: int, podman: str) -> None:
        self.kube = kube
        self.node = node
        self.work_dir = work_dir
        self.apiserver_port = apiserver_port
        self.podman = podman
        self.containers: set[str] = set()
        """Every container this agent created (or began to create) and has not removed."""
        self._workers: dict[str, PodWorker] = {}

    async def run(self) -> None:
        """Register the Node, then keep its Lease and run its Pods until cancelled."""
        await self.register_node()
        async with anyio.create_task_group() as group:
            group.start_soon(self._renew_lease)
            informer = Informer(self.kube, PODS, field_selector=f"spec.nodeName={self.node}")
            informer.on_change(lambda changes: self._on_pods(changes, group))
            await informer.run()

    async def remove_all_containers(self) -> None:
        """Stop (SIGTERM, SIGKILL after :data:`_STOP_ON_EXIT` s) and remove every container it started."""
        async with anyio.create_task_group() as group:
            for name in sorted(self.containers):
                group.start_soon(self.remove_container, name, _STOP_ON_EXIT)

    async def remove_container(self, name: str, grace: int) -> None:
        """``podman stop -t grace`` then ``podman rm -f``; a container that is not there is fine."""
        started = time.monotonic()
        await self.podman_run("stop", "--ignore", "-t", str(grace), name)
        stopped = time.monotonic()
        await self.podman_run("rm", "--force", "--ignore", name)
        self.containers.discard(name)
        log.info("container %s stopped in %.1fs, removed in %.1fs", name, stopped - started, time.monotonic() - stopped)

    async def podman_run(
        self, *args: str, env: Mapping[str, str] | None = None, stdout: Any = None
    ) -> tuple[int, str, str]:
        """Run ``podman ARGS``; return its exit status, stdout and stderr (both empty if ``stdout`` takes them)."""
        import subprocess

        result = await anyio.run_process(
            [self.podman, *args],
            check=False,
            env={**os.environ, **(env or {})},
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT if stdout is not None else subprocess.PIPE,
        )
        out = result.stdout.decode(errors="replace") if result.stdout else ""
        return result.returncode, out, result.stderr.decode(errors="replace") if result.stderr else ""

    # --- the Node and its Lease ---------------------------------------------------------------

    async def register_node(self) -> None:
        """Create the Node (or take over one left by an earlier agent) and mark it Ready."""
        cpu = str(os.cpu_count() or 1)
        resources = {"cpu": cpu, "memory": "8Gi", "pods": "20", "ephemeral-storage": "20Gi"}
        manifest: KubeObject = {
            "metadata": {
                "name": self.node,
                "labels": {
                    "kubernetes.io/hostname": self.node,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    NODE_AGENT_LABEL: NODE_AGENT_VALUE,
                },
            },
            "spec": {"taints": [{"key": NODE_AGENT_LABEL, "value": NODE_AGENT_VALUE, "effect": "NoSchedule"}]},
            "status": {"capacity": resources, "allocatable": resources},
        }
        try:
            await self.kube.create(NODES, manifest)
        except KubeApiError as error:
            if error.status != 409:
                raise
        await self.kube.request(
            "PATCH",
            NODES.path(None, self.node) + "/status",
            body={"status": self._node_status(resources)},
            content_type=_MERGE_PATCH,
        )
        log.info("node %s registered and Ready", self.node)

    def _node_status(self, resources: Mapping[str, str]) -> KubeObject:
        now = _now()
        conditions = [
            ("Ready", "True", "KubeletReady", "node agent is posting ready status"),
            ("MemoryPressure", "False", "KubeletHasSufficientMemory", "no memory pressure"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID", "no PID pressure"),
        ]
        return {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.node}],
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
                for kind, status, reason, message in conditions
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "containerRuntimeVersion": "podman://local",
                "kubeletVersion": "v0.0.0-kibertas-async-node-agent",
                "kubeProxyVersion": "",
                "bootID": "",
                "kernelVersion": os.uname().release,
                "machineID": "",
                "osImage": "",
                "systemUUID": "",
            },
        }

    async def _renew_lease(self) -> None:
        path = LEASES.path(LEASE_NAMESPACE, self.node)
        node = await self.kube.get(NODES, self.node)
        # Owned by the Node, as a kubelet's Lease is, so deleting the Node takes the Lease with it.
        owners = (
            []
            if node is None
            else [{"apiVersion": "v1", "kind": "Node", "name": self.node, "uid": node["metadata"]["uid"]}]
        )
        while True:
            spec = {"holderIdentity": self.node, "leaseDurationSeconds": LEASE_DURATION, "renewTime": _micro_now()}
            try:
                try:
                    await self.kube.request("PATCH", path, body={"spec": spec}, content_type=_MERGE_PATCH)
                except KubeApiError as error:
                    if error.status != 404:
                        raise
                    lease = {"metadata": {"name": self.node, "ownerReferences": owners}, "spec": spec}
                    await self.kube.create(LEASES, lease, LEASE_NAMESPACE)
            except Exception as error:  # a missed renewal is retried; the Node only goes NotReady after 40 s
                log.warning("lease renewal failed: %s", error)
            await anyio.sleep(LEASE_DURATION / 4)

    # --- Pods -----------------------------------------------------------------------------------

    def _on_pods(self, changes: Sequence[Change], group: TaskGroup) -> None:
        for change in changes:
            uid = str(change.object["metadata"]["uid"])
            worker = self._workers.get(uid)
            if change.type == "DELETED":
                if worker is not None:
                    worker.update(change.object, gone=True)
                continue
            if worker is None:
                worker = self._workers[uid] = PodWorker(self, change.object)
                group.start_soon(self._run_worker, uid, worker)
            worker.update(change.object)

    async def _run_worker(self, uid: str, worker: PodWorker) -> None:
        try:
            await worker.run()
        except Exception:
            log.exception("pod %s: the agent failed", worker.key)
        finally:
            self._workers.pop(uid, None)


class PodWorker:
    """One Pod's life on the node: prepare, run its containers, report, and tear down when deleted."""

    def __init__(self, agent: NodeAgent, pod: KubeObject) -> None:
        self.agent = agent
        self.pod = pod
        metadata = pod["metadata"]
        self.namespace = str(metadata["namespace"])
        self.name = str(metadata["name"])
        self.uid = str(metadata["uid"])
        self.key = f"{self.namespace}/{self.name}"
        self.directory = agent.work_dir / "pods" / self.uid
        self.deleting = anyio.Event()
        self.gone = False
        self.states: dict[str, KubeObject] = {
            str(c["name"]): {"waiting": {"reason": "ContainerCreating"}} for c in pod["spec"]["containers"]
        }
        self.container_ids: dict[str, str] = {}
        self.started_at = _now()
        self.phase = str((pod.get("status") or {}).get("phase", "Pending"))
        """The phase last reported (or found)."""
        self._status_lock = anyio.Lock()

    def update(self, pod: KubeObject, *, gone: bool = False) -> None:
        """The latest version of the Pod; a deletion timestamp (or the Pod gone) starts the teardown."""
        self.pod = pod
        self.gone = self.gone or gone
        if gone or pod["metadata"].get("deletionTimestamp"):
            self.deleting.set()

    async def run(self) -> None:
        """Run the Pod unless it has already ended, then wait for its deletion and tear it down."""
        phase = (self.pod.get("status") or {}).get("phase")
        if phase not in ("Succeeded", "Failed") and not self.deleting.is_set():
            async with anyio.create_task_group() as group:
                group.start_soon(self._cancel_on_deletion, group)
                await self._live()
                group.cancel_scope.cancel()
        await self.deleting.wait()
        await self._teardown()

    async def _cancel_on_deletion(self, group: TaskGroup) -> None:
        await self.deleting.wait()
        group.cancel_scope.cancel()

    async def _live(self) -> None:
        await self._report("Pending")
        containers = list(self.pod["spec"]["containers"])
        while True:
            try:
                mounts = await self._volume_mounts_by_name()
                envs = [await self._environment(container) for container in containers]
                break
            except PodConfigError as error:
                for container in containers:
                    self.states[container["name"]] = {
                        "waiting": {"reason": "CreateContainerConfigError", "message": str(error)}
                    }
                await self._report("Pending")
                await anyio.sleep(_CONFIG_RETRY)
        codes: dict[str, int] = {}
        async with anyio.create_task_group() as group:
            for container, env in zip(containers, envs, strict=True):
                group.start_soon(self._run_container, container, env, mounts, codes)
        phase = "Succeeded" if all(code == 0 for code in codes.values()) else "Failed"
        await self._report(phase)
        log.info("pod %s: %s (exit codes %s)", self.key, phase, codes)

    async def _run_container(
        self, container: KubeObject, env: dict[str, str], volumes: Mapping[str, Mount], codes: dict[str, int]
    ) -> None:
        name = str(container["name"])
        podman_name = container_name(self.uid, name)
        mounts = []
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(str(mount["name"]))
            if volume is not None:
                read_only = volume.read_only or bool(mount.get("readOnly"))
                mounts.append(Mount(str(mount["mountPath"]), volume.source, read_only))
        labels = {AGENT_DIR_LABEL: str(self.agent.work_dir), POD_UID_LABEL: self.uid}
        # As a kubelet: $(VAR) in command and args is the container's variable (the merge Job's S3 prefix).
        expanded = {
            **container,
            **{
                key: [expand_references(str(arg), env) for arg in container[key]]
                for key in ("command", "args")
                if container.get(key) is not None
            },
        }
        argv = create_argv(self.agent.podman, podman_name, self.pod, expanded, sorted(env), mounts, labels)
        self.agent.containers.add(podman_name)
        status, out, err = await self.agent.podman_run(*argv[1:], env=env)
        if status != 0:
            codes[name] = 128
            self.states[name] = _terminated(128, "CreateContainerError", err.strip()[-500:], self.started_at)
            return
        self.container_ids[name] = out.strip()
        await self.agent.podman_run("start", podman_name)
        started = _now()
        self.states[name] = {"running": {"startedAt": started}}
        running = all("running" in state or "terminated" in state for state in self.states.values())
        if running:
            await self._report("Running")
        _status, out, _err = await self.agent.podman_run("wait", podman_name)
        lines = out.strip().splitlines()
        code = int(lines[-1]) if lines and lines[-1].lstrip("-").isdigit() else 128
        codes[name] = code
        await self._save_log(name)
        self.states[name] = _terminated(code, "Completed" if code == 0 else "Error", None, started)

    async def _save_log(self, container: str) -> None:
        path = pod_log_path(self.agent.work_dir, self.namespace, self.name, container)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            await self.agent.podman_run("logs", container_name(self.uid, container), stdout=handle)

    async def _teardown(self) -> None:
        spec = self.pod.get("spec") or {}
        grace = self.pod["metadata"].get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        names = [str(c["name"]) for c in spec.get("containers") or []]

        async def stop(container: str) -> None:
            podman_name = container_name(self.uid, container)
            if podman_name in self.agent.containers:
                await self.agent.podman_run("stop", "--ignore", "-t", str(grace), podman_name)
                if "running" in self.states[container]:
                    _status, out, _err = await self.agent.podman_run(
                        "inspect", "--format", "{{.State.ExitCode}}", podman_name
                    )
                    code = int(out.strip()) if out.strip().lstrip("-").isdigit() else 137
                    started = str(self.states[container]["running"]["startedAt"])
                    self.states[container] = _terminated(code, "Completed" if code == 0 else "Error", None, started)
                await self._save_log(container)
                await self.agent.remove_container(podman_name, 0)

        async with anyio.create_task_group() as group:
            for container in names:
                group.start_soon(stop, container)
        log.info("pod %s: containers stopped and removed", self.key)
        if self.phase == "Running" and not self.gone:
            # As a kubelet does: the stopped pod's last status (exit codes) before it goes.
            ended = all(state.get("terminated", {}).get("exitCode") == 0 for state in self.states.values())
            await self._report("Succeeded" if ended else "Failed")
        if not self.gone:
            body = {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": self.uid},
            }
            with contextlib.suppress(KubeApiError):  # already gone, or another uid by now: not ours
                await self.agent.kube.request("DELETE", PODS.path(self.namespace, self.name), body=body)

    # --- what a container gets -------------------------------------------------------------------

    async def _environment(self, container: KubeObject) -> dict[str, str]:
        env = {
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.agent.apiserver_port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.agent.apiserver_port),
        }
        for source in container.get("envFrom") or []:
            prefix = str(source.get("prefix", ""))
            for kind, resource in (("secretRef", SECRETS), ("configMapRef", CONFIGMAPS)):
                if reference := source.get(kind):
                    data = await self._data(resource, str(reference["name"]), bool(reference.get("optional")))
                    env.update({prefix + key: value.decode(errors="replace") for key, value in (data or {}).items()})
        for variable in container.get("env") or []:
            name = str(variable["name"])
            source = variable.get("valueFrom")
            if source is None:
                env[name] = expand_references(str(variable.get("value", "")), env)
                continue
            if field := source.get("fieldRef"):
                env[name] = self._field(str(field["fieldPath"]))
                continue
            for kind, resource in (("secretKeyRef", SECRETS), ("configMapKeyRef", CONFIGMAPS)):
                if reference := source.get(kind):
                    value = await self._key(resource, reference)
                    if value is not None:
                        env[name] = value.decode(errors="replace")
        return env

    async def _key(self, resource: Resource, reference: Mapping[str, Any]) -> bytes | None:
        optional = bool(reference.get("optional"))
        data = await self._data(resource, str(reference["name"]), optional)
        key = str(reference["key"])
        if data is None or key not in data:
            if optional:
                return None
            raise PodConfigError(f"couldn't find key {key} in {resource.kind} {self.namespace}/{reference['name']}")
        return data[key]

    async def _data(self, resource: Resource, name: str, optional: bool) -> dict[str, bytes] | None:
        """A Secret's or ConfigMap's data as bytes; None when it is absent and optional."""
        found = await self.agent.kube.get(resource, name, self.namespace)
        if found is None:
            if optional:
                return None
            raise PodConfigError(f"{resource.kind.lower()} {self.namespace}/{name} not found")
        data = {key: value.encode() for key, value in (found.get("data") or {}).items()}
        if resource is SECRETS:
            data = {key: base64.b64decode(value) for key, value in data.items()}
        data.update({key: base64.b64decode(value) for key, value in (found.get("binaryData") or {}).items()})
        return data

    def _field(self, path: str) -> str:
        metadata = self.pod["metadata"]
        if path.startswith(("metadata.labels['", "metadata.annotations['")):
            section, _, rest = path.removeprefix("metadata.").partition("['")
            return str((metadata.get(section) or {}).get(rest.removesuffix("']"), ""))
        values = {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "spec.nodeName": self.agent.node,
            "spec.serviceAccountName": str(self.pod["spec"].get("serviceAccountName", "default")),
            "status.hostIP": "127.0.0.1",
            "status.podIP": "127.0.0.1",
        }
        return values.get(path, "")

    async def _volume_mounts_by_name(self) -> dict[str, Mount]:
        """Each volume as a mount source: emptyDir a tmpfs, hostPath itself, the others files written here."""
        mounts: dict[str, Mount] = {}
        for volume in self.pod["spec"].get("volumes") or []:
            name = str(volume["name"])
            if "emptyDir" in volume:
                mounts[name] = Mount("", None)
                continue
            if host_path := volume.get("hostPath"):
                mounts[name] = Mount("", Path(str(host_path["path"])))
                continue
            directory = self.directory / "volumes" / name
            directory.mkdir(parents=True, exist_ok=True, mode=0o755)
            if projected := volume.get("projected"):
                for source in projected.get("sources") or []:
                    await self._project(source, directory)
            elif secret := volume.get("secret"):
                await self._write_data(directory, SECRETS, str(secret["secretName"]), secret)
            elif config_map := volume.get("configMap"):
                await self._write_data(directory, CONFIGMAPS, str(config_map["name"]), config_map)
            else:
                raise PodConfigError(
                    f"volume {name}: only emptyDir, hostPath, projected, secret and configMap are supported"
                )
            mounts[name] = Mount("", directory, read_only=True)
        return mounts

    async def _project(self, source: Mapping[str, Any], directory: Path) -> None:
        if token_source := source.get("serviceAccountToken"):
            token = await self._token(token_source.get("audience"), int(token_source.get("expirationSeconds", 3600)))
            _write_file(directory / str(token_source["path"]), token.encode())
        elif config_map := source.get("configMap"):
            await self._write_data(directory, CONFIGMAPS, str(config_map["name"]), config_map)
        elif secret := source.get("secret"):
            await self._write_data(directory, SECRETS, str(secret["name"]), secret)
        elif downward := source.get("downwardAPI"):
            for item in downward.get("items") or []:
                if field := item.get("fieldRef"):
                    _write_file(directory / str(item["path"]), self._field(str(field["fieldPath"])).encode())

    async def _write_data(self, directory: Path, resource: Resource, name: str, source: Mapping[str, Any]) -> None:
        data = await self._data(resource, name, bool(source.get("optional")))
        if data is None:
            return
        items = source.get("items")
        pairs = [(str(i["key"]), str(i["path"])) for i in items] if items else [(key, key) for key in data]
        for key, path in pairs:
            if key not in data:
                raise PodConfigError(f"couldn't find key {key} in {resource.kind} {self.namespace}/{name}")
            _write_file(directory / path, data[key])

    async def _token(self, audience: str | None, expiration: int) -> str:
        """A token from the TokenRequest API, bound to this Pod; no audience: the API server's default."""
        account = str(self.pod["spec"].get("serviceAccountName") or "default")
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else [],
                "expirationSeconds": max(600, expiration),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid},
            },
        }
        path = f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token"
        try:
            answer = await self.agent.kube.request("POST", path, body=body)
        except KubeApiError as error:
            raise PodConfigError(f"token for service account {self.namespace}/{account}: {error}") from None
        return str(answer["status"]["token"])

    # --- status ------------------------------------------------------------------------------------

    async def _report(self, phase: str) -> None:
        self.phase = phase
        containers = self.pod["spec"]["containers"]
        statuses = []
        for container in containers:
            name = str(container["name"])
            state = self.states[name]
            entry: KubeObject = {
                "name": name,
                "image": container["image"],
                "imageID": "",
                "ready": "running" in state,
                "started": "running" in state,
                "restartCount": 0,
                "state": state,
            }
            if name in self.container_ids:
                entry["containerID"] = f"podman://{self.container_ids[name]}"
            statuses.append(entry)
        ready = "True" if phase == "Running" and all(s["ready"] for s in statuses) else "False"
        now = _now()
        conditions = [
            ("PodReadyToStartContainers", "True"),
            ("Initialized", "True"),
            ("Ready", ready),
            ("ContainersReady", ready),
            ("PodScheduled", "True"),
        ]
        status = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.started_at,
            "conditions": [{"type": kind, "status": value, "lastTransitionTime": now} for kind, value in conditions],
            "containerStatuses": statuses,
        }
        async with self._status_lock:
            try:
                await self.agent.kube.request(
                    "PATCH",
                    PODS.path(self.namespace, self.name) + "/status",
                    body={"status": status},
                    content_type=_MERGE_PATCH,
                )
            except KubeApiError as error:
                if error.status != 404:
                    raise


def expand_references(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: the value of ``VAR`` if it is defined, else ``$(VAR)`` unchanged;
    ``$$`` is one ``$``; any other ``$`` (an unclosed ``$(`` too) stays as it is.

    A kubelet applies it to ``command`` and ``args`` with the container's whole environment, and to each
    ``env`` value with the variables defined before it (never to ``valueFrom`` values).
    """
    out: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        following = text[position + 1 : position + 2]
        if char == "$" and following == "$":
            out.append("$")
            position += 2
            continue
        if char == "$" and following == "(":
            end = text.find(")", position + 2)
            if end != -1:
                name = text[position + 2 : end]
                out.append(variables[name] if name in variables else text[position : end + 1])
                position = end + 1
                continue
        out.append(char)
        position += 1
    return "".join(out)


def _terminated(code: int, reason: str, message: str | None, started: str) -> KubeObject:
    state: KubeObject = {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": _now()}
    if message:
        state["message"] = message
    return {"terminated": state}


def _write_file(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    path.write_bytes(content)
    path.chmod(0o644)  # the container's user is often not root
