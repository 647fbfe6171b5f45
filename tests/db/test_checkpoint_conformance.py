"""LangGraph's checkpointer conformance suite against the savers crewchief opens.

The suite (``langgraph-checkpoint-conformance``) is a set of async checks, one
list per capability, that take a saver. Each check runs here as its own pytest
test on a fresh saver opened through :func:`crewchief.db.checkpoint.checkpointer`
(the way crewchief opens it), so a failure names the check and its assertion:

* ``sqlite``: the default, a :class:`ThreadedSqliteSaver` on a new file;
* ``postgres``: LangGraph's ``AsyncPostgresSaver`` on a new database.

``test_conformance_report`` also runs the package's own runner (``validate``)
once per backend and checks that its verdict, and the checks it ran, agree
with the per-check tests.

Capabilities are detected the way the suite does it: a capability is claimed
when the saver overrides its async method. The base capabilities are required.
An extended capability a saver does not claim is skipped, but only with a
reason written down in ``NOT_CLAIMED``; an undocumented gap fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

# The checks are plain ``assert`` statements: have pytest rewrite them so that a
# failure shows the values compared. Must run before the spec modules are imported.
pytest.register_assert_rewrite("langgraph.checkpoint.conformance")

from langgraph.checkpoint.conformance import checkpointer_test, validate  # noqa: E402
from langgraph.checkpoint.conformance.capabilities import (  # noqa: E402
    BASE_CAPABILITIES,
    Capability,
    DetectedCapabilities,
)
from langgraph.checkpoint.conformance.initializer import RegisteredCheckpointer  # noqa: E402
from langgraph.checkpoint.conformance.report import ProgressCallbacks  # noqa: E402
from langgraph.checkpoint.conformance.spec import (  # noqa: E402
    test_copy_thread as copy_thread_spec,
)
from langgraph.checkpoint.conformance.spec import (  # noqa: E402
    test_delete_for_runs as delete_for_runs_spec,
)
from langgraph.checkpoint.conformance.spec import (  # noqa: E402
    test_delete_thread as delete_thread_spec,
)
from langgraph.checkpoint.conformance.spec import (  # noqa: E402
    test_get_tuple as get_tuple_spec,
)
from langgraph.checkpoint.conformance.spec import test_list as list_spec  # noqa: E402
from langgraph.checkpoint.conformance.spec import test_prune as prune_spec  # noqa: E402
from langgraph.checkpoint.conformance.spec import test_put as put_spec  # noqa: E402
from langgraph.checkpoint.conformance.spec import (  # noqa: E402
    test_put_writes as put_writes_spec,
)

from crewchief.config import Settings  # noqa: E402
from crewchief.db.checkpoint import ThreadedSqliteSaver, checkpointer  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

Check = Callable[[Any], Awaitable[None]]

# The suite's checks per capability: the lists its runners (validate) iterate over.
CHECKS: dict[Capability, list[Check]] = {
    Capability.PUT: put_spec.ALL_PUT_TESTS,
    Capability.PUT_WRITES: put_writes_spec.ALL_PUT_WRITES_TESTS,
    Capability.GET_TUPLE: get_tuple_spec.ALL_GET_TUPLE_TESTS,
    Capability.LIST: list_spec.ALL_LIST_TESTS,
    Capability.DELETE_THREAD: delete_thread_spec.ALL_DELETE_THREAD_TESTS,
    Capability.DELETE_FOR_RUNS: delete_for_runs_spec.ALL_DELETE_FOR_RUNS_TESTS,
    Capability.COPY_THREAD: copy_thread_spec.ALL_COPY_THREAD_TESTS,
    Capability.PRUNE: prune_spec.ALL_PRUNE_TESTS,
}

# Extended capabilities a backend's saver does not implement, and why that is fine.
# Nothing in crewchief deletes runs, copies threads or prunes checkpoints; threads
# are only removed whole (adelete_thread, a base capability, checked below).
NOT_CLAIMED: dict[str, dict[Capability, str]] = {
    "sqlite": {
        Capability.DELETE_FOR_RUNS: "LangGraph's SqliteSaver has no delete_for_runs, "
        "so ThreadedSqliteSaver (which runs its sync methods) has no adelete_for_runs",
        Capability.COPY_THREAD: "LangGraph's SqliteSaver has no copy_thread, "
        "so ThreadedSqliteSaver has no acopy_thread",
        Capability.PRUNE: "LangGraph's SqliteSaver has no prune, "
        "so ThreadedSqliteSaver has no aprune",
    },
    "postgres": {
        Capability.DELETE_FOR_RUNS: "AsyncPostgresSaver does not implement adelete_for_runs",
        Capability.COPY_THREAD: "AsyncPostgresSaver does not implement acopy_thread",
    },
}

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

CHECK_PARAMS = [
    pytest.param(cap, check, id=f"{cap.value}-{check.__name__.removeprefix('test_')}")
    for cap, checks in CHECKS.items()
    for check in checks
]


def _expected_saver_type(backend: str) -> type:
    if backend == "sqlite":
        return ThreadedSqliteSaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    return AsyncPostgresSaver


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def backend_checkpoint_settings(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Settings:
    """Settings whose checkpoints go to a new SQLite file or a new PostgreSQL database."""
    if backend == "sqlite":
        settings = make_settings(tmp_path / "home")
        assert settings.resolved_checkpoint_url == str(tmp_path / "home" / "checkpoints.db")
        return settings
    url = request.getfixturevalue("postgres_url")  # a fresh database, dropped afterwards
    # A PostgreSQL database URL moves checkpoints there too: crewchief's usual setup.
    settings = make_settings(tmp_path / "home", database_url=url)
    assert settings.resolved_checkpoint_url == url
    return settings


@pytest.fixture
def registered(backend: str, backend_checkpoint_settings: Settings) -> RegisteredCheckpointer:
    """The saver factory, registered with the suite: each call opens a new saver."""
    expected = _expected_saver_type(backend)

    @checkpointer_test(name=f"crewchief-{backend}")
    async def crewchief_checkpointer() -> AsyncIterator[Any]:
        async with checkpointer(backend_checkpoint_settings) as saver:
            assert isinstance(saver, expected), f"{backend}: got {type(saver).__name__}"
            yield saver

    return crewchief_checkpointer


def test_every_capability_has_its_checks() -> None:
    """A suite version with a new capability must not go unnoticed here."""
    assert set(CHECKS) == set(Capability)
    assert all(CHECKS.values()), "a capability with no checks"
    for backend_name, gaps in NOT_CLAIMED.items():
        assert not (set(gaps) & BASE_CAPABILITIES), (
            f"{backend_name}: base capabilities are required"
        )


@pytest.mark.parametrize(("capability", "check"), CHECK_PARAMS)
async def test_conformance_check(
    backend: str, registered: RegisteredCheckpointer, capability: Capability, check: Check
) -> None:
    async with registered.create() as saver:
        detected = DetectedCapabilities.from_instance(saver).detected
        if capability not in detected:
            assert capability not in BASE_CAPABILITIES, (
                f"{type(saver).__name__} lacks the required capability {capability.value}"
            )
            reason = NOT_CLAIMED[backend].get(capability)
            assert reason, (
                f"{type(saver).__name__} does not implement {capability.value}: "
                f"add the reason to NOT_CLAIMED[{backend!r}] or implement it"
            )
            pytest.skip(f"{capability.value} not claimed: {reason}")
        await check(saver)


async def test_conformance_report(backend: str, registered: RegisteredCheckpointer) -> None:
    """The suite's own runner: everything the saver claims passes, and it ran our checks."""
    report = await validate(registered, progress=ProgressCallbacks.verbose())
    report.print_report()
    failures = [f for result in report.results.values() for f in result.failures]
    assert report.passed_all(), f"{backend} fails conformance checks:\n" + "\n".join(failures)
    assert report.passed_all_base()
    claimed = {cap for cap in Capability if report.results[cap.value].detected}
    assert claimed == set(Capability) - set(NOT_CLAIMED[backend]), (
        f"{backend}: claimed capabilities changed; update NOT_CLAIMED: {sorted(claimed)}"
    )
    for cap in claimed:
        result = report.results[cap.value]
        assert result.tests_passed == len(CHECKS[cap]), (cap.value, result)
