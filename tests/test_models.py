"""Model validation: every bad input is a SpecError naming the field's Kubernetes path."""

from __future__ import annotations

import pickle

import attrs
import pytest

import asyncpod
from asyncpod import (
    Container,
    ContainerPort,
    ContainerRestartRule,
    ContainerRestartRuleOnExitCodes,
    EmptyDirVolumeSource,
    EnvVar,
    ExecAction,
    HostPathVolumeSource,
    Lifecycle,
    LifecycleHandler,
    Pod,
    Probe,
    RestartRuleOperator,
    SleepAction,
    SpecError,
    Volume,
    VolumeMount,
)


def c(name: str = "a", **kwargs: object) -> Container:
    return Container(name=name, image="busybox:1.36", **kwargs)  # type: ignore[arg-type]


def pod(**kwargs: object) -> Pod:
    fields: dict[str, object] = {"name": "p", "containers": [c()]}
    fields.update(kwargs)
    return Pod(**fields)  # type: ignore[arg-type]


def error(fn: object) -> SpecError:
    with pytest.raises(SpecError) as info:
        fn()  # type: ignore[operator]
    return info.value


class TestContainer:
    @pytest.mark.parametrize("name", ["Web", "web_1", "-web", "web-", "", "a" * 64])
    def test_bad_names(self, name: str) -> None:
        """Container names must be DNS-1123 labels."""
        assert error(lambda: c(name)).path == "name"

    @pytest.mark.parametrize(
        "image",
        [
            "busybox",
            "app:v2",
            "tomcat:7.0",
            "localhost/busybox:latest",
            "quay.io:443/a/b-c_d:1.0",
            "docker.io/library/alpine@sha256:" + "a" * 64,
        ],
    )
    def test_good_images(self, image: str) -> None:
        """Image references follow the OCI reference grammar."""
        assert Container(name="a", image=image).image == image

    @pytest.mark.parametrize("image", ["", "UPPER", "a b", "x:", ":tag", "a//b", "a:b:c"])
    def test_bad_images(self, image: str) -> None:
        """A malformed image reference is refused at field 'image'."""
        assert error(lambda: Container(name="a", image=image)).path == "image"

    def test_ports(self) -> None:
        """Ports are 1-65535 and port names unique within the container."""
        assert error(lambda: ContainerPort(container_port=0)).path == "containerPort"
        assert error(lambda: ContainerPort(container_port=80, host_port=70000)).path == "hostPort"
        assert error(lambda: ContainerPort(container_port="80")).path == "containerPort"  # type: ignore[arg-type]
        assert error(lambda: ContainerPort(container_port=80, protocol="HTTP")).path == "protocol"
        twice = [
            ContainerPort(container_port=1, name="web"),
            ContainerPort(container_port=2, name="web"),
        ]
        assert error(lambda: c(ports=twice)).path == "ports[1].name"

    def test_env_names_and_dict_form(self) -> None:
        """env accepts a mapping (kept in order) and refuses invalid names."""
        assert [e.name for e in c(env={"B": "1", "A": "2"}).env] == ["B", "A"]
        assert error(lambda: c(env={"1X": "v"})).path == "name"

    def test_probe_rules(self) -> None:
        """One handler per probe; liveness/startup successThreshold 1; named ports must exist."""
        assert "exactly one handler" in str(error(lambda: Probe()))
        probe = Probe(exec=ExecAction(command=["true"]), success_threshold=2)
        assert error(lambda: c(liveness_probe=probe)).path == "livenessProbe.successThreshold"
        named = Probe(tcp_socket=asyncpod.TCPSocketAction(port="web"))
        assert error(lambda: c(readiness_probe=named)).path == "readinessProbe.tcpSocket.port"
        assert error(lambda: Probe(exec=ExecAction(command=["x"]), period_seconds=-1)).path == (
            "periodSeconds"
        )

    def test_frozen_and_hashable(self) -> None:
        """Models are immutable values."""
        a = c(env={"A": "1"}, ports=[ContainerPort(container_port=80)])
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            a.name = "b"  # type: ignore[misc]
        assert hash(a) == hash(c(env={"A": "1"}, ports=[ContainerPort(container_port=80)]))
        assert pickle.loads(pickle.dumps(pod(labels={"app": "x"}))) == pod(labels={"app": "x"})


