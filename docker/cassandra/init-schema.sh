#!/usr/bin/env bash
# One-shot (service cassandra-init of docker-compose.airflow.yml), run with cqlsh from the cassandra image:
#   1. credentials: at first start Cassandra (PasswordAuthenticator) only knows the built-in superuser
#      cassandra/cassandra. Create CASSANDRA_USER (superuser, login) with CASSANDRA_PASSWORD from .env, then
#      disable the built-in login (random password, no login). Later runs log in as CASSANDRA_USER directly.
#   2. schema: apply include/cql/schema.cql (CREATE ... IF NOT EXISTS, so re-runs are no-ops).
# Changing CASSANDRA_PASSWORD in .env afterwards needs `ALTER ROLE` by hand (or a fresh cassandra-data volume).
set -euo pipefail

host="${CASSANDRA_HOST:-cassandra}"
port="${CASSANDRA_PORT:-9042}"
user="${CASSANDRA_USER:?CASSANDRA_USER is not set (see .env)}"
password="${CASSANDRA_PASSWORD:?CASSANDRA_PASSWORD is not set (see .env)}"
schema="${SCHEMA_FILE:-/opt/parkinson/schema.cql}"
builtin_user=cassandra   # the image's built-in superuser, before this script runs
builtin_login=cassandra

cql() {  # cql USER PASSWORD cqlsh-args...
  local u="$1" p="$2"
  shift 2
  cqlsh "$host" "$port" -u "$u" -p "$p" --connect-timeout=20 --request-timeout=60 "$@"
}
literal() {  # a CQL string literal
  printf "'%s'" "${1//\'/\'\'}"
}
can_login() {
  cql "$1" "$2" -e "SELECT release_version FROM system.local" >/dev/null 2>&1
}

login=""
for attempt in $(seq 1 60); do
  if can_login "$user" "$password"; then login=configured; break; fi
  if can_login "$builtin_user" "$builtin_login"; then login=builtin; break; fi
  echo "cassandra-init: waiting for CQL authentication at $host:$port ($attempt/60)"
  sleep 5
done
if [[ -z "$login" ]]; then
  echo "cassandra-init: cannot log in at $host:$port as '$user' (CASSANDRA_USER/CASSANDRA_PASSWORD in .env)" >&2
  echo "  nor as the built-in superuser; last error:" >&2
  cql "$user" "$password" -e "SELECT release_version FROM system.local" >&2 || true
  exit 1
fi

if [[ "$login" == builtin ]]; then
  if [[ "$user" == "$builtin_user" ]]; then
    cql "$builtin_user" "$builtin_login" -e "ALTER ROLE $builtin_user WITH PASSWORD = $(literal "$password")"
  else
    cql "$builtin_user" "$builtin_login" -e \
      "CREATE ROLE IF NOT EXISTS $(literal "$user") WITH PASSWORD = $(literal "$password") AND SUPERUSER = true AND LOGIN = true"
    for _ in $(seq 1 30); do can_login "$user" "$password" && break; sleep 2; done
  fi
  echo "cassandra-init: role '$user' ready"
fi
# Also after an interrupted earlier run: the well-known built-in login must not stay usable.
if [[ "$user" != "$builtin_user" ]] && can_login "$builtin_user" "$builtin_login"; then
  locked="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
  cql "$user" "$password" -e \
    "ALTER ROLE $builtin_user WITH PASSWORD = $(literal "$locked") AND SUPERUSER = false AND LOGIN = false"
  echo "cassandra-init: built-in '$builtin_user' login disabled"
fi

cql "$user" "$password" -f "$schema"
echo "cassandra-init: applied $schema; tables:"
cql "$user" "$password" -e \
  "SELECT keyspace_name, table_name FROM system_schema.tables WHERE keyspace_name = $(literal "${CASSANDRA_KEYSPACE:-parkinson}")"
