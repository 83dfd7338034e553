#!/usr/bin/env bash
# One-shot set-up run by the airflow-init service of docker-compose.airflow.yml (as root, before the other
# Airflow containers start):
#   1. the shared folders (logs volume, SimpleAuthManager password folder) owned by the Airflow user;
#   2. the admin password: when AIRFLOW_ADMIN_PASSWORD is set in .env it is written into the SimpleAuthManager
#      password file; when it is empty the api-server generates one on first start, prints it in its log and
#      keeps it in that same file (volume airflow-auth, path in AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE);
#   3. the metadata database schema: airflow db migrate.
set -euo pipefail

uid="${AIRFLOW_UID:-50000}"
password_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE is not set}"
admin_user="${AIRFLOW_ADMIN_USER:?AIRFLOW_ADMIN_USER is not set}"
auth_dir="$(dirname "$password_file")"

mkdir -p /opt/airflow/logs "$auth_dir"

if [[ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]]; then
  # Keep any other user's entry; (re)set the admin's so .env stays the source of truth.
  python - "$password_file" "$admin_user" <<'PY'
import json, os, sys
path, user = sys.argv[1], sys.argv[2]
try:
    with open(path) as f:
        passwords = json.loads(f.read().strip() or "{}")
except FileNotFoundError:
    passwords = {}
passwords[user] = os.environ["AIRFLOW_ADMIN_PASSWORD"]
with open(path, "w") as f:
    f.write(json.dumps(passwords) + "\n")
print(f"airflow-init: password of {user!r} set from AIRFLOW_ADMIN_PASSWORD in {path}")
PY
else
  echo "airflow-init: AIRFLOW_ADMIN_PASSWORD is empty; the api-server generates the password of '$admin_user'"
  echo "  (see: docker compose logs airflow-api-server | grep 'Simple auth manager', or the file $password_file)"
fi

chown -R "$uid:0" /opt/airflow/logs "$auth_dir"
chmod 0770 "$auth_dir"
[[ -f "$password_file" ]] && chmod 0660 "$password_file"

# The image's entrypoint waits for the database, then runs the command.
exec /entrypoint airflow db migrate
