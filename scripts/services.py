#!/usr/bin/env python3
"""Local services tool: install | up | down | status | logs | reset  [service ...]

Everything binds to 127.0.0.1; software lives in .local/opt, data in .local/data, logs in .local/logs.
GAIT_LOCAL_AUTH=on (environment or config/local.env): Mosquitto and Cassandra ask for the logins generated into
.local/credentials.env (scripts/localservices/credentials.py).
GAIT_TOPOLOGY=cluster: the cluster profile (scripts/localservices/topology.py), data under .local/cluster.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from scripts.localservices import spark, topology
from scripts.localservices.core import DATA, LOGS, Service, ServiceError

try:
    GROUPS: list[list[Service]] = topology.groups(topology.current())
except ServiceError as exc:
    sys.exit(str(exc))
SERVICES: list[Service] = [s for group in GROUPS for s in group]
INSTALLERS = [*SERVICES, spark.RUNTIME]


def pick(names: list[str], pool: list) -> list:
    if not names:
        return pool
    known = {s.name: s for s in pool}
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"unknown service(s) {unknown}; known: {sorted(known)}")
    return [known[n] for n in names]


def timed(label: str, fn) -> object:
    began = time.time()
    result = fn()
    print(f"  {label:<22} {result}  ({time.time() - began:.1f}s)", flush=True)
    return result


def cmd_install(args) -> None:
    for item in pick(args.services, INSTALLERS):
        timed(item.name, lambda item=item: (item.install(), "installed")[1])


def cmd_up(args) -> None:
    chosen = set(pick(args.services, SERVICES))
    groups = [[s for s in g if s in chosen] for g in GROUPS]
    errors: list[str] = []

    def start_group(group: list[Service]) -> None:
        for service in group:
            try:
                timed(service.name, service.start)
            except ServiceError as exc:
                errors.append(str(exc))
                return

    with ThreadPoolExecutor(len(groups)) as pool:
        list(pool.map(start_group, [g for g in groups if g]))
    if errors:
        sys.exit("services up failed:\n" + "\n\n".join(errors))
    for service in [s for s in SERVICES if s in chosen]:
        try:
            timed(f"{service.name} objects", lambda service=service: (service.bootstrap(), "ok")[1])
        except Exception as exc:  # noqa: BLE001 - report which service failed, then stop
            sys.exit(f"creating {service.name}'s pipeline objects failed: {exc}; see {service.log}")


def cmd_down(args) -> None:
    """Groups stop in parallel (a KRaft node stopped last would wait for a quorum the others took away), the
    services of a group in reverse order."""
    chosen = set(pick(args.services, SERVICES))

    def stop_group(group: list[Service]) -> None:
        for service in reversed([s for s in group if s in chosen]):
            timed(service.name, service.stop)

    with ThreadPoolExecutor(len(GROUPS)) as pool:
        list(pool.map(stop_group, GROUPS))


def cmd_status(args) -> None:
    print(f"{'service':<21} {'state':<9} {'pid':>7} {'port':>6} {'RSS MiB':>8} {'ready in':>9}  started")
    total, down = 0, []
    for service in pick(args.services, SERVICES):
        pid = service.pid()
        state = "ready" if pid and service.is_ready() else ("starting" if pid else "DOWN")
        rss = service.rss_bytes()
        total += rss
        started = service.started_at()
        when = time.strftime("%H:%M:%S", time.localtime(started[0])) if pid and started else "-"
        ready_in = f"{started[1]:.1f}s" if pid and started else "-"
        print(f"{service.name:<21} {state:<9} {pid or '-':>7} {service.port or '-':>6} {rss / 2**20:>8.0f} "
              f"{ready_in:>9}  {when}")
        if state != "ready":
            down.append(f"{service.name} (port {service.port}, log {service.log})")
    print(f"{'total':<21} {'':<9} {'':>7} {'':>6} {total / 2**20:>8.0f}")
    if down:
        sys.exit("not ready: " + ", ".join(down))


def cmd_logs(args) -> None:
    services = pick(args.services, SERVICES)
    files = [str(s.log) for s in services if s.log.exists()]
    if not files:
        sys.exit(f"no logs yet in {LOGS}")
    subprocess.call(["tail", f"-n{args.lines}", *(["-F"] if args.follow else []), *files])


def cmd_reset(args) -> None:
    cmd_down(args)
    targets = pick(args.services, SERVICES)
    for service in targets:
        shutil.rmtree(service.data, ignore_errors=True)
    if not args.services:
        shutil.rmtree(DATA, ignore_errors=True)
    print(f"wiped data of {', '.join(s.name for s in targets)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn in [("install", cmd_install), ("up", cmd_up), ("down", cmd_down), ("status", cmd_status),
                     ("logs", cmd_logs), ("reset", cmd_reset)]:
        p = sub.add_parser(name)
        p.add_argument("services", nargs="*")
        p.set_defaults(fn=fn)
        if name == "logs":
            p.add_argument("-n", "--lines", type=int, default=40)
            p.add_argument("-f", "--follow", action="store_true")
    args = parser.parse_args(argv)
    try:
        args.fn(args)
    except ServiceError as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