class TestPod:
    def test_unique_names_across_lists(self) -> None:
        """Container names are unique across init containers and containers."""
        err = error(lambda: pod(init_containers=[c("a", command=["true"])]))
        assert err.path == "spec.containers[0].name"
        assert "spec.initContainers[0]" in str(err)

    def test_volume_mount_names_a_declared_volume(self) -> None:
        """Every volumeMount names a volume of the pod."""
        bad = c("b", volume_mounts=[VolumeMount(name="data", mount_path="/d")])
        err = error(lambda: pod(containers=[c(), bad]))
        assert err.path == "spec.containers[1].volumeMounts[0].name"
        assert str(err).startswith("spec.containers[1].volumeMounts[0].name: ")

    def test_duplicate_host_ports(self) -> None:
        """The same host port cannot be published twice."""
        p1 = [ContainerPort(container_port=80, host_port=8080)]
        p2 = [ContainerPort(container_port=81, host_port=8080)]
        err = error(lambda: pod(containers=[c("a", ports=p1), c("b", ports=p2)]))
        assert err.path == "spec.containers[1].ports[0].hostPort"

    def test_init_container_rules(self) -> None:
        """Regular init containers take no probes or hooks; sidecars may."""
        probe = Probe(exec=ExecAction(command=["true"]))
        err = error(lambda: pod(init_containers=[c("i", readiness_probe=probe)]))
        assert err.path == "spec.initContainers[0].readinessProbe"
        sidecar = c("s", restart_policy="Always", readiness_probe=probe)
        assert pod(init_containers=[sidecar]).sidecars == (sidecar,)
        # KEP-5307: an init container may carry its own Never/OnFailure policy.
        assert pod(init_containers=[c("i", restart_policy="Never")]).sidecars == ()

    def test_restart_policy_rules(self) -> None:
        """KEP-5307 rules: need a container policy, not on sidecars, bounded exit codes."""
        codes = ContainerRestartRuleOnExitCodes(operator="In", values=[42])
        rule = ContainerRestartRule(exit_codes=codes)
        assert codes.values == (42,) and codes.operator is RestartRuleOperator.IN
        assert rule.exit_codes.matches(42) and not rule.exit_codes.matches(1)
        not_in = ContainerRestartRuleOnExitCodes(operator=RestartRuleOperator.NOT_IN, values=[0])
        assert not_in.matches(1) and not not_in.matches(0)
        ok = c("a", restart_policy="Never", restart_policy_rules=[rule])
        assert pod(containers=[ok]).containers[0].restart_policy_rules == (rule,)
        err = error(lambda: c("a", restart_policy_rules=[rule]))
        assert err.path == "restartPolicy"
        err = error(
            lambda: pod(
                init_containers=[c("s", restart_policy="Always", restart_policy_rules=[rule])]
            )
        )
        assert err.path == "spec.initContainers[0].restartPolicyRules"
        err = error(lambda: ContainerRestartRuleOnExitCodes(operator="In", values=[]))
        assert err.path == "values"
        err = error(lambda: ContainerRestartRuleOnExitCodes(operator="In", values=[256]))
        assert err.path == "values[0]"
        err = error(lambda: ContainerRestartRuleOnExitCodes(operator="In", values=[1, 1]))
        assert err.path == "values[1]"
        err = error(lambda: ContainerRestartRuleOnExitCodes(operator="Is", values=[1]))
        assert err.path == "operator"
        err = error(lambda: ContainerRestartRule(action="Stop", exit_codes=not_in))
        assert err.path == "action"
        err = error(lambda: c("a", restart_policy="Never", restart_policy_rules=[rule] * 21))
        assert err.path == "restartPolicyRules"

    def test_depends_on_rules(self) -> None:
        """depends_on targets exist, aren't regular init containers, and 'ready' needs a probe."""
        err = error(lambda: pod(containers=[c("a", depends_on=["zz"])]))
        assert err.path == "spec.containers[0].dependsOn[0].name"
        err = error(lambda: pod(containers=[c("a", depends_on={"b": "ready"}), c("b")]))
        assert err.path == "spec.containers[0].dependsOn[0].condition"
        err = error(
            lambda: pod(
                init_containers=[c("i", command=["true"])], containers=[c("a", depends_on=["i"])]
            )
        )
        assert err.path == "spec.containers[0].dependsOn[0].name"
        assert error(lambda: c("a", depends_on=["a"])).path == "dependsOn[0].name"
        assert error(lambda: c("a", depends_on={"b": "healthy"})).path == "condition"

    def test_cycle_is_named(self) -> None:
        """A dependency cycle is reported as the cycle itself."""
        with pytest.raises(asyncpod.DependencyCycleError) as info:
            pod(
                containers=[
                    c("a", depends_on=["b"]),
                    c("b", depends_on=["c"]),
                    c("c", depends_on=["a"]),
                ]
            )
        assert info.value.cycle == ("a", "b", "c", "a")
        assert "a -> b -> c -> a" in str(info.value)

    def test_volumes(self) -> None:
        """A volume has exactly one source; quantities and host paths are checked."""
        assert Volume(name="v").empty_dir == EmptyDirVolumeSource()  # Kubernetes' default
        both = error(
            lambda: Volume(
                name="v",
                empty_dir=EmptyDirVolumeSource(),
                host_path=HostPathVolumeSource(path="/x"),
            )
        )
        assert "exactly one volume source" in str(both)
        assert error(lambda: EmptyDirVolumeSource(size_limit="lots")).path == "sizeLimit"
        assert EmptyDirVolumeSource(medium="Memory", size_limit="64Mi").size_bytes == 64 * 2**20
        assert error(lambda: HostPathVolumeSource(path="relative")).path == "path"
        err = error(lambda: pod(volumes=[Volume(name="v", empty_dir=EmptyDirVolumeSource())] * 2))
        assert err.path == "spec.volumes[1].name"

    def test_pod_fields(self) -> None:
        """Pod-level fields are validated with metadata./spec. paths."""
        assert error(lambda: pod(name="Bad Name")).path == "metadata.name"
        assert error(lambda: pod(containers=[])).path == "spec.containers"
        assert error(lambda: pod(restart_policy="Sometimes")).path == "spec.restartPolicy"
        assert error(lambda: pod(termination_grace_period_seconds=-1)).path == (
            "spec.terminationGracePeriodSeconds"
        )
        assert error(lambda: pod(labels={"bad key!": "x"})).path.startswith("metadata.labels")

    @pytest.mark.parametrize(
        ("labels", "path", "match"),
        [
            ({"Bad Key": "x"}, 'metadata.labels["Bad Key"]', "invalid name part"),
            ({"a" * 64: "x"}, f'metadata.labels["{"a" * 64}"]', "invalid name part"),
            ({"/app": "x"}, 'metadata.labels["/app"]', "empty prefix"),
            ({"example.com/": "x"}, 'metadata.labels["example.com/"]', "empty name part"),
            ({"a/b/c": "x"}, 'metadata.labels["a/b/c"]', "more than one '/'"),
            ({"Example.com/app": "x"}, 'metadata.labels["Example.com/app"]', "invalid prefix"),
            ({"a" * 254 + "/app": "x"}, "metadata.labels", "invalid prefix"),
            ({"app": "bad value!"}, 'metadata.labels["app"]', "not a valid label value"),
            ({"app": "-web"}, 'metadata.labels["app"]', "not a valid label value"),
            ({"app": "v" * 64}, 'metadata.labels["app"]', "not a valid label value"),
            ({1: "x"}, "metadata.labels[1]", "must be a string key"),
            ({"app": 1}, 'metadata.labels["app"]', "must be a string"),
        ],
    )
    def test_labels_follow_kubernetes(self, labels: object, path: str, match: str) -> None:
        """Label keys are qualified names, values at most 63 characters of the same kind."""
        err = error(lambda: pod(labels=labels))
        assert err.path.startswith(path)
        assert match in err.reason

    def test_valid_labels_and_annotations(self) -> None:
        """What Kubernetes accepts is accepted: empty values, long prefixes, capitals."""
        prefix = ".".join(["a" * 63] * 4)[:253]
        labels = {f"{prefix}/{'n' * 63}": "v" * 63, "app": "", "A_b.c-D": "x.Y_z-1"}
        assert pod(labels=labels).labels == labels
        # annotation keys are checked lower-cased; values are any text
        annotations = {"Example.COM/Owner": "any text: ✓ \n", "note": ""}
        assert pod(annotations=annotations).annotations == annotations

    def test_annotations_follow_kubernetes(self) -> None:
        """Annotation keys are qualified names; all of them hold at most 256 KiB."""
        err = error(lambda: pod(annotations={"bad key": "x"}))
        assert err.path == 'metadata.annotations["bad key"]'
        assert "not a valid annotation key" in err.reason
        limit = 256 * 1024
        assert pod(annotations={"a": "x" * (limit - 1)}).annotations["a"] == "x" * (limit - 1)
        err = error(lambda: pod(annotations={"a": "x" * limit}))
        assert err.path == "metadata.annotations"
        assert f"at most {limit} bytes" in err.reason
        # bytes of UTF-8, as Go counts them: two per "é"
        err = error(lambda: pod(annotations={"a": "é" * (limit // 2)}))
        assert err.path == "metadata.annotations"

    def test_sleep_hook_within_grace_period(self) -> None:
        """A sleep hook may not outlast the pod's grace period."""
        hook = Lifecycle(pre_stop=LifecycleHandler(sleep=SleepAction(seconds=60)))
        err = error(
            lambda: pod(containers=[c("a", lifecycle=hook)], termination_grace_period_seconds=30)
        )
        assert err.path == "spec.containers[0].lifecycle.preStop.sleep.seconds"

    def test_spec_error_is_value_error(self) -> None:
        """SpecError is also a ValueError and an AsyncpodError."""
        err = error(lambda: c("BAD"))
        assert isinstance(err, ValueError)
        assert isinstance(err, asyncpod.AsyncpodError)


INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
_EXEC = ExecAction(command=["true"])


@pytest.mark.parametrize(
    ("build", "path", "high"),
    [
        (lambda v: Probe(exec=_EXEC, initial_delay_seconds=v), "initialDelaySeconds", INT32_MAX),
        (lambda v: Probe(exec=_EXEC, period_seconds=v), "periodSeconds", INT32_MAX),
        (lambda v: Probe(exec=_EXEC, timeout_seconds=v), "timeoutSeconds", INT32_MAX),
        (lambda v: Probe(exec=_EXEC, success_threshold=v), "successThreshold", INT32_MAX),
        (lambda v: Probe(exec=_EXEC, failure_threshold=v), "failureThreshold", INT32_MAX),
        (
            lambda v: Probe(exec=_EXEC, termination_grace_period_seconds=v),
            "terminationGracePeriodSeconds",
            INT64_MAX,
        ),
        (lambda v: SleepAction(seconds=v), "seconds", INT64_MAX),
        (
            lambda v: pod(termination_grace_period_seconds=v),
            "spec.terminationGracePeriodSeconds",
            INT64_MAX,
        ),
    ],
)
def test_integers_fit_their_kubernetes_type(build: object, path: str, high: int) -> None:
    """An int32 or int64 field of Kubernetes takes no value its Go type cannot hold."""
    build(high)  # type: ignore[operator]
    err = error(lambda: build(high + 1))  # type: ignore[operator]
    assert err.path == path
    assert f"must be at most {high}" in err.reason
    assert error(lambda: build(2**200)).path == path  # type: ignore[operator]


def test_quantities_are_exact_and_fit_an_int64() -> None:
    """sizeLimit is parsed without floating point and must fit in an int64 of bytes."""
    assert EmptyDirVolumeSource(size_limit="7Ei").size_bytes == 7 * 2**60
    assert EmptyDirVolumeSource(size_limit="0.5Ki").size_bytes == 512
    assert EmptyDirVolumeSource(size_limit="1.0001").size_bytes == 2  # rounded up
    assert EmptyDirVolumeSource(size_limit="123456789012345678").size_bytes == 123456789012345678
    for too_large in ("8Ei", "9" * 400):
        err = error(lambda: EmptyDirVolumeSource(size_limit=too_large))  # noqa: B023
        assert err.path == "sizeLimit"
        assert "too large" in err.reason


@pytest.mark.parametrize(
    ("build", "path"),
    [
        (lambda: c(command=["sh", "-c", "echo \ud800"]), "command[2]"),
        (lambda: EnvVar(name="X", value="\udc00"), "value"),
        (lambda: c(working_dir="/\udfff"), "workingDir"),
        (lambda: HostPathVolumeSource(path="/data/\ud800"), "path"),
        (lambda: pod(annotations={"note": "a\ud800"}), 'metadata.annotations["note"]'),
    ],
)
def test_lone_surrogates_are_refused(build: object, path: str) -> None:
    """A str may hold a lone surrogate, UTF-8 (YAML, JSON, Podman's API) cannot."""
    err = error(build)
    assert err.path == path
    assert "lone surrogate" in err.reason
    str(err).encode("utf-8")  # the message escapes it


def test_public_names_are_exported_and_sorted() -> None:
    """The facade's __all__ is complete, sorted case-insensitively, and shows asyncpod.X."""
    assert asyncpod.__all__ == sorted(asyncpod.__all__, key=str.lower)
    for name in asyncpod.__all__:
        obj = getattr(asyncpod, name)
        if isinstance(obj, type):
            assert obj.__module__ == "asyncpod", name


PUBLIC_MODULES = ["asyncpod", "asyncpod.backends", "asyncpod.kube", "asyncpod.testing"]


@pytest.mark.parametrize("module", ["asyncpod", "asyncpod.backends", "asyncpod.testing"])
def test_public_modules_export_sorted_all(module: str) -> None:
    """Each public module lists its names in a case-insensitively sorted __all__."""
    import importlib

    mod = importlib.import_module(module)
    assert list(mod.__all__) == sorted(mod.__all__, key=str.lower)
    for name in mod.__all__:
        assert getattr(mod, name) is not None


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_public_names_are_rehomed(module: str) -> None:
    """Public classes and functions show their public module, and pickle by it."""
    import importlib

    mod = importlib.import_module(module)
    for name in mod.__all__:
        obj = getattr(mod, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__module__ == module, name
        if isinstance(obj, type):
            assert pickle.loads(pickle.dumps(obj)) is obj, name


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_type_hints_resolve_on_public_classes(module: str) -> None:
    """typing.get_type_hints works on every public attrs class (cattrs users need it).

    Re-homed, a class's annotations are evaluated in its public module's namespace.
    """
    import importlib
    import typing

    mod = importlib.import_module(module)
    for name in mod.__all__:
        obj = getattr(mod, name)
        if isinstance(obj, type) and attrs.has(obj):
            typing.get_type_hints(obj)
