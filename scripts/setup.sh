#!/usr/bin/env bash
# Set-up on a fresh machine: system packages (when missing), the project virtualenv, the local services'
# software, and Airflow's metadata database. Safe to re-run: each step reuses what is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
mkdir -p .local/logs
PY="${PYTHON:-python3.11}"

step() { printf '\n== %s\n' "$*"; }

step "system packages"
need=()
command -v java >/dev/null && java -version 2>&1 | grep -qE 'version "(17|21)' || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
command -v "$PY" >/dev/null || need+=(python3.11 python3.11-venv)
command -v chromium >/dev/null || need+=(chromium)  # the browser test (Playwright drives Debian's build)
command -v docker-compose >/dev/null || need+=(docker-compose)  # validates the compose file (no engine needed)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)  # the cluster profile's Airflow and FerretDB
command -v redis-server >/dev/null || need+=(redis-server)  # the cluster profile's Celery broker
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${need[*]}" >&2
    echo "install them as root: sudo apt-get install -y ${need[*]}   (then re-run this command)" >&2
    exit 1
  fi
  echo "installing ${need[*]} with apt-get (log: .local/logs/apt.log)"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"; } \
    > .local/logs/apt.log 2>&1 || { tail -20 .local/logs/apt.log >&2; echo "apt-get failed; see .local/logs/apt.log" >&2; exit 1; }
  # Debian's packages may start a system broker on :1883 and a Redis on :6379; the project runs its own. (Its
  # PostgreSQL listens on :5433, beside Debian's own cluster on :5432.)
  for unit in mosquitto redis-server; do
    if [[ " ${need[*]} " == *" $unit "* ]] && command -v systemctl >/dev/null \
        && systemctl is-active --quiet "$unit" 2>/dev/null; then
      systemctl disable --now "$unit" || true
    fi
  done
else
  echo "ok (java, maven, mosquitto, libkrb5-dev, $PY, chromium, docker-compose, postgresql-15, redis-server)"
fi
if ! command -v go >/dev/null || ! go version | grep -qE 'go1\.(2[1-9]|[3-9][0-9])'; then
  echo "Go >= 1.21 is needed to build FerretDB (it then fetches the toolchain it wants from the Go proxy);" >&2
  echo "install it from https://go.dev/dl/ (Debian 12's golang-go is 1.19, too old)" >&2
  exit 1
fi

step "python virtualenv (.venv)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if ! cmp -s requirements.txt .venv/.installed-requirements 2>/dev/null; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  cp requirements.txt .venv/.installed-requirements
else
  echo "requirements unchanged; reusing .venv"
fi
.venv/bin/pip check

step "local services software (.local/opt)"
scripts/with-env python scripts/services.py install

step "airflow metadata database"
scripts/with-env airflow db migrate > .local/logs/airflow-db.log 2>&1 || { tail -20 .local/logs/airflow-db.log >&2; exit 1; }
echo "ok (sqlite at .local/airflow/airflow.db)"
