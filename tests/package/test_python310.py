"""gankit declares Python >= 3.10, but ``tomllib`` arrived in 3.11: on 3.10 the config
module must read TOML with ``tomli`` (the same parser, a declared dependency there)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testsupport import SRC


def test_config_reads_toml_where_the_standard_library_has_no_tomllib(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text('[train]\nbatch_size = 16\nloss = "hinge"\n')
    # The run's other dependencies import as usual; then the interpreter looks like 3.10:
    # no tomllib to import, and a version_info below 3.11.
    code = (
        "import sys\n"
        "import gankit.extensions.lr_scheduler, gankit.data.augment, gankit.models.archs\n"
        "sys.modules['tomllib'] = None\n"
        "sys.version_info = (3, 10, 13, 'final', 0)\n"
        "from gankit.cli.config import load_toml\n"
        f"print(sorted(load_toml({str(toml)!r}).items()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[('batch_size', 16), ('loss', 'hinge')]"
