"""The deployment files (Dockerfile, compose.yaml, deploy/) checked against crewchief itself.

No Docker engine is needed. Every file is parsed and compared with what the code says:
commands go through crewchief's own argument parser, environment variables through
``load_settings``, metric names in PromQL against the collectors of ``crewchief.metrics``,
and health-check and scrape paths against the API's routes. compose.yaml is also validated
against the Compose specification (the schema that check-jsonschema ships).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from crewchief import metrics
from crewchief.cli import serve as cli_serve
from crewchief.cli.main import _parser
from crewchief.config import (
    _API_ENV_FIELDS,
    _ENV_FIELDS,
    _LOCAL_ENV_FIELDS,
    ALIASES,
    load_settings,
)

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "compose.yaml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "crewchief-dashboard.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"

MONITORING = {"prometheus", "grafana"}
SEVERITIES = {"critical", "warning", "info"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
# What prometheus-client exposes for each collector type, after the family's name.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


# -- reading the files ---------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _yaml(COMPOSE)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


class Dockerfile:
    """Instructions of a Dockerfile: continuation lines joined, comments dropped, ARG
    defaults known, and the instructions of its last stage (the image) apart."""

    def __init__(self, text: str):
        self.instructions: list[tuple[str, str]] = []
        logical = ""
        for raw in text.splitlines():
            if raw.lstrip().startswith("#"):
                continue  # comments, also between continuation lines
            if raw.rstrip().endswith("\\"):
                logical += raw.rstrip()[:-1] + " "
                continue
            logical += raw
            if logical.strip():
                word, _, rest = logical.strip().partition(" ")
                self.instructions.append((word.upper(), rest.strip()))
            logical = ""
        self.args = {}
        for word, rest in self.instructions:
            if word == "ARG" and "=" in rest:
                name, _, default = rest.partition("=")
                self.args.setdefault(name, default)
        starts = [i for i, (word, _) in enumerate(self.instructions) if word == "FROM"]
        assert starts, "Dockerfile: no FROM"
        self.final = self.instructions[starts[-1] :]

    def expand(self, text: str) -> str:
        """``${NAME}`` and ``$NAME`` replaced by the ARG defaults."""
        return re.sub(
            r"\$\{(\w+)\}|\$(\w+)",
            lambda m: self.args.get(m.group(1) or m.group(2), m.group(0)),
            text,
        )

    def all(self, word: str, *, final: bool = True) -> list[str]:
        source = self.final if final else self.instructions
        return [self.expand(rest) for w, rest in source if w == word]

    def last(self, word: str) -> str:
        found = self.all(word)
        assert found, f"Dockerfile: the image has no {word}"
        return found[-1]

    def env(self) -> dict[str, str]:
        """ENV of the image (``ENV A=1 B=2`` form)."""
        out: dict[str, str] = {}
        for rest in self.all("ENV"):
            for item in shlex.split(rest):
                name, sep, value = item.partition("=")
                assert sep, f"Dockerfile: use ENV NAME=value, not {rest!r}"
                out[name] = value
        return out


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation, for an environment that holds ``env`` only."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        current = env.get(name)
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else current
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise AssertionError(f"compose.yaml requires ${name}: {arg}")
            return current
        if op in (":+", "+"):
            return arg if current else ""
        return current or ""

    pattern = r"\$\$|\$\{(\w+)(?:(:?[-?+])([^}]*))?\}|\$(\w+)"
    return re.sub(pattern, one, value)


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _crewchief_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the crewchief image built from this repository."""
    services = _services(compose)
    images = {svc.get("image") for svc in services.values() if "build" in svc}
    assert images, "compose.yaml: no service builds the crewchief image"
    return {n: svc for n, svc in services.items() if "build" in svc or svc.get("image") in images}


