# The two commands most people need:
#   make demo   set up everything, start the local services, run the pipeline on the bundled sample
#   make test   set up everything, start the local services, run all tests, stop the services
#   make ui     set up everything, start the local services and the Airflow UI (prints URL and login)
.PHONY: install up down status logs reset demo test unit lint lock ui bench capacity faults load cluster-up cluster-down cluster-test cluster-faults

SERVICES = scripts/with-env python scripts/services.py

install:
	scripts/setup.sh

up:
	$(SERVICES) up

down:
	$(SERVICES) down

status:
	$(SERVICES) status

logs:
	$(SERVICES) logs

reset:
	$(SERVICES) reset

demo: install up
	scripts/with-env python scripts/demo.py

test:
	scripts/run-tests.sh

ui: install up
	scripts/with-env python scripts/ui.py

# Pipeline benchmark on the full dataset (unpacked on first use), median of 3: see benchmarks/pipeline.py.
# ARGS="--smoke" for the quick check CI runs; results in test-artifacts/benchmarks/.
bench: install up
	scripts/with-env python -m benchmarks.pipeline $(ARGS)

# Scale-out on paper (docs/capacity.md): the capacity table from a benchmark run's JSON (ARGS="path.json" to choose).
capacity: install
	scripts/with-env python -m benchmarks.capacity $(ARGS)

# Fault injection (`make test` runs it too): 7 cases that stop, restart or kill real services and processes
# during DAG runs; retries and recovery times in test-artifacts/faults/report.json.
faults: install up
	scripts/with-env python -m pytest tests/faults -ra

# Sustained load: 10 minutes of publishing while no DAG runs, then one DAG run (`make test` runs 20 s of it).
load: install up
	GAIT_LOAD_SECONDS=600 GAIT_LOAD_CAPTURE_BOUND=1000000 scripts/with-env python -m pytest tests/load -ra

# ruff (lint everywhere; format check of the domain and orchestration packages) and mypy (`make test` runs it first).
lint:
	scripts/lint.sh

# Fast tests that need no services (contract, windowing, training, DAG integrity, compose file).
unit:
	scripts/with-env python -m pytest tests/unit tests/dags -q

# The cluster profile (scripts/localservices/topology.py, config/cluster.env): replicated services, logins on.
# One profile at a time: `make down` first. `make test` runs the cluster suite too, after the single-node one.
CLUSTER = GAIT_TOPOLOGY=cluster

cluster-up: install
	$(CLUSTER) $(SERVICES) up

cluster-down:
	$(CLUSTER) $(SERVICES) down

cluster-test: cluster-up
	$(CLUSTER) scripts/with-env python -m pytest tests/cluster -ra

# Node loss: each case SIGKILLs one node at an exact moment of a scheduler-driven run (tests/cluster_faults).
cluster-faults: cluster-up
	$(CLUSTER) scripts/with-env python -m pytest tests/cluster_faults -ra

# Re-resolve requirements.in into the pinned requirements.txt.
lock:
	rm -rf .local/lock-venv && python3.11 -m venv .local/lock-venv
	.local/lock-venv/bin/pip install -q -r requirements.in
	.local/lock-venv/bin/pip check
	{ echo "# Resolved from requirements.in with Python 3.11 (make lock)."; .local/lock-venv/bin/pip freeze --exclude-editable; } > requirements.txt
