"""FerretDB v1 (MongoDB wire protocol), built once from the Go module proxy: on SQLite without logins in the
single-node profile; on the cluster profile's PostgreSQL with logins (PLAIN, checked by PostgreSQL itself)."""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import credentials as local_credentials
from . import postgres
from .core import BIN, HOST, OPT, Service, ServiceError, run

VERSION = "v1.24.2"
MODULE = "github.com/FerretDB/FerretDB"
FALLBACK_TOOLCHAIN = "go1.24.6"  # `go` fetches this toolchain itself if the local Go cannot build v1

if TYPE_CHECKING:
    from pymongo import MongoClient


@dataclass(eq=False)
class FerretDB(Service):
    credentials: Path | None = None  # None: SQLite, anonymous clients; else PostgreSQL and this file's login

    @property
    def binary(self) -> Path:
        return BIN / "ferretdb"

    def installed(self) -> bool:
        return self.binary.is_file()

    def install(self) -> None:
        """Fetch the module source, stamp its version files, build a static binary into BIN.

        `go install ...@v1.24.2` is not used: it panics at start-up (no build/version/version.txt in the
        module zip), and it asks the proxy for the version list, which the proxy here refuses."""
        if self.installed():
            return
        go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
        if go is None:
            raise ServiceError("ferretdb: the `go` command is missing (needed once to build FerretDB)")
        BIN.mkdir(parents=True, exist_ok=True)
        out = subprocess.run([go, "mod", "download", "-json", f"{MODULE}@{VERSION}"], cwd=BIN,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise ServiceError(f"ferretdb: `go mod download {MODULE}@{VERSION}` failed:\n{out.stdout}{out.stderr}")
        info = json.loads(out.stdout)
        src = OPT / f"ferretdb-{VERSION}-src"
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(info["Dir"], src, copy_function=shutil.copyfile)  # the module cache is read-only
        (src / "build/version/version.txt").write_text(VERSION + "\n")
        (src / "build/version/commit.txt").write_text(info.get("Origin", {}).get("Hash", "unknown") + "\n")
        cmd = [go, "build", "-buildvcs=false", "-trimpath", "-o", str(self.binary), "./cmd/ferretdb"]
        env = {"CGO_ENABLED": "0"}
        try:
            run(cmd, cwd=src, env=env, what="go build ferretdb")
        except ServiceError:  # a newer Go may trip over an old dependency: retry with a go1.24 toolchain
            run(cmd, cwd=src, env={**env, "GOTOOLCHAIN": FALLBACK_TOOLCHAIN}, what="go build ferretdb (go1.24)")
        shutil.rmtree(src, ignore_errors=True)  # kept only when the build failed, for a look

    def command(self) -> list[str]:
        # Log level error: at warn, v1 dumps every failed command in full (~18 lines), including the
        # `endSessions` it does not support, which pymongo sends on every close().
        return [str(self.binary), *self.backend_flags(), f"--listen-addr={HOST}:{self.port}",
                f"--state-dir={self.data}", "--debug-addr=-",
                "--telemetry=disable", "--log-level=error"]

    def backend_flags(self) -> list[str]:
        """SQLite in the service's folder, or PostgreSQL with no login of its own: a client's PLAIN login is the
        PostgreSQL login, so a client without one is refused."""
        if self.credentials is None:
            return ["--handler=sqlite", f"--sqlite-url=file:{self.data}/"]
        return ["--handler=postgresql", f"--postgresql-url=postgres://{HOST}:{postgres.PORT}/ferretdb"]

    def login(self) -> dict[str, str]:
        if self.credentials is None:
            return {}
        creds = local_credentials.load(self.credentials)
        return {"username": creds["MONGO_USER"], "password": creds["MONGO_PASSWORD"], "authMechanism": "PLAIN"}

    def client(self, timeout_ms: int = 1500, anonymous: bool = False) -> MongoClient:
        from pymongo import MongoClient

        return MongoClient(HOST, self.port, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                           directConnection=True, **({} if anonymous else self.login()))

    def ready(self) -> bool:
        with self.client() as client:
            return client.admin.command("ping").get("ok") == 1

    def bootstrap(self) -> None:
        """Metrics history: one collection, indexes for "latest first" and "per DAG" queries."""
        from include import names

        with self.client(5000) as client:
            db = client[names.MONGO_DB]
            if names.METRICS_COLLECTION not in db.list_collection_names():
                db.create_collection(names.METRICS_COLLECTION)
            metrics = db[names.METRICS_COLLECTION]
            # create_index is idempotent for an identical name+key; FerretDB v1 supports createIndexes.
            # the registry is listed newest first by trained_at (report page, metrics history)
            metrics.create_index([("trained_at", -1)], name="trained_at_desc")
            metrics.create_index([("dag_id", 1), ("trained_at", -1)], name="dag_id_trained_at")


SERVICE = FerretDB("ferretdb", 27017, ready_timeout=30)
CLUSTER = FerretDB("ferretdb", 27017, ready_timeout=30, credentials=local_credentials.FILE)