def _environment(svc: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment, interpolated; None: passed on from the host (unset here)."""
    raw = svc.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    return {k: None if v is None else _interpolate(str(v), {}) for k, v in raw.items()}


def _container_env(svc: dict[str, Any], dockerfile: Dockerfile) -> dict[str, str]:
    """What the container's process sees: the image's ENV under the service's environment."""
    env = dict(dockerfile.env())
    for name, value in _environment(svc).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _argv(svc: dict[str, Any], dockerfile: Dockerfile) -> list[str]:
    """The arguments after ``crewchief``: the service's command, or the image's CMD."""
    entrypoint = json.loads(dockerfile.last("ENTRYPOINT"))
    assert entrypoint == ["crewchief"], f"Dockerfile: ENTRYPOINT {entrypoint}"
    assert "entrypoint" not in svc, "compose.yaml: a crewchief service overrides the entrypoint"
    command = svc.get("command", json.loads(dockerfile.last("CMD")))
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _parse(argv: list[str], where: str) -> argparse.Namespace:
    try:
        return _parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: `crewchief {shlex.join(argv)}` is not a valid crewchief command")


def _commands(compose: dict[str, Any], dockerfile: Dockerfile) -> dict[str, argparse.Namespace]:
    return {
        name: _parse(_argv(svc, dockerfile), f"compose.yaml service {name}")
        for name, svc in _crewchief_services(compose).items()
    }


def _by_role(compose: dict[str, Any], dockerfile: Dockerfile, role: str) -> dict[str, Any]:
    return {n: a for n, a in _commands(compose, dockerfile).items() if a.command == role}


def _duration_s(text: str | int | float) -> float:
    """A Go (Compose) or Prometheus duration such as ``1m30s`` in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = str(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


def _healthcheck_url(test: Any) -> str:
    text = test if isinstance(test, str) else " ".join(str(t) for t in test)
    urls = re.findall(r"https?://[^'\"\s)]+", text)
    assert len(urls) == 1, f"health check should request one URL: {text}"
    return urls[0]


def _published(svc: dict[str, Any]) -> list[tuple[str, int]]:
    """``(host port, container port)`` of the service's ``ports``."""
    out = []
    for entry in svc.get("ports", []):
        if isinstance(entry, dict):
            out.append((str(entry.get("published")), int(entry["target"])))
        else:
            *_, host, container = str(entry).split(":")
            out.append((host, int(container.split("/")[0])))
    return out


def _mounts(svc: dict[str, Any]) -> list[tuple[str, str]]:
    """``(source, target)`` of the service's volumes (short syntax)."""
    out = []
    for entry in svc.get("volumes", []):
        if isinstance(entry, dict):
            out.append((entry.get("source", ""), entry["target"]))
        else:
            source, target, *_ = str(entry).split(":")
            out.append((source, target))
    return out


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Paths of the API's routes, as `crewchief serve` builds the app (nothing started)."""
    from crewchief.api.app import create_app

    home = tmp_path_factory.mktemp("deploy-home")
    with contextlib.chdir(home):  # no crewchief.toml of the working tree
        settings = load_settings(env={"CREWCHIEF_MODEL": "fake:default"}, home=home)
    app = create_app(settings)
    # Routes of included routers are listed in the OpenAPI document, not in app.routes.
    return set(app.openapi()["paths"]) | {getattr(r, "path", "") for r in app.routes} - {""}


# -- what crewchief exposes ----------------------------------------------------------------


def _sample_cluster_stats() -> metrics.ClusterStats:
    return metrics.ClusterStats(
        operations={("running", "plan"): 1},
        queue={"todo": 1, "doing": 1},
        oldest_wait_s=1.0,
        workers=1,
    )


def _families() -> dict[str, dict[str, set[str]]]:
    """``{family: {exposed series name: its labels}}`` of every metric crewchief exposes:
    the process's collectors and the cluster gauges that API instances add."""
    out: dict[str, dict[str, set[str]]] = {}
    collectors = [c for c in vars(metrics.get()).values() if hasattr(c, "describe")]
    assert collectors, "crewchief.metrics has no collectors"
    for collector in collectors:
        labels = set(getattr(collector, "_labelnames", ()))
        for family in collector.describe():
            assert family.type in SUFFIXES, f"{family.name}: no rule for type {family.type}"
            out[family.name] = {
                family.name + s: labels | ({"le"} if s == "_bucket" else set())
                for s in SUFFIXES[family.type]
            }
    for family in metrics._cluster_families(_sample_cluster_stats()):
        series = out.setdefault(family.name, {})
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return out


@pytest.fixture(scope="module")
def exposed() -> dict[str, set[str]]:
    """Every series name crewchief exposes and its labels; ``up`` is Prometheus's own."""
    names: dict[str, set[str]] = {"up": set()}
    for series in _families().values():
        names.update(series)
    return names


@pytest.fixture(scope="module")
def cluster_gauges() -> set[str]:
    return {f.name for f in metrics._cluster_families(_sample_cluster_stats())}


def test_the_suffix_rule_matches_what_metrics_exposes(exposed: dict[str, set[str]]) -> None:
    """Every series in the real exposition text is among the names the rule gives."""
    from prometheus_client.parser import text_string_to_metric_families

    text = metrics.exposition(_sample_cluster_stats()).decode()
    crewchief = [
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("crewchief_")
    ]
    assert crewchief, "the exposition has no crewchief series"
    assert set(crewchief) <= set(exposed), set(crewchief) - set(exposed)


# -- PromQL --------------------------------------------------------------------------------

_GROUPING = r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)"
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}


