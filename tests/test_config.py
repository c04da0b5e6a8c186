"""Config: the example file is the defaults, env overrides, and check-config lists every problem."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import msgspec
import pytest

from dragonopsd.config import SECTIONS, Config, ConfigError, from_mapping, load
from dragonopsd.monitoring.declared import parse_channel_tables, parse_window_tables
from dragonopsd.monitoring.service import camel_keys, decode_spec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "dragonops.toml.example"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dragonopsd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_example_documents_every_key_with_its_default() -> None:
    assert load(EXAMPLE, env={}) == Config()
    raw = tomllib.loads(EXAMPLE.read_text())
    for name, cls in SECTIONS.items():
        keys = {f.encode_name for f in msgspec.structs.fields(cls)}
        assert set(raw[name]) == keys, f"[{name}] in the example differs from the code"
    text = EXAMPLE.read_text()
    for line_no, line in enumerate(text.splitlines()):
        if "=" in line and not line.startswith("#"):
            assert text.splitlines()[line_no - 1].startswith("#"), f"undocumented: {line}"


def test_env_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text('[server]\nport = 9000\n[log]\nlevel = "debug"\n')
    cfg = load(
        path,
        env={
            "DRAGONOPS_SERVER__PORT": "9100",
            "DRAGONOPS_REDIS__URL": "redis://h:1/0",
            "DRAGONOPS_SERVER__CORS_ORIGINS": '["https://a.example"]',
            "DRAGONOPS_SECRETS_KEYS": "not-an-override",
            "OTHER": "x",
        },
    )
    assert cfg.server.port == 9100
    assert cfg.redis.url == "redis://h:1/0"
    assert cfg.server.cors_origins == ["https://a.example"]
    assert cfg.log.level == "debug"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping(
            {
                "server": {"port": 70000, "hots": "x", "cors_origins": ["ftp://x"]},
                "log": {"level": "loud"},
                "extra": {},
            },
            env={"DRAGONOPS_STORAGE__READERS": "0", "DRAGONOPS_NOPE__X": "1"},
        )
    problems = err.value.problems
    keys = sorted(p.split(":")[0] for p in problems)
    assert keys == [
        "DRAGONOPS_NOPE__X",
        "extra",
        "log.level",
        "server.cors_origins",
        "server.hots",
        "server.port",
        "storage.readers",
    ]
    assert any("unknown key" in p for p in problems if p.startswith("server.hots"))


def test_relative_paths_resolve_against_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = from_mapping({"storage": {"state_dir": str(tmp_path)}}, env={})
    assert cfg.resolve(cfg.storage.path) == tmp_path / "dragonops.db"
    assert cfg.resolve("/abs/x.db") == Path("/abs/x.db")
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert from_mapping({}, env={}).state_dir() == Path("var")
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/dragonops")  # systemd's StateDirectory=
    assert from_mapping({}, env={}).resolve("dragonops.db") == Path(
        "/var/lib/dragonops/dragonops.db"
    )


def test_check_config_cli_ok_and_failures(tmp_path: Path) -> None:
    good = run_cli("check-config", "--config", str(EXAMPLE))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("ok: listen 127.0.0.1:8750")
    assert len(good.stdout.strip().splitlines()) == 1

    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nport = "eighty"\nmax_body_bytes = 10\n[log]\nformat = "xml"\n')
    out = run_cli("check-config", "--config", str(bad))
    assert out.returncode == 2
    assert "server.port: Expected `int`, got `str`" in out.stderr
    assert "server.max_body_bytes: Expected `int` >= 1024" in out.stderr
    assert "log.format: Invalid enum value 'xml'" in out.stderr

    syntax = tmp_path / "syntax.toml"
    syntax.write_text("[server]\nport = 80\nhost = \n")
    out = run_cli("check-config", "--config", str(syntax))
    assert out.returncode == 2 and "line 3" in out.stderr

    missing = run_cli("check-config", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "file not found" in missing.stderr


@pytest.mark.parametrize(
    "text", ["12345678901234567890", '"quoted"', "1e5", "true", "[not, a, list]", " padded "]
)
def test_env_overrides_of_string_keys_are_taken_as_written(text: str) -> None:
    cfg = load(None, env={"DRAGONOPS_AUTH__JWT_SECRET": text, "DRAGONOPS_AUTH__ISSUER": text})
    assert cfg.auth.jwt_secret == text and cfg.auth.issuer == text


def test_env_overrides_parse_by_the_keys_type() -> None:
    cfg = load(
        None,
        env={
            "DRAGONOPS_SERVER__PORT": " 9100 ",
            "DRAGONOPS_AUTH__LEEWAY": "1e1",
            "DRAGONOPS_AUTH__FAILURE_WINDOW": "90",  # a float key takes an integer
            "DRAGONOPS_REDIS__REQUIRED": "TRUE",
            "DRAGONOPS_PROBES__ALLOW_METADATA": "no",
            "DRAGONOPS_AUTH__DEFAULT_ROLE": "operator",
            "DRAGONOPS_PROBES__DENY_CIDRS": '["10.0.0.0/8", "fd00::/8"]',
            "DRAGONOPS_STATUS_PAGE__PAGES": '[{slug = "team", title = "Team"}]',
        },
    )
    assert cfg.server.port == 9100
    assert cfg.auth.leeway == 10.0 and cfg.auth.failure_window == 90.0
    assert cfg.redis.required is True and cfg.probes.allow_metadata is False
    assert cfg.auth.default_role == "operator"
    assert cfg.probes.deny_cidrs == ["10.0.0.0/8", "fd00::/8"]
    assert cfg.status_page.pages[0].slug == "team"


def test_env_overrides_that_do_not_parse_name_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        load(
            None,
            env={
                "DRAGONOPS_SERVER__PORT": "80.5",
                "DRAGONOPS_AUTH__LEEWAY": "inf",
                "DRAGONOPS_REDIS__REQUIRED": "maybe",
                "DRAGONOPS_PROBES__DENY_CIDRS": "10.0.0.0/8",
                "DRAGONOPS_SERVER__HOTS": "x",
                "DRAGONOPS_STORAGE__READERS": "0",
            },
        )
    problems = sorted(err.value.problems)
    assert problems == [
        "DRAGONOPS_AUTH__LEEWAY: expected a number for auth.leeway",
        "DRAGONOPS_PROBES__DENY_CIDRS: expected a TOML value"
        ' (an array is written ["a", "b"]) for probes.deny_cidrs',
        "DRAGONOPS_REDIS__REQUIRED: expected true or false for redis.required",
        "DRAGONOPS_SERVER__HOTS: unknown key 'hots' in [server]",
        "DRAGONOPS_SERVER__PORT: expected an integer for server.port",
        "storage.readers: Expected `int` >= 1 (from DRAGONOPS_STORAGE__READERS)",
    ]


def test_check_config_takes_an_all_digit_secret_from_the_environment() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAGONOPS_")}
    out = run_cli(
        "check-config", env=env | {"DRAGONOPS_AUTH__JWT_SECRET": "31415926535897932384626"}
    )
    assert out.returncode == 0, out.stderr
    bad = run_cli("check-config", env=env | {"DRAGONOPS_SERVER__PORT": "eighty"})
    assert bad.returncode == 2
    assert "DRAGONOPS_SERVER__PORT: expected an integer for server.port" in bad.stderr
    assert "eighty" not in bad.stderr  # the value may be a secret put in the wrong variable


def test_a_deny_cidr_that_is_not_a_network_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"probes": {"deny_cidrs": ["10.0.0.0/40"]}}, env={})
    assert err.value.problems == ["probes.deny_cidrs: '10.0.0.0/40' is not a network"]


def test_check_config_validates_monitor_tables_as_the_sync_does(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        "[[monitors]]\n"
        'name = "ok"\nkind = "http"\nurl = "https://example.com/"\nfailure_threshold = 2\n'
        "[[monitors]]\n"
        'nmae = "typo"\nkind = "http"\nurl = "https://example.com/"\n'
        "[[monitors]]\n"
        'name = "kind"\nkind = "htp"\n'
        "[[monitors]]\n"
        'name = "fast"\nkind = "tcp"\nhost = "db"\nport = 5432\ninterval = 0.1\n'
        "[[monitors]]\n"
        'name = "cond"\nkind = "http"\nurl = "https://example.com/"\n'
        'conditions = ["[STATUS] == 200", "[STATUS] ="]\n'
        "[[monitors]]\n"
        'name = "ok"\nkind = "push"\nfailure_threshold = "x"\n',
        encoding="utf-8",
    )
    out = run_cli("check-config", "--config", str(path))
    assert out.returncode == 2, out
    lines = [line.strip() for line in out.stderr.splitlines()[1:]]
    assert lines == [
        "monitors[1].nmae: Object contains unknown field `nmae`",
        "monitors[2].kind: Invalid enum value 'htp'",
        "monitors[3].interval: Expected `float` >= 1.0",
        "monitors[4].conditions[1]: expected an operator (==, !=, <, <=, >, >=) (at position 9)",
        "monitors[5].failure_threshold: Expected `int`, got `str`",
    ]
    path.write_text(
        '[[monitors]]\nname = "ok"\nkind = "http"\nurl = "https://example.com/"\n'
        '[[monitors]]\nname = "ok"\nkind = "push"\n',
        encoding="utf-8",
    )
    out = run_cli("check-config", "--config", str(path))
    assert out.returncode == 2
    assert "monitors[1].name: 'ok' is also monitors[0]'s name" in out.stderr


def test_example_monitors_are_valid_for_every_kind() -> None:
    """The commented [[monitors]] (and [[maintenance]], [[notifications]]) examples,
    uncommented, are what the daemon accepts."""
    lines = EXAMPLE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line == "# [[monitors]]")
    uncommented = (line.removeprefix("#").removeprefix(" ") for line in lines[start:])
    # Prose between the tables stays out; tables and their keys come in.
    body = "\n".join(
        line for line in uncommented if line.startswith("[") or re.match(r"^[a-z_]+ = ", line)
    )
    doc = tomllib.loads(body)
    # The windows and channels too, as the sync validates them (references for credentials).
    windows, problems = parse_window_tables(doc["maintenance"])
    channels, more = parse_channel_tables(doc["notifications"])
    assert problems == more == [] and len(windows) == 2 and len(channels) == 3
    tables = doc["monitors"]
    specs = [decode_spec(camel_keys(t)) for t in tables]
    assert {s.kind for s in specs} >= {
        "http", "postgres", "mysql", "redis", "mqtt", "amqp", "websocket", "grpc", "push"
    }  # fmt: skip
