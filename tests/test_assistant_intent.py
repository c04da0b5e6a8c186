"""Assistant internals that decide the answer: intent scoring, parameter extraction, prompt
sanitising, the YAML writer and the per-caller limit."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from dragonopsd.assistant import intent, params, yamldoc
from dragonopsd.assistant.limiter import RateLimiter
from dragonopsd.assistant.model import TARGETS, Context, Target
from dragonopsd.assistant.offline import NoMatch, OfflineProvider
from dragonopsd.assistant.prompt import MAX_PROMPT, clean
from dragonopsd.problem import Problem


@pytest.mark.parametrize(
    ("prompt", "target"),
    [
        ("Create an Nginx config for a React app", "nginx"),
        ("set up a reverse proxy with TLS for my API", "nginx"),
        ("A Dockerfile for an nginx-served React app", "dockerfile"),
        ("nginx config for a dockerised app", "nginx"),
        ("Kubernetes deployment with an nginx ingress", "kubernetes"),
        ("docker compose with nginx and postgres", "docker-compose"),
        ("containerize my flask api", "dockerfile"),
        ("run my go binary on boot as a service", "systemd"),
        ("github actions workflow that runs the tests on every push", "github-actions"),
        ("alert me when the disk is full", "prometheus-rules"),
        ("rotate the app logs weekly", "logrotate"),
        ("nightly pg_dump to s3", "backup-script"),
    ],
)
def test_the_artifact_asked_for_wins(prompt: str, target: str) -> None:
    found = intent.match(prompt)
    assert found is not None and found.target == target, intent.scores(prompt)


@pytest.mark.parametrize(
    "prompt", ["hello", "what is the weather tomorrow", "write me a poem about dragons"]
)
def test_prose_matches_nothing(prompt: str) -> None:
    assert intent.match(prompt) is None, intent.scores(prompt)


def test_a_given_target_wins_and_a_close_rival_is_named() -> None:
    found = intent.match("hello", "logrotate")
    assert found is not None and found.target == "logrotate" and found.rival() is None
    close = intent.match("an nginx config and a Dockerfile")
    assert close is not None and close.target == "nginx", close
    assert close.rival() == "dockerfile"


def extract(prompt: str) -> params.Params:
    return params.extract(prompt, Context())


def test_parameters_come_from_the_prompt() -> None:
    p = extract(
        "proxy api.acme.example and www.acme.example to 10.1.0.4:8443 and 10.1.0.5 with "
        "websockets, tls, 4 replicas, 30 requests per second, node 20, staging, called edge"
    )
    assert p.domains == ["api.acme.example", "www.acme.example"]
    assert p.upstreams == [("10.1.0.4", 8443), ("10.1.0.5", 8443)]
    assert (p.tls, p.websocket, p.replicas, p.rate_limit) == (True, True, 4, 30)
    assert (p.node_version, p.environment, p.name, p.app) == ("20", "staging", "edge", "node")
    assert p.defaults == {}


def test_defaults_are_recorded_for_the_explanation() -> None:
    p = extract("a config please")
    assert (p.app, p.port, p.tls, p.name) == ("node", 3000, False, "app")
    assert set(p.defaults) == {"app", "port", "environment", "name"}
    p.uses("port", "unknown")
    assert p.assumed == ["no port named: the app listens on 3000"]


@pytest.mark.parametrize(
    ("prompt", "kind", "framework"),
    [
        ("a Python FastAPI service", "python", "FastAPI"),
        ("React frontend with a Node API", "spa", "React"),
        ("Express API serving a React build", "node", "Express"),
        ("written in Go", "go", "Go"),
        ("go to the docs and set it up", "node", "Node.js"),  # "go" the verb is no language
    ],
)
def test_the_first_named_app_kind_wins(prompt: str, kind: str, framework: str) -> None:
    p = extract(prompt)
    assert (p.app, p.framework) == (kind, framework)


def test_file_names_and_technologies_are_not_domains() -> None:
    p = extract("serve index.html and app.js from node.js for shop.example.com via /etc/x.conf")
    assert p.domains == ["shop.example.com"]


@pytest.mark.parametrize(
    ("prompt", "tls"),
    [("with https", True), ("no tls please", False), ("plain http", False), ("tls off", True)],
)
def test_tls_is_read_from_the_prompt(prompt: str, tls: bool) -> None:
    assert extract(prompt).tls is tls


def test_clean_strips_control_and_format_characters() -> None:
    raw = "\x00nginx\u202e for\u200b a\tReact\r\napp\x1b[31m  "
    assert clean(raw) == "nginx for a\tReact\napp[31m"


@pytest.mark.parametrize("raw", ["", "   ", "\x00\x01\u200b", "\u202e\n\t "])
def test_clean_refuses_nothing_left(raw: str) -> None:
    with pytest.raises(Problem) as err:
        clean(raw)
    assert err.value.status == 422 and err.value.errors[0].field == "$.prompt"


def test_clean_counts_after_stripping() -> None:
    assert len(clean("a" * MAX_PROMPT + "\x00" * 100)) == MAX_PROMPT
    with pytest.raises(Problem):
        clean("a" * (MAX_PROMPT + 1))


VOCABULARY = (
    "nginx react node python go tls https websockets port 8080 10.0.0.5:3000 api.example.com "
    "docker compose postgres redis kubernetes 3 replicas cpu 90% disk logs rotate keep backup "
    "s3://b/x /var/log/x/ database called listen on rate limit 5 r/s for with to and"
)
words = st.sampled_from(VOCABULARY.split())
prompts = st.lists(st.one_of(words, st.text(max_size=12)), max_size=40).map(" ".join)


@given(prompts, st.sampled_from([None, *TARGETS]))
def test_any_prompt_gets_a_file_or_no_match(prompt: str, target: Target | None) -> None:
    """No input reaches a template that breaks: the worst answer is "no match" (a 422)."""
    try:
        out = OfflineProvider().generate(clean(prompt + " x"), target, Context())
    except NoMatch:
        assert target is None
        return
    assert out.code.strip() and out.filename and out.explanation


scalars = st.one_of(
    st.text(max_size=40),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=12), trees, max_size=6))
def test_yaml_reads_back_as_what_was_written(document: dict[str, Any]) -> None:
    assert yaml.safe_load(yamldoc.dump(document)) == (document or None)


def test_yaml_keeps_ambiguous_words_strings() -> None:
    doc = {"on": "yes", "off": ["no", "1.0", "010", "~", "null", "a: b", "# c", "x\ny\n"]}
    assert yaml.safe_load(yamldoc.dump(doc)) == doc


def test_limiter_allows_a_window_then_says_when() -> None:
    limiter = RateLimiter(2, window=60, max_keys=2)
    assert limiter.acquire("a", now=0) is None
    assert limiter.acquire("a", now=1) is None
    assert limiter.acquire("a", now=2) == 58
    assert limiter.acquire("b", now=2) is None  # other callers are not affected
    assert limiter.acquire("a", now=60.5) is None  # the first call left the window
    limiter.acquire("c", now=61)  # a third caller evicts the least recent one (b)
    assert len(limiter._calls) == 2
