"""The layers hold: the domain (include/) and the Spark jobs (spark_jobs/) never import Airflow, and the
domain never imports the Airflow glue (plugins/) or the DAGs."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"include": ("airflow", "gait_airflow", "dags"), "spark_jobs": ("airflow", "gait_airflow", "dags")}


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    wrong = {f"{path.relative_to(ROOT)}: {module}" for path in files for module in imported_modules(path)
             if module.split(".")[0] in FORBIDDEN[package]}
    assert not wrong, sorted(wrong)


def test_the_check_sees_an_airflow_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from airflow.sdk import task\n")
    assert "airflow.sdk" in imported_modules(probe)


DOMAIN_CONSTANTS = {  # a text that defines a domain constant -> the one file allowed to hold it
    "(?P<study>Ga|Ju|Si)": "include/gaitpdb.py",  # the recording-id pattern
    '"left_total", "right_total"]': "include/gaitpdb.py",  # the channel names
    '"midfoot_share"': "include/features.py",  # the gait feature names
    "STANCE_FRACTION = ": "include/features.py",
    "window_means_summary.json": "include/layout.py",  # the batch layout
    "kafka_offsets.json": "include/layout.py",
}


@pytest.mark.parametrize("text", sorted(DOMAIN_CONSTANTS))
def test_each_domain_constant_is_defined_in_one_file(text):
    holders = sorted(str(path.relative_to(ROOT)) for folder in ("dags", "plugins", "include", "spark_jobs", "scripts",
                                                                 "benchmarks")
                     for path in (ROOT / folder).rglob("*.py") if text in path.read_text())
    assert holders == [DOMAIN_CONSTANTS[text]]
