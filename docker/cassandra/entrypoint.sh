#!/usr/bin/env bash
# Cassandra entrypoint for docker-compose.airflow.yml: the official image has no variable for the
# authenticator, so switch cassandra.yaml to PasswordAuthenticator (the only credentials at first start are
# the built-in cassandra/cassandra; the cassandra-init service replaces them with CASSANDRA_USER/PASSWORD),
# then hand over to the image's own entrypoint.
set -euo pipefail
conf="${CASSANDRA_CONF:-/etc/cassandra}/cassandra.yaml"

# Handles both forms: `authenticator: AllowAllAuthenticator` and
# `authenticator:\n  class_name : org.apache.cassandra.auth.AllowAllAuthenticator` (comments untouched).
sed -i -E '/^[[:space:]]*#/! s/AllowAllAuthenticator/PasswordAuthenticator/' "$conf"
if ! grep -Eq '^[^#]*PasswordAuthenticator' "$conf"; then
  echo "cassandra entrypoint: could not enable PasswordAuthenticator in $conf" >&2
  exit 1
fi

exec docker-entrypoint.sh "$@"