def promql_parts(expr: str) -> tuple[set[str], set[str]]:
    """``(metric names, label names)`` an expression uses. Grafana's ``$variables`` are
    dropped; label names come from matchers and grouping clauses."""
    text = re.sub(r"\$\{?\w+\}?", "", expr)
    for opening, closing in ("()", "{}", "[]"):
        assert text.count(opening) == text.count(closing), f"unbalanced {opening}: {expr}"
    labels: set[str] = set()

    def matchers(m: re.Match[str]) -> str:
        body = re.sub(r'"(?:[^"\\]|\\.)*"', '""', m.group(1))
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", body))
        return " "

    def grouping(m: re.Match[str]) -> str:
        labels.update(n.strip() for n in m.group(2).split(",") if n.strip())
        return " "

    text = re.sub(r"\{([^{}]*)\}", matchers, text)
    text = re.sub(_GROUPING, grouping, text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w.:])[A-Za-z_:][\w:]*", text):
        if m.group(0).lower() in _KEYWORDS or text[m.end() :].lstrip().startswith("("):
            continue  # an operator, or a function or aggregation
        names.add(m.group(0))
    return names, labels


def _enclosing_aggregation(expr: str, pos: int) -> str | None:
    """The aggregation or function whose parentheses directly hold ``expr[pos]``."""
    depth = 0
    for i in range(pos - 1, -1, -1):
        if expr[i] == ")":
            depth += 1
        elif expr[i] == "(":
            if depth:
                depth -= 1
                continue
            before = expr[:i].rstrip()
            clause = re.search(r"\b(?:by|without)\s*\([^()]*\)$", before)
            if clause:  # `max by (status) (...)`: the aggregation stands before the clause
                before = before[: clause.start()].rstrip()
            word = re.search(r"(\w+)$", before)
            return word.group(1) if word else None
    return None


def check_expr(
    expr: str, exposed: dict[str, set[str]], cluster_gauges: set[str], where: str
) -> tuple[set[str], set[str]]:
    """Fail unless every metric of ``expr`` is exposed, every label it names belongs to
    one of them, and every cluster gauge sits directly in ``max``."""
    names, labels = promql_parts(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    unknown = names - set(exposed)
    assert not unknown, f"{where}: crewchief exposes no metric {sorted(unknown)} ({expr})"
    known_labels = set().union(*(exposed[n] for n in names)) | TARGET_LABELS
    assert labels <= known_labels, (
        f"{where}: labels {sorted(labels - known_labels)} belong to none of {sorted(names)}"
    )
    for gauge in cluster_gauges:
        for m in re.finditer(rf"\b{gauge}\b", expr):
            outer = _enclosing_aggregation(expr, m.start())
            assert outer == "max", (
                f"{where}: {gauge} is the same on every API instance: aggregate it with max,"
                f" not {outer or 'nothing'} ({expr})"
            )
    return names, labels


def test_promql_parts_finds_metrics_and_labels() -> None:
    names, labels = promql_parts(
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{x="1", y=~"5.."}[5m])))'
        " / b offset 5m and on() c_total * 1e3 + rate(d[$__rate_interval])"
    )
    assert names == {"a_bucket", "b", "c_total", "d"}
    assert labels == {"le", "route", "x", "y"}
    expr = "max by (status) (g) + sum(h) + max(rate(k[5m]))"
    assert _enclosing_aggregation(expr, expr.index("g")) == "max"
    assert _enclosing_aggregation(expr, expr.index("h")) == "sum"
    assert _enclosing_aggregation(expr, expr.index("k")) == "rate"


