"""PostgreSQL 15 from Debian (cluster profile): Airflow's metadata database and FerretDB's storage.

Listens on 127.0.0.1:5433 (Debian's own cluster may hold 5432) with scram-sha-256 for every TCP client: no
anonymous login. `initdb` and `postgres` refuse to run as root, so as root they run as Debian's `postgres` user.
"""
from __future__ import annotations

import os
import shutil
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from . import credentials as local_credentials
from .core import Service, ServiceError, run

BIN = Path("/usr/lib/postgresql/15/bin")
PORT = 5433
SUPERUSER = "postgres"
# database -> (its owner role, that role's password key in the credentials file)
DATABASES = {"airflow": ("airflow", "AIRFLOW_DB_PASSWORD"),
             "ferretdb": (local_credentials.USERS["MONGO_USER"], "MONGO_PASSWORD")}


def as_postgres() -> list[str]:
    """The command prefix that drops root to Debian's `postgres` user (nothing when not root)."""
    return ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []


@dataclass(eq=False)
class PostgreSQL(Service):
    credentials: Path = local_credentials.FILE

    def installed(self) -> bool:
        return (BIN / "postgres").exists()

    def install(self) -> None:
        if not self.installed():
            raise ServiceError(f"postgresql: {BIN / 'postgres'} is missing: the system step (`make install` as "
                               "root) installs Debian's postgresql-15")

    def prepare(self) -> None:
        """initdb once, with the superuser's password from the credentials file (never on a command line)."""
        if (self.data / "PG_VERSION").exists():
            return
        if os.geteuid() == 0:
            shutil.chown(self.data, SUPERUSER, SUPERUSER)
        self.data.chmod(0o700)
        password_file = self.run_dir / "initdb.pw"  # initdb wants an empty data folder
        password_file.unlink(missing_ok=True)
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(local_credentials.load(self.credentials)["POSTGRES_PASSWORD"] + "\n")
        if os.geteuid() == 0:
            shutil.chown(password_file, SUPERUSER)
        try:
            run([*as_postgres(), str(BIN / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth-local=trust",
                 "--auth-host=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8", "--locale=C.UTF-8"],
                log=self.log, what="initdb")
        finally:
            password_file.unlink(missing_ok=True)

    def command(self) -> list[str]:
        return [*as_postgres(), str(BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-c", f"listen_addresses={self.host}", "-c", f"unix_socket_directories={self.data}",
                "-c", "shared_buffers=64MB", "-c", "max_connections=150"]

    def connect(self, dbname: str = "postgres", user: str = SUPERUSER, password_key: str = "POSTGRES_PASSWORD"):
        import psycopg2

        password = local_credentials.load(self.credentials)[password_key]
        return psycopg2.connect(host=self.host, port=self.port, dbname=dbname, user=user, password=password,
                                connect_timeout=3)

    def ready(self) -> bool:
        with closing(self.connect()) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)

    def start(self) -> str:
        outcome = super().start()
        self.create_databases()  # before Airflow and FerretDB, which start after it in its group
        return outcome

    def create_databases(self) -> None:
        """Each database and its owner role, whose password follows the credentials file."""
        creds = local_credentials.load(self.credentials)
        with closing(self.connect()) as conn:
            conn.autocommit = True  # CREATE DATABASE runs outside a transaction
            cursor = conn.cursor()
            for database, (role, password_key) in DATABASES.items():
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                verb = "ALTER" if cursor.fetchone() else "CREATE"
                cursor.execute(f'{verb} ROLE "{role}" LOGIN PASSWORD %s', (creds[password_key],))
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if not cursor.fetchone():
                    cursor.execute(f'CREATE DATABASE "{database}" OWNER "{role}"')


SERVICE = PostgreSQL("postgres", PORT, ready_timeout=60)
