"""The README's commands work as written: `make demo`'s script, then every line of the command
tour that follows it (the formats, then the devnet as each of our users drives it)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tour() -> str:
    text = (ROOT / "README.md").read_text()
    text = text[text.index("## Command line"):text.index("## Tests and benchmarks")]
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2, "the tour is two bash blocks: the formats, then the devnet"
    return "\n".join(blocks)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_demo_and_the_readme_command_tour_run_as_written():
    env = {**os.environ, "APE_DATA_FOLDER": str(ROOT / ".ape-data")}
    demo = subprocess.run(["scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "every block verifies and every record" in " ".join((demo.stdout + demo.stderr).split())
    script = "set -euo pipefail\nsource .venv/bin/activate\n" + tour()
    try:
        done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)
    finally:
        subprocess.run([str(ROOT / ".venv" / "bin" / "smartta"), "network", "down", "--dir",
                        "networks/local"], cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "VALID record 1" in done.stdout + done.stderr
    assert (ROOT / "audit-trail.pdf").read_bytes().startswith(b"%PDF")
