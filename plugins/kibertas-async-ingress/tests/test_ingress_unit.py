"""The ingress check's pieces without a cluster: options, manifests, addresses, the stand-in's routing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kibertas_async.options import OptionValues
from kibertas_async_ingress import options as opt
from kibertas_async_ingress.check import (
    ALB_ANNOTATIONS,
    EXTERNAL_DNS_HOSTNAME,
    IngressCheck,
    IngressSettings,
    LoadBalancerAddress,
    deployment_manifest,
    ingress_manifest,
    service_manifest,
)
from kibertas_async_ingress.sandbox_controller import IngressTable


def settings(**values: object) -> IngressSettings:
    """Settings from option defaults, with ``values`` (by option name) converted like a config file would."""
    chosen = {option: option.default for option in opt.ALL_OPTIONS}
    by_name = {option.name: option for option in opt.ALL_OPTIONS}
    for name, value in values.items():
        option = by_name[name.replace("_", "-")]
        chosen[option] = option.convert(value)
    return IngressSettings.read(OptionValues(chosen, {}))


def test_reference_environment_variables_are_accepted() -> None:
    assert "EXTERNAL_HOSTNAME" in opt.HOSTNAME.env_names
    assert "INGRESS_CLASS_NAME" in opt.INGRESS_CLASS.env_names
    assert "RESOURCE_NAME" in opt.RESOURCE_NAME.env_names
    assert all(option.per_cluster for option in IngressCheck.options)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("10.0.0.2", (opt.Nameserver("10.0.0.2", 53),)),
        ("127.0.0.1:5353, [::1]:53", (opt.Nameserver("127.0.0.1", 5353), opt.Nameserver("::1", 53))),
        ("fd00::53", (opt.Nameserver("fd00::53", 53),)),
    ],
)
def test_nameservers_parse(text: str, expected: tuple[opt.Nameserver, ...]) -> None:
    assert opt.parse_nameservers(text) == expected


@pytest.mark.parametrize("text", ["dns.google", "127.0.0.1:0", "127.0.0.1:x"])
def test_bad_nameservers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"nameservers are IP addresses|is not a port"):
        opt.parse_nameservers(text)


def test_hostname_is_normalised_and_checked() -> None:
    assert opt.parse_hostname("Sample.Example.COM.") == "sample.example.com"
    with pytest.raises(ValueError, match="not a fully qualified host name"):
        opt.parse_hostname("localhost")
    with pytest.raises(ValueError, match="not a fully qualified host name"):
        opt.parse_hostname("bad_name.example.com")


def test_url_is_built_from_scheme_host_port_and_path() -> None:
    assert settings(ingress_hostname="a.example.com").url == "http://a.example.com/"
    assert settings(ingress_hostname="a.example.com", ingress_http_port="80").url == "http://a.example.com/"
    https = settings(ingress_hostname="a.example.com", ingress_http_scheme="https", ingress_http_port="8443")
    assert https.url == "https://a.example.com:8443/"
    assert (
        settings(ingress_hostname="a.example.com", ingress_http_path="/healthz").url == "http://a.example.com/healthz"
    )


def test_alb_ingress_carries_controller_and_external_dns_annotations() -> None:
    manifest = ingress_manifest(settings(ingress_hostname="a.example.com"))
    annotations = manifest["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/"
    assert annotations[EXTERNAL_DNS_HOSTNAME] == "a.example.com"
    assert manifest["spec"]["ingressClassName"] == "alb"
    rule = manifest["spec"]["rules"][0]
    assert rule["host"] == "a.example.com"
    assert rule["http"]["paths"][0]["path"] == "/"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "sample", "port": {"number": 80}}


def test_user_annotations_override_and_other_classes_get_no_alb_annotations() -> None:
    internal = ingress_manifest(
        settings(ingress_hostname="a.example.com", ingress_annotations="alb.ingress.kubernetes.io/scheme=internal")
    )
    assert internal["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == "internal"
    nginx = ingress_manifest(settings(ingress_hostname="a.example.com", ingress_class="nginx"))
    assert not set(ALB_ANNOTATIONS) & set(nginx["metadata"]["annotations"])
    assert nginx["metadata"]["annotations"][EXTERNAL_DNS_HOSTNAME] == "a.example.com"


def test_deployment_and_service_match() -> None:
    chosen = settings(ingress_resource_name="web", ingress_image="nginx:1.27")
    deployment, service = deployment_manifest(chosen), service_manifest(chosen)
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["replicas"] == 1
    assert pod["spec"]["terminationGracePeriodSeconds"] == 0  # its namespace empties without waiting
    assert pod["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert pod["spec"]["containers"][0]["ports"] == [{"name": "http", "containerPort": 80, "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_load_balancer_address_takes_ips_and_hostnames() -> None:
    assert LoadBalancerAddress.of({"status": {}}) is None
    assert LoadBalancerAddress.of(None) is None
    elb = {
        "status": {"loadBalancer": {"ingress": [{"hostname": "K8s-Sample.elb.amazonaws.com."}, {"ip": "192.0.2.7"}]}}
    }
    assert LoadBalancerAddress.of(elb) == LoadBalancerAddress(("192.0.2.7",), ("k8s-sample.elb.amazonaws.com",))


def _ingress(name: str, ingress_class: str, host: str, paths: dict[str, str]) -> dict[str, object]:
    return {
        "metadata": {"namespace": "ns", "name": name},
        "spec": {
            "ingressClassName": ingress_class,
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {"path": path, "pathType": "Prefix", "backend": {"service": {"name": service}}}
                            for path, service in paths.items()
                        ]
                    },
                }
            ],
        },
    }


def test_stand_in_routes_by_class_host_and_longest_prefix() -> None:
    table = IngressTable("alb")
    table.replace_all(
        [
            _ingress("web", "alb", "a.example.com", {"/": "root", "/api": "api"}),
            _ingress("other", "nginx", "b.example.com", {"/": "nope"}),
        ]
    )
    assert table.route("a.example.com", "/")
    assert table.route("a.example.com", "/index.html").service == "root"  # type: ignore[union-attr]
    assert table.route("a.example.com", "/api/v1").service == "api"  # type: ignore[union-attr]
    assert table.route("a.example.com", "/apix") is not None
    assert table.route("a.example.com", "/apix").service == "root"  # type: ignore[union-attr]
    assert table.route("b.example.com", "/") is None
    table.apply("DELETED", _ingress("web", "alb", "a.example.com", {}))
    assert table.route("a.example.com", "/") is None


def test_loading_the_plugin_imports_no_heavy_client() -> None:
    code = (
        "import sys, kibertas_async_ingress.plugin as p; p.kibertas_async_register_checks(); "
        "heavy = sorted(m for m in ('dns', 'aiohttp', 'kubernetes_asyncio') if m in sys.modules); print(heavy)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
