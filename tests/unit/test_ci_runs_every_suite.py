"""The test command (scripts/run-tests.sh, which `make test` and .ci/run call) runs every test folder, with
no marker that deselects cases: a new suite cannot be left out of CI by accident."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_run_tests_covers_every_test_folder_and_deselects_nothing():
    script = (ROOT / "scripts" / "run-tests.sh").read_text()
    run = set(re.findall(r"\btests/(\w+)", script))
    folders = {p.parent.name for p in (ROOT / "tests").glob("*/test_*.py")}
    assert folders and folders <= run, f"folders the test command never runs: {sorted(folders - run)}"
    assert not re.search(r"pytest\b[^\n]*\s-m\s", script) and "--deselect" not in script and " -k " not in script
