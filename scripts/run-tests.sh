#!/usr/bin/env bash
# The test command (README, `make test`, .ci/run): install, start services, run every test, stop services
# (also on failure). Prints how long each phase took.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
declare -a PHASES=()
phase() {  # phase <name> <command...>
  local name=$1; shift
  local began=$SECONDS
  printf '\n==== %s\n' "$name"
  "$@"; local rc=$?
  PHASES+=("$(printf '%-10s %5ss  exit %s' "$name" $((SECONDS - began)) "$rc")")
  return $rc
}
report() {
  printf '\n==== phase times\n'
  printf '  %s\n' "${PHASES[@]}"
}
no_leftovers() {  # `down` must leave no live service (or Airflow UI started by a test) running from the project
  local left
  left=$(ps -eo pid=,stat=,args= | awk -v local="$ROOT/.local" -v airflow="$ROOT/.venv/bin/airflow" \
    '$2 !~ /^Z/ && (index($0, local) || index($0, airflow)) && !/awk/')
  [ -z "$left" ] || { echo "processes left behind after down:"; echo "$left"; return 1; }
  echo "no service process left behind"
}
cluster() { GAIT_TOPOLOGY=cluster "$@"; }  # the cluster profile (scripts/localservices/topology.py)
stop_services() {
  phase down scripts/with-env python scripts/services.py down
  phase cluster-down cluster scripts/with-env python scripts/services.py down
  phase leftovers no_leftovers
}

phase install scripts/setup.sh || { report; exit 1; }
phase lint scripts/lint.sh || { report; exit 1; }
# Tests that need no service first: a broken build fails in the first minutes, before any service starts.
mkdir -p test-artifacts
phase fast scripts/with-env python -m pytest tests/unit tests/dags -ra --durations=10 \
  --junitxml=test-artifacts/junit-fast.xml "$@" || { report; exit 1; }
trap 'stop_services || leftover=1; report; [ -z "${leftover:-}" ] || exit 1' EXIT
phase up scripts/with-env python scripts/services.py up || exit 1
phase status scripts/with-env python scripts/services.py status || exit 1
# Then everything on the real services, cheapest first; each test has a timeout (pytest.ini).
phase services scripts/with-env python -m pytest tests/integration tests/e2e tests/faults tests/load -ra \
  --durations=25 --junitxml=test-artifacts/junit.xml "$@"
rc=$?
# Then the cluster profile: one profile at a time (they share ports), so the single node's services stop first.
phase down scripts/with-env python scripts/services.py down || exit 1
phase cluster-up cluster scripts/with-env python scripts/services.py up || exit 1
# The cluster suite, then node loss cases 3 (a Cassandra node during the Spark writes) and 7 (a Celery worker during
# the capture); `make cluster-faults` runs every case.
node_loss=tests/cluster_faults/test_node_loss.py
phase cluster cluster scripts/with-env python -m pytest tests/cluster \
  "$node_loss::test_case_3_cassandra_node_lost_during_the_spark_writes" \
  "$node_loss::test_case_7_celery_worker_lost_while_it_runs_the_capture" \
  -ra --durations=10 --junitxml=test-artifacts/junit-cluster.xml "$@"
cluster_rc=$?
for code in $rc $cluster_rc; do
  if [ "$code" -eq 5 ]; then
    echo "pytest collected no tests (exit 5): treated as a failure" >&2
  fi
done
[ $rc -ne 0 ] && exit $rc
exit $cluster_rc
