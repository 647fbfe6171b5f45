"""Scaled mode on one machine, for ``bench.scaled``: processes, database, Redis, and their costs.

- :class:`Postgres`: a fresh database (``crewchief_bench_<random>``) on the machine's
  PostgreSQL, dropped at the end; its statistics (transactions, rows, WAL, size).
- :class:`Redis`: the machine's Redis under a key prefix of this run, removed at the end;
  its CPU time and counters.
- :class:`Cluster`: ``crewchief serve`` and ``crewchief worker`` processes on both, started
  and stopped by PID.
- :class:`Meter`: CPU time of every server-side process, per component, from ``/proc``.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.server import free_port, raise_fd_limit

PG_ADMIN_URL = os.environ.get(
    "CREWCHIEF_BENCH_PG",
    os.environ.get("CREWCHIEF_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
REDIS_URL = os.environ.get(
    "CREWCHIEF_BENCH_REDIS", os.environ.get("CREWCHIEF_TEST_REDIS", "redis://127.0.0.1:6379/0")
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 90.0  # a hang guard: a process normally answers within a few seconds
# Titles of the PostgreSQL processes that serve every database (not one client's backend).
PG_SERVER_TITLES = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "logical replication launcher",
    "stats collector",
    "archiver",
)
COMPONENTS = ("api", "workers", "postgres", "redis")


# -- processes ----------------------------------------------------------------------------------


def _child_setup() -> None:
    """In a started server or worker: more open files, and SIGTERM when the harness dies."""
    raise_fd_limit()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def proc_cpu(pid: int) -> tuple[int, float] | None:
    """``(start time in ticks, utime + stime in seconds)`` of a process, all its threads."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0]
    return int(fields[19]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` (now) and ``VmHWM`` (peak) of a process, in MB; empty once it is gone."""
    out: dict[str, float] = {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) / 1024
    return out


@dataclass
class Proc:
    """One started ``crewchief serve`` (``kind`` api) or ``crewchief worker`` (``kind`` worker)."""

    kind: str
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


def crewchief_cli(env: dict[str, str], *args: str) -> str:
    """Run ``crewchief ARGS`` to its end; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "crewchief.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"crewchief {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


# -- PostgreSQL ---------------------------------------------------------------------------------


class Postgres:
    """A fresh database on the machine's PostgreSQL, and what it did."""

    def __init__(self, admin_url: str = PG_ADMIN_URL):
        self.admin_url = admin_url
        self.name = f"crewchief_bench_{uuid.uuid4().hex[:10]}"
        self.url = f"{admin_url.rsplit('/', 1)[0]}/{self.name}"
        self._conn: Any = None
        self.own_backend = 0  # the backend of the connection that reads the statistics

    def create(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        import psycopg

        if self._conn is not None:
            self._conn.close()
            self._conn = None
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        """The first row of ``sql`` on this database (one connection, opened on first use)."""
        import psycopg

        if self._conn is None:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
            self.own_backend = self._conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        return self._conn.execute(sql, params).fetchone()

    def stats(self) -> dict[str, int]:
        """Counters of this database so far (``pg_stat_database``), WAL position and size.

        A backend reports its counters at most once a second while busy and within 10 s
        of going idle, so read them after a pause when every transaction must count.
        """
        row = self.one(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,"
            " pg_database_size(current_database())"
            " FROM pg_stat_database WHERE datname = current_database()"
        )
        keys = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted")
        return {**dict(zip(keys, row[:5], strict=True)), "wal_bytes": row[5], "db_bytes": row[6]}

    def lease_holder(self, operation_id: str) -> str | None:
        row = self.one("SELECT lease_holder FROM operations WHERE id = %s", (operation_id,))
        return row[0] if row else None

    def processes(self) -> dict[int, str]:
        """PID → ``mine`` (a backend of this database), ``server`` (shared) or ``other``.

        Backends of other databases (other users of the machine's PostgreSQL) are ``other``;
        the connection reading the statistics is left out.
        """
        out: dict[int, str] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if Path(entry.path, "comm").read_text().strip() != "postgres":
                    continue
                cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            pid = int(entry.name)
            if pid == self.own_backend:
                continue
            if self.name in cmdline.split():
                out[pid] = "mine"
            elif not cmdline.startswith("postgres:") or any(t in cmdline for t in PG_SERVER_TITLES):
                out[pid] = "server"
            else:
                out[pid] = "other"
        return out


# -- Redis --------------------------------------------------------------------------------------


class Redis:
    """The machine's Redis: CPU time and counters (for the whole server), and clean-up."""

    def __init__(self, url: str = REDIS_URL):
        import redis

        self.url = url
        self.prefix = f"crewchief-bench-{uuid.uuid4().hex[:10]}"
        self._client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)

    def ping(self) -> None:
        self._client.ping()

    def cpu_seconds(self) -> float:
        cpu = self._client.info("cpu")
        return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])

    def stats(self) -> dict[str, int]:
        info = self._client.info("stats")
        publish = self._client.info("commandstats").get("cmdstat_publish", {})
        return {
            "commands": int(info["total_commands_processed"]),
            "net_input_bytes": int(info["total_net_input_bytes"]),
            "net_output_bytes": int(info["total_net_output_bytes"]),
            "publishes": int(publish.get("calls", 0)),
        }

    def publish(self, channel: str, bodies: list[bytes], batch: int = 1000) -> None:
        """PUBLISH each body on ``<prefix>:<channel>``, pipelined."""
        for i in range(0, len(bodies), batch):
            pipe = self._client.pipeline(transaction=False)
            for body in bodies[i : i + batch]:
                pipe.publish(f"{self.prefix}:{channel}", body)
            pipe.execute()

    def clean(self) -> None:
        keys = list(self._client.scan_iter(match=f"{self.prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            self._client.delete(*keys[i : i + 500])
        self._client.close()


# -- CPU time per component ---------------------------------------------------------------------


def host_ticks() -> tuple[int, int]:
    """The machine's CPU time so far, all cores: ``(all, idle + iowait)`` in clock ticks."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return 0, 0
    return sum(fields), fields[3] + fields[4]  # user nice system idle iowait irq softirq steal


@dataclass
class Snapshot:
    """CPU seconds so far of every measured process (``pid → (component, start, cpu)``)."""

    procs: dict[int, tuple[str, int, float]]
    redis: float | None
    pg_backends: int  # backends of this run's database
    host: tuple[int, int] = (0, 0)  # the machine's (all, idle + iowait) CPU ticks so far


@dataclass
class CpuDelta:
    """CPU seconds per component between two snapshots."""

    seconds: dict[str, float]
    excluded_pg_other: float  # other databases' backends (not this run's)
    ended: dict[str, int] = field(default_factory=dict)  # processes gone: their CPU is lost
    host_capacity: float = 0.0  # CPU seconds the machine had (all cores)
    host_busy: float = 0.0  # CPU seconds it spent on anything

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


class Meter:
    """Reads the CPU time of the API instances, workers, PostgreSQL and Redis.

    Args:
        apis, workers: callables giving the current PIDs of each kind.
        pg, redis: the run's database and Redis, or None (embedded mode).
    """

    def __init__(self, apis: Any, workers: Any, pg: Postgres | None, redis: Redis | None):
        self._apis, self._workers, self._pg, self._redis = apis, workers, pg, redis

    def snapshot(self) -> Snapshot:
        procs: dict[int, tuple[str, int, float]] = {}
        kinds: list[tuple[str, Iterable[int]]] = [
            ("api", self._apis()),
            ("workers", self._workers()),
        ]
        backends = 0
        if self._pg is not None:
            pg = self._pg.processes()
            backends = sum(1 for group in pg.values() if group == "mine")
            kinds.append(("postgres", [p for p, g in pg.items() if g != "other"]))
            kinds.append(("pg_other", [p for p, g in pg.items() if g == "other"]))
        for component, pids in kinds:
            for pid in pids:
                cpu = proc_cpu(pid)
                if cpu is not None:
                    procs[pid] = (component, *cpu)
        redis = self._redis.cpu_seconds() if self._redis is not None else None
        return Snapshot(procs, redis, backends, host_ticks())

    @staticmethod
    def delta(a: Snapshot, b: Snapshot) -> CpuDelta:
        """CPU per component from ``a`` to ``b``; a process new in ``b`` counts from zero."""
        seconds = dict.fromkeys(COMPONENTS, 0.0)
        other = 0.0
        for pid, (component, start, cpu) in b.procs.items():
            before = a.procs.get(pid)
            used = cpu - before[2] if before is not None and before[1] == start else cpu
            if component == "pg_other":
                other += used
            else:
                seconds[component] += used
        ended: dict[str, int] = {}
        for pid, (component, start, _) in a.procs.items():
            after = b.procs.get(pid)
            if after is None or after[1] != start:
                ended[component] = ended.get(component, 0) + 1
        if a.redis is not None and b.redis is not None:
            seconds["redis"] = b.redis - a.redis
        capacity = (b.host[0] - a.host[0]) / CLK_TCK
        idle = (b.host[1] - a.host[1]) / CLK_TCK
        return CpuDelta(seconds, other, ended, capacity, capacity - idle)


# -- the cluster --------------------------------------------------------------------------------


class Cluster:
    """API instances and workers of scaled mode on one database and Redis prefix.

    Args:
        root: A folder for the home, the empty config file and the logs.
        model: ``CREWCHIEF_MODEL`` of every process.
        concurrency: ``crewchief worker --concurrency``.
    """

    def __init__(self, root: Path, model: str, concurrency: int, pg: Postgres, redis: Redis):
        self.root, self.concurrency = root, concurrency
        home = root / "home"
        home.mkdir(parents=True, exist_ok=True)
        (root / "none.toml").write_text("")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
        self.env.update(
            CREWCHIEF_HOME=str(home),
            CREWCHIEF_CONFIG=str(root / "none.toml"),
            CREWCHIEF_MODEL=model,
            CREWCHIEF_ALLOW_MODEL_REQUESTS="0",
            CREWCHIEF_API_RATE_LIMIT="0",
            CREWCHIEF_API_AUTH_FAILURES="0",
            CREWCHIEF_DATABASE_URL=pg.url,
            CREWCHIEF_REDIS_URL=redis.url,
            CREWCHIEF_REDIS_PREFIX=redis.prefix,
            CREWCHIEF_EXECUTOR="queue",
        )
        self.apis: list[Proc] = []
        self.workers: list[Proc] = []
        self.key = ""
        self._started = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def prepare(self) -> None:
        """Create every table (app, checkpoints, job queue) and one API key.

        The tables are created before any server or worker starts, so they never race to
        create them.
        """
        crewchief_cli(self.env, "db", "upgrade")
        self.key = json.loads(
            crewchief_cli(self.env, "keys", "create", "--name", "bench", "--json")
        )["key"]

    def _spawn(self, kind: str, args: list[str], port: int = 0) -> Proc:
        name = f"{kind}-{self._started}"
        self._started += 1
        log = self.root / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "crewchief.cli", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_child_setup,
            )
        proc = Proc(kind, name, popen, log, port)
        (self.apis if kind == "api" else self.workers).append(proc)
        return proc

    def start(self, apis: int = 0, workers: int = 0) -> list[Proc]:
        """Start ``apis`` more API instances and ``workers`` more workers; wait until all answer."""
        started = []
        for _ in range(workers):
            started.append(
                self._spawn("worker", ["worker", "--concurrency", str(self.concurrency)])
            )
        for _ in range(apis):
            port = free_port()
            started.append(
                self._spawn("api", ["serve", "--host", "127.0.0.1", "--port", str(port)], port)
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        for proc in started:
            while not self._ready(proc):
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited: {proc.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{proc.name} did not become ready: {proc.log_tail()}")
                time.sleep(0.1)
            print(f"  {proc.name} pid {proc.pid} ready", file=sys.stderr)
        return started

    @staticmethod
    def _ready(proc: Proc) -> bool:
        if proc.kind == "worker":
            return "ready" in proc.log.read_text(errors="replace")
        try:
            with socket.create_connection(("127.0.0.1", proc.port), timeout=2) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def kill_worker(self, pid: int) -> Proc:
        """SIGKILL the worker with this PID and reap it at once (so its PID is free)."""
        (victim,) = [w for w in self.workers if w.pid == pid]
        victim.popen.send_signal(signal.SIGKILL)
        victim.popen.wait(timeout=10)
        self.workers.remove(victim)
        return victim

    def stop(self) -> None:
        for proc in [*self.apis, *self.workers]:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in [*self.apis, *self.workers]:
            proc.stop()
        self.apis, self.workers = [], []
