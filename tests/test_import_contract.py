"""The house's floors hold: command line -> training -> study tools -> data -> core -> kernels.

The contracts live in pyproject.toml ([tool.importlinter]); this runs the same
check as CI's ``lint-imports``, so a developer sees a broken floor in the
ordinary test run.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_no_import_runs_up_a_floor_and_the_core_reads_alone():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(lint).exists():
        pytest.fail('lint-imports is missing: pip install -e ".[test]"')
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_importing_the_core_loads_neither_numba_nor_the_data_or_training_floors():
    code = ("import sys, numpy_cnn.nn.models, numpy_cnn.nn.gradcheck, numpy_cnn.nn.optim; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'matplotlib') "
            "or m.startswith(('numpy_cnn.data', 'numpy_cnn.train', 'numpy_cnn.cli', 'numpy_cnn.study'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
