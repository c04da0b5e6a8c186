"""The README's Tour runs as written: every shell block marked <!-- tour --> is executed, top to
bottom, in one shell, against a real `dragonopsd serve --demo` started the way the README's
first command starts it (from the same directory, state in ./var). Blocks that cannot run here
say why (<!-- not run: ... -->); an unmarked shell block fails the test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from daemon import Daemon

README = Path(__file__).parent.parent / "README.md"
BLOCK = re.compile(r"(?:<!-- (?P<mark>[^>]*?) -->\n)?```sh\n(?P<body>.*?)```", re.DOTALL)


def tour_blocks() -> list[str]:
    text = README.read_text()
    tour = text[text.index("## Tour") : text.index("## Development")]
    blocks = []
    for m in BLOCK.finditer(tour):
        mark = m["mark"] or ""
        if mark == "tour":
            blocks.append(m["body"])
        else:
            assert mark.startswith("not run: ") and len(mark) > 12, (
                f"a shell block in the Tour is neither <!-- tour --> nor "
                f"<!-- not run: why -->:\n{m['body'][:300]}"
            )
    return blocks


def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    blocks = tour_blocks()
    assert len(blocks) >= 6, "the Tour lost its runnable blocks"
    # The README's first command runs `dragonopsd serve --demo` in the checkout: ./var is the
    # state directory, so the tour's `cat var/admin.token` and CLI calls find it.
    home = tmp_path / "checkout"
    home.mkdir()
    venv = Path(sys.executable).parent
    (home / ".venv").symlink_to(venv.parent)
    with Daemon(home / "var", "--demo") as d:
        d.wait_listening()
        port = str(d.port)
        # The only change to the text: the port the test daemon got instead of 8750.
        script = "set -euo pipefail\n" + "\n".join(b.replace(":8750", f":{port}") for b in blocks)
        (tmp_path / "tour.sh").write_text(script)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRAGONOPS_")}
        env.pop("STATE_DIRECTORY", None)
        env["PATH"] = f"{venv}:{env['PATH']}"
        run = subprocess.run(
            ["bash", str(tmp_path / "tour.sh")],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        out = run.stdout[-6000:] + "\n--- stderr ---\n" + run.stderr[-4000:]
        assert run.returncode == 0, out
        log = d.log
    # What a reader would notice: each step answered, and the daemon logged no failure.
    assert '"language":"nginx"' in run.stdout, out
    assert "Traceback" not in log and " ERROR " not in log, log[-4000:]