# -- Dockerfile ----------------------------------------------------------------------------


def test_the_image_installs_the_scaled_extra_on_slim_python(dockerfile: Dockerfile) -> None:
    base = dockerfile.expand(dockerfile.final[0][1]).split()[0]
    assert re.fullmatch(r"python:3\.1[1-9]-slim", base), f"the image is based on {base}"
    bases = {dockerfile.expand(rest).split()[0] for rest in dockerfile.all("FROM", final=False)}
    assert bases == {base}, f"the stages' Pythons differ (the virtualenv moves): {bases}"
    installs = [r for r in dockerfile.all("RUN", final=False) if re.search(r"\bpip install\b", r)]
    extras = {
        e for r in installs for group in re.findall(r"\.\[([^\]]*)\]", r) for e in group.split(",")
    }
    assert "scaled" in extras, f"no `pip install .[scaled]` in {installs}"
    no_cache = "PIP_NO_CACHE_DIR=1" in " ".join(dockerfile.all("ENV", final=False))
    assert no_cache or all("--no-cache-dir" in r for r in installs), "pip keeps its cache"
    final_runs = " ".join(dockerfile.all("RUN"))
    for tool in ("gcc", "g++", "build-essential", "cmake", "make "):
        assert tool not in final_runs, f"the image keeps a build tool: {tool}"


def test_the_image_runs_as_an_unprivileged_user(dockerfile: Dockerfile) -> None:
    user = dockerfile.last("USER").split(":")[0]
    assert user not in ("root", "0"), "the image runs as root"
    created = " ".join(dockerfile.all("RUN"))
    assert re.search(rf"\buseradd\b[^&;]*\b{re.escape(user)}\b", created), (
        f"USER {user} is not created in the image"
    )


