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


def test_the_training_floor_reads_the_data_floor_through_its_public_names():
    """``numpy_cnn.train`` imports ``numpy_cnn.data`` itself (and the generated-data subpackage),
    never the loaders' modules or their private names: the data floor may rearrange its rooms."""
    import ast

    allowed = {"numpy_cnn.data", "numpy_cnn.data.synthetic"}
    # The hot path draws an epoch's flips and angles with augment's own two helpers (loop.py).
    allowed_in = {"loop.py": {"numpy_cnn.data.augment"}}
    leaks = []
    for path in sorted((ROOT / "numpy_cnn" / "train").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("numpy_cnn.data"):
                names = [a.name for a in node.names]
                if node.module not in allowed | allowed_in.get(path.name, set()) or any(n.startswith("_") for n in names):
                    leaks.append(f"{path.name}: from {node.module} import {', '.join(names)}")
            elif isinstance(node, ast.Import):
                leaks += [f"{path.name}: import {a.name}" for a in node.names
                          if a.name.startswith("numpy_cnn.data.") and a.name not in allowed]
    assert leaks == []
