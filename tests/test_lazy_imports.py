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
