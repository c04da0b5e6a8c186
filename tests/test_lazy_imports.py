"""Heavy optional libraries stay unloaded until a monitor, channel or import needs them.

A restart with 25,000 monitors must reach READY within 2 s (issue 20); every library imported
at start is CPU spent before READY. Each check runs in a fresh interpreter, since this test
process has long since imported everything.
"""

from __future__ import annotations

import subprocess
import sys

# dnspython, grpcio (+ protobuf), aiormq, aiomqtt, aiomysql/PyMySQL, apprise, PyYAML.
LAZY = (
    "dns",
    "grpc",
    "google.protobuf",
    "aiormq",
    "aiomqtt",
    "aiomysql",
    "pymysql",
    "apprise",
    "yaml",
)


def loaded_after(code: str) -> list[str]:
    """Which of LAZY a fresh interpreter holds after running `code`."""
    script = f"{code}\nimport sys\nprint(' '.join(m for m in {LAZY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.split()


def test_the_app_and_cli_import_none_of_the_optional_libraries() -> None:
    assert loaded_after("import dragonopsd.app, dragonopsd.cli.serve") == []


def test_a_probe_of_a_lazy_kind_loads_its_library_on_first_use() -> None:
    code = (
        "from dragonopsd.monitoring.probes import probe_for\n"
        "assert probe_for('dns') is not None and probe_for('grpc') is not None\n"
        "assert probe_for('nonesuch') is None"
    )
    assert loaded_after(code) == ["dns", "grpc", "google.protobuf"]


def test_an_apprise_url_loads_apprise_on_first_use() -> None:
    code = (
        "from dragonopsd.notify.channels import instantiate\n"
        "assert instantiate('json://example.com/hook') is not None"
    )
    assert "apprise" in loaded_after(code)


def test_the_daemon_starts_without_apprise_and_loads_it_soon_after() -> None:
    """No Apprise channel: its plugins (~0.3 s of CPU) stay out of the start to READY, then load
    off the loop shortly after, so the first Apprise channel posted is read without a stall."""
    code = (
        "import asyncio, sys, tempfile\n"
        "from aiohttp import web\n"
        "from dragonopsd.app import build_app\n"
        "from dragonopsd.config import from_mapping\n"
        "import dragonopsd.notify.dispatcher as dispatcher\n"
        "dispatcher.WARM_AFTER = 0.3\n"
        "async def main():\n"
        "    with tempfile.TemporaryDirectory() as tmp:\n"
        "        app = build_app(from_mapping({'storage': {'state_dir': tmp}}, env={}))\n"
        "        runner = web.AppRunner(app)\n"
        "        await runner.setup()\n"
        "        print('started', 'apprise' in sys.modules)\n"
        "        for _ in range(200):\n"
        "            if 'apprise.plugins' in sys.modules:\n"
        "                break\n"
        "            await asyncio.sleep(0.05)\n"
        "        print('soon', 'apprise.plugins' in sys.modules)\n"
        "        await runner.cleanup()\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split("\n")[:2] == ["started False", "soon True"], out.stdout + out.stderr
