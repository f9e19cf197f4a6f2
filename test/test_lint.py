"""ruff is the one formatter and linter of the project; the tests fail when it would change or flag
anything."""

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_check_and_format():
    ruff = shutil.which("ruff")
    assert ruff, "ruff is not installed (requirements/dev.txt)"
    check = subprocess.run(
        [ruff, "check", "."], check=False, cwd=REPO, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run(
        [ruff, "format", "--check", "."], check=False, cwd=REPO, capture_output=True, text=True
    )
    assert fmt.returncode == 0, "run `make format`:\n" + fmt.stdout + fmt.stderr