def test_the_image_serves_the_api_with_json_logs(
    dockerfile: Dockerfile, compose: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no crewchief.toml of the working tree
    args = _parse(json.loads(dockerfile.last("CMD")), "Dockerfile CMD")
    assert (args.command, args.host, args.port) == ("serve", "0.0.0.0", 8000)
    env = dockerfile.env()
    assert env.get("CREWCHIEF_LOG_FORMAT") == "json"
    assert load_settings(config_file=None, env=env).log_format == "json"
    exposed_ports = {int(p.split("/")[0]) for e in dockerfile.all("EXPOSE") for p in e.split()}
    ports = {args.port} | {a.metrics_port for a in _by_role(compose, dockerfile, "worker").values()}
    assert ports <= exposed_ports, f"EXPOSE {sorted(exposed_ports)}; processes use {sorted(ports)}"


def test_the_image_health_check_asks_the_api_with_python(
    dockerfile: Dockerfile, routes: set[str]
) -> None:
    check = dockerfile.last("HEALTHCHECK")
    command = check[check.index("CMD") + 3 :].strip()
    argv = json.loads(command)
    assert argv[0] == "python", f"slim images have no curl or wget: {argv}"
    url = urlsplit(_healthcheck_url(argv))
    args = _parse(json.loads(dockerfile.last("CMD")), "Dockerfile CMD")
    assert url.port == args.port, (
        f"the health check asks port {url.port}, serve listens on {args.port}"
    )
    assert url.path in routes, f"the API has no route {url.path}"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's patterns leave ``path`` out (last match wins, as Docker does)."""
    parts = PurePosixPath(path).parts
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        # A pattern that matches a directory matches everything under it.
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


def test_the_build_context_holds_what_the_build_needs(dockerfile: Dockerfile) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = []
    for rest in dockerfile.all("COPY", final=False):
        if rest.startswith("--from"):
            continue
        *sources, _ = shlex.split(rest)
        copied += sources
    hatch = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml", hatch["project"]["readme"]}
    needed |= set(hatch["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    assert needed <= {s.rstrip("/") for s in copied}, f"the build needs {needed}, copies {copied}"
    for source in copied:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such file"
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        kept = [f.relative_to(ROOT).as_posix() for f in files if "__pycache__" not in f.parts]
        left_out = [f for f in kept if _ignored(f, patterns)]
        assert not left_out, f"COPY {source}: .dockerignore leaves out {left_out[:5]}"
    for heavy in (".git", ".venv", "tests", "crewchief/__pycache__"):
        assert _ignored(heavy, patterns), f".dockerignore lets {heavy} into the build context"


# -- compose.yaml --------------------------------------------------------------------------


def test_compose_follows_the_compose_specification() -> None:
    pytest.importorskip("check_jsonschema")
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
        + [str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_names_the_services_of_a_scaled_deployment(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the Compose specification has no `version` key"
    expected = {"postgres", "redis", "migrate", "api-1", "api-2", "worker-1", "worker-2"}
    assert expected | MONITORING <= set(_services(compose))
    for name, svc in _services(compose).items():
        profiles = set(svc.get("profiles", []))
        assert profiles == ({"monitoring"} if name in MONITORING else set()), (name, profiles)


def test_every_command_is_one_crewchief_accepts(
    compose: dict[str, Any], dockerfile: Dockerfile
) -> None:
    commands = _commands(compose, dockerfile)
    assert commands["migrate"].command == "db" and commands["migrate"].db_command == "upgrade"
    serving = _by_role(compose, dockerfile, "serve")
    workers = _by_role(compose, dockerfile, "worker")
    assert set(serving) == {"api-1", "api-2"} and set(workers) == {"worker-1", "worker-2"}
    services = _services(compose)
    for name, args in serving.items():
        assert args.host == "0.0.0.0", f"{name} listens on {args.host} only"
        assert not args.no_auth
        targets = [container for _, container in _published(services[name])]
        assert targets == [args.port], f"{name} publishes {targets}, serves on {args.port}"
    for name, args in workers.items():
        assert args.concurrency >= 1
        assert args.metrics_port is not None, f"{name} serves no metrics (--metrics-port)"
    hosts = [host for svc in services.values() for host, _ in _published(svc)]
    assert len(hosts) == len(set(hosts)), f"a host port is published twice: {hosts}"


def test_services_start_in_order_and_only_on_healthy_stores(compose: dict[str, Any]) -> None:
    services = _services(compose)
    conditions = {
        name: {
            dep: (cond or {}).get("condition", "service_started")
            for dep, cond in (
                svc.get("depends_on", {}).items()
                if isinstance(svc.get("depends_on"), dict)
                else dict.fromkeys(svc.get("depends_on", [])).items()
            )
        }
        for name, svc in services.items()
    }
    assert conditions["migrate"].get("postgres") == "service_healthy"
    for name in ("api-1", "api-2", "worker-1", "worker-2"):
        assert conditions[name].get("migrate") == "service_completed_successfully", name
        assert conditions[name].get("redis") == "service_healthy", name
    for name, deps in conditions.items():
        for dep, condition in deps.items():
            assert dep in services, f"{name} depends on {dep}, which is not a service"
            if condition == "service_healthy":
                assert "test" in services[dep].get("healthcheck", {}), f"{dep} has no check"
            if name not in MONITORING:
                assert dep not in MONITORING, f"{name} needs the monitoring profile's {dep}"


def test_health_checks_ask_what_each_service_serves(
    compose: dict[str, Any], dockerfile: Dockerfile, routes: set[str]
) -> None:
    services = _services(compose)
    postgres = services["postgres"]
    pg_test = " ".join(postgres["healthcheck"]["test"])
    assert "pg_isready" in pg_test
    assert postgres["environment"]["POSTGRES_USER"] in pg_test
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert services["migrate"]["healthcheck"] == {"disable": True}
    for name, args in _by_role(compose, dockerfile, "serve").items():
        url = urlsplit(_healthcheck_url(services[name]["healthcheck"]["test"]))
        assert url.port == args.port and url.path in routes, f"{name}: checks {url.geturl()}"
    for name, args in _by_role(compose, dockerfile, "worker").items():
        # Without its own check a worker would inherit the image's, for a server it is not.
        url = urlsplit(_healthcheck_url(services[name]["healthcheck"]["test"]))
        assert url.port == args.metrics_port, f"{name}: checks {url.geturl()}"


def test_every_duration_is_one_compose_reads(compose: dict[str, Any]) -> None:
    for name, svc in _services(compose).items():
        check = svc.get("healthcheck", {})
        for key, value in [("stop_grace_period", svc.get("stop_grace_period"))] + [
            (f"healthcheck.{k}", check.get(k)) for k in ("interval", "timeout", "start_period")
        ]:
            if value is not None:
                assert _duration_s(value) > 0, f"{name}: {key} {value!r}"


def test_stopping_gives_workers_time_to_hand_their_operations_back(
    compose: dict[str, Any], dockerfile: Dockerfile
) -> None:
    from crewchief.executor.worker import DRAIN_S, STOP_DEADLINE_S

    services = _services(compose)
    for name, args in _by_role(compose, dockerfile, "worker").items():
        svc = services[name]
        assert svc.get("stop_signal", "SIGTERM") == "SIGTERM", name
        drain = DRAIN_S if args.drain_seconds is None else args.drain_seconds
        grace = _duration_s(svc.get("stop_grace_period", "10s"))
        # Above the worker's own deadline: Docker never kills a worker still stopping.
        assert grace > drain + STOP_DEADLINE_S, (
            f"{name}: stop_grace_period {grace:g} s; the worker drains {drain:g} s and may take"
            f" up to {drain + STOP_DEADLINE_S:g} s to stop"
        )
    # uvicorn's graceful shutdown in `crewchief serve` (open requests and streams).
    found = re.search(r"timeout_graceful_shutdown=(\d+)", inspect.getsource(cli_serve))
    assert found, "crewchief serve no longer sets timeout_graceful_shutdown: update this test"
    for name in _by_role(compose, dockerfile, "serve"):
        grace = _duration_s(services[name].get("stop_grace_period", "10s"))
        assert grace > int(found.group(1)), f"{name}: stop_grace_period {grace:g} s"


def test_every_process_gets_the_same_scaled_mode_settings(
    compose: dict[str, Any], dockerfile: Dockerfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no crewchief.toml of the working tree
    services = _services(compose)
    crewchief = _crewchief_services(compose)
    envs = {name: _environment(svc) for name, svc in crewchief.items()}
    first = next(iter(envs.values()))
    assert all(env == first for env in envs.values()), "crewchief services differ in settings"
    postgres = services["postgres"]["environment"]
    volumes = set(compose.get("volumes") or {})
    for name, svc in crewchief.items():
        settings = load_settings(config_file=None, env=_container_env(svc, dockerfile))
        assert settings.executor == "queue" and settings.is_postgres, name
        assert settings.log_format == "json", name
        assert settings.api.metrics, f"{name}: /metrics is off"
        assert not settings.auto_migrate, f"{name} migrates on start; `migrate` does that"
        db = urlsplit(settings.database_url or "")
        assert (db.hostname, db.port or 5432) == ("postgres", 5432), settings.database_url
        assert (db.username, db.password, db.path.lstrip("/")) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            postgres["POSTGRES_DB"],
        )
        assert urlsplit(settings.redis_url or "").hostname in services, settings.redis_url
        assert settings.api.workspace_roots, f"{name}: no workspace roots"
        mounts = {target: source for source, target in _mounts(svc)}
        for root in settings.api.workspace_roots:
            assert mounts.get(str(root)) in volumes, f"{name}: workspace root {root} not a volume"


def _names_crewchief_reads() -> set[str]:
    """CREWCHIEF_* variables config.py reads: its tables, literals, and per-alias names."""
    import crewchief.config as config

    source = inspect.getsource(config)
    names = set(_ENV_FIELDS) | set(_LOCAL_ENV_FIELDS) | set(_API_ENV_FIELDS)
    names |= set(re.findall(r"[\"'](CREWCHIEF_[A-Z_]+)[\"']", source))
    for suffix in re.findall(r"f[\"']CREWCHIEF_\{alias\.upper\(\)\}_([A-Z_]+)[\"']", source):
        names |= {f"CREWCHIEF_{alias.upper()}_{suffix}" for alias in ALIASES}
    return names


def _crewchief_source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "crewchief").rglob("*.py"))


def test_every_environment_variable_is_one_crewchief_reads(
    compose: dict[str, Any], dockerfile: Dockerfile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    reads = _names_crewchief_reads()
    assert {"CREWCHIEF_DATABASE_URL", "CREWCHIEF_API_WORKSPACE_ROOTS", "CREWCHIEF_MODEL"} <= reads
    source = _crewchief_source()
    given: dict[str, dict[str, str | None]] = {"Dockerfile": dict(dockerfile.env())}
    for name, svc in _crewchief_services(compose).items():
        given[f"compose.yaml {name}"] = _environment(svc)
    default = load_settings(config_file=None, env={})
    for where, env in given.items():
        for var, value in env.items():
            if var.startswith("CREWCHIEF_"):
                assert var in reads, f"{where}: crewchief reads no {var}"
                if value is not None:
                    changed = load_settings(config_file=None, env={var: value})
                    assert changed != default, f"{where}: {var}={value} changes nothing"
            elif where != "Dockerfile":
                # Provider keys and the like: named somewhere in crewchief's code.
                assert re.search(rf"[\"']{var}[\"']", source), f"{where}: crewchief reads no {var}"


# -- Prometheus ----------------------------------------------------------------------------


def test_prometheus_scrapes_every_process_on_its_metrics_port(
    compose: dict[str, Any], dockerfile: Dockerfile, routes: set[str]
) -> None:
    config = _yaml(PROMETHEUS)
    ports = {n: a.port for n, a in _by_role(compose, dockerfile, "serve").items()}
    ports |= {n: a.metrics_port for n, a in _by_role(compose, dockerfile, "worker").items()}
    roles = {n: a.command for n, a in _commands(compose, dockerfile).items() if n in ports}
    scraped: list[str] = []
    for job in config["scrape_configs"]:
        path = job.get("metrics_path", "/metrics")
        targets = [t for static in job["static_configs"] for t in static["targets"]]
        job_roles = set()
        for target in targets:
            host, _, port = target.rpartition(":")
            assert host in ports, f"job {job['job_name']}: {host} is no crewchief process"
            assert int(port) == ports[host], f"{target}: {host} serves metrics on {ports[host]}"
            job_roles.add(roles[host])
            if roles[host] == "serve":
                assert path in routes, f"job {job['job_name']}: the API has no {path}"
            scraped.append(host)
        assert len(job_roles) == 1, f"job {job['job_name']} mixes {job_roles}: one job per role"
    assert sorted(scraped) == sorted(ports), f"scraped {scraped}, processes {sorted(ports)}"


def test_prometheus_in_compose_loads_this_config_and_its_rules(compose: dict[str, Any]) -> None:
    prometheus = _services(compose)["prometheus"]
    flags = dict(f.split("=", 1) for f in prometheus["command"] if "=" in f)
    config_file = PurePosixPath(flags["--config.file"])
    mounts = {target: source for source, target in _mounts(prometheus)}
    source = mounts.get(str(config_file.parent))
    assert source and (ROOT / source).resolve() == PROMETHEUS.parent, mounts
    assert (PROMETHEUS.parent / config_file.name).is_file()
    rule_files = _yaml(PROMETHEUS)["rule_files"]
    assert [PROMETHEUS.parent / r for r in rule_files] == [ALERTS]


def _alert_rules() -> Iterator[dict[str, Any]]:
    for group in _yaml(ALERTS)["groups"]:
        assert group.get("name") and group.get("rules"), group
        yield from group["rules"]


def test_every_alert_waits_and_says_how_bad_and_what() -> None:
    names = []
    for rule in _alert_rules():
        name = rule.get("alert")
        assert name, f"not an alerting rule: {rule}"
        names.append(name)
        assert _duration_s(rule.get("for", "")) > 0, f"{name}: no `for`"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{name}: severity"
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), name
    assert len(names) == len(set(names)), f"alert names repeat: {names}"


def test_alerts_use_metrics_crewchief_exposes(
    exposed: dict[str, set[str]], cluster_gauges: set[str]
) -> None:
    used: set[str] = set()
    for rule in _alert_rules():
        names, labels = check_expr(rule["expr"], exposed, cluster_gauges, rule["alert"])
        used |= names
        kept = labels | (TARGET_LABELS if "up" in names else set())
        text = " ".join(rule["annotations"].values())
        for label in re.findall(r"\$labels\.(\w+)", text):
            assert label in kept, f"{rule['alert']}: $labels.{label} is not in its result"
    wanted = {
        "crewchief_workers_alive",
        "crewchief_queue_oldest_wait_seconds",
        "crewchief_event_bus_degraded",
        "crewchief_model_calls_total",
        "crewchief_http_requests_total",
        "crewchief_operations_finished_total",
        "crewchief_operation_takeovers_total",
        "up",
    }
    assert wanted <= used, f"no alert on {sorted(wanted - used)}"


# -- Grafana -------------------------------------------------------------------------------


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_the_dashboard_is_a_grafana_dashboard_on_a_chosen_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"] == "crewchief" and dashboard["uid"] and dashboard["tags"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    cells: set[tuple[int, int]] = set()
    for panel in _panels(dashboard):
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, panel["title"]
        area = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_the_dashboard_shows_every_metric_with_its_real_name(
    exposed: dict[str, set[str]], cluster_gauges: set[str]
) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    shown: set[str] = set()
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            names, _ = check_expr(target["expr"], exposed, cluster_gauges, panel["title"])
            shown |= names
    missing = [family for family, series in _families().items() if not set(series) & shown]
    assert not missing, f"the dashboard shows no {missing}"


def test_grafana_in_compose_provisions_prometheus_and_the_dashboard(
    compose: dict[str, Any],
) -> None:
    grafana = _services(compose)["grafana"]
    mounts = {
        target: (ROOT / source).resolve() for source, target in _mounts(grafana) if "/" in source
    }
    assert mounts.get("/etc/grafana/provisioning") == PROVISIONING
    sources = [
        s for ds in PROVISIONING.glob("datasources/*.y*ml") for s in _yaml(ds)["datasources"]
    ]
    prom = [s for s in sources if s["type"] == "prometheus"]
    assert len(prom) == 1 and prom[0].get("isDefault"), sources
    url = urlsplit(prom[0]["url"])
    prometheus = _services(compose)["prometheus"]
    assert url.hostname == "prometheus" and "prometheus" in _services(compose)
    assert any(c == url.port for _, c in _published(prometheus)), (url, prometheus["ports"])
    providers = [p for f in PROVISIONING.glob("dashboards/*.y*ml") for p in _yaml(f)["providers"]]
    assert len(providers) == 1 and providers[0]["type"] == "file", providers
    folder = PurePosixPath(providers[0]["options"]["path"])
    dashboards = [t for t, source in mounts.items() if source == DASHBOARD]
    assert [PurePosixPath(t).parent for t in dashboards] == [folder], (dashboards, folder)


def _listed_as(series: dict[str, set[str]]) -> str:
    """The name a family is listed under: a counter's ``_total``, a histogram's ``_bucket``,
    a gauge's own."""
    return next((n for n in series if n.endswith(("_total", "_bucket"))), min(series, key=len))


def test_the_metric_reference_lists_every_metric() -> None:
    reference = (ROOT / "docs" / "observability.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(crewchief_\w+)`", reference, flags=re.MULTILINE))
    families = {_listed_as(series) for series in _families().values()}
    assert families == listed, (
        f"docs/observability.md lacks {sorted(families - listed)},"
        f" lists unknown {sorted(listed - families)}"
    )
