"""A GitHub Actions CI workflow: install, lint, test and build; optionally push an image."""

from __future__ import annotations

from typing import Any

from .. import yamldoc
from ..params import Params
from .rendered import Rendered

Step = dict[str, Any]


def _node_steps(p: Params) -> list[Step]:
    return [
        {
            "uses": "actions/setup-node@v4",
            "with": {"node-version": p.node_version, "cache": "npm"},
        },
        {"run": "npm ci"},
        {"run": "npm run lint --if-present"},
        {"run": "npm test --if-present"},
        {"run": "npm run build --if-present"},
    ]


def _python_steps(p: Params) -> list[Step]:
    p.assume("dependencies in requirements.txt; tests run with pytest")
    return [
        {
            "uses": "actions/setup-python@v5",
            "with": {"python-version": p.python_version, "cache": "pip"},
        },
        {"run": "python -m pip install -r requirements.txt pytest"},
        {"run": "python -m pytest"},
    ]


def _go_steps(p: Params) -> list[Step]:
    return [
        {"uses": "actions/setup-go@v5", "with": {"go-version": p.go_version}},
        {"run": "go vet ./..."},
        {"run": "go test -race ./..."},
        {"run": "go build ./..."},
    ]


def _image_job() -> dict[str, Any]:
    tag = "ghcr.io/${{ github.repository }}:${{ github.sha }}"
    return {
        "needs": "test",
        "if": "github.event_name == 'push'",
        "runs-on": "ubuntu-latest",
        "permissions": {"contents": "read", "packages": "write"},
        "steps": [
            {"uses": "actions/checkout@v4"},
            {
                "uses": "docker/login-action@v3",
                "with": {
                    "registry": "ghcr.io",
                    "username": "${{ github.actor }}",
                    "password": "${{ secrets.GITHUB_TOKEN }}",
                },
            },
            {"uses": "docker/setup-buildx-action@v3"},
            {
                "uses": "docker/build-push-action@v6",
                "with": {
                    "push": True,
                    "tags": tag,
                    "cache-from": "type=gha",
                    "cache-to": "type=gha,mode=max",
                },
            },
        ],
    }


def render(p: Params) -> Rendered:
    """.github/workflows/ci.yml for p's stack."""
    p.uses("app")
    steps_for = {"python": _python_steps, "go": _go_steps}
    steps: list[Step] = [{"uses": "actions/checkout@v4"}, *steps_for.get(p.app, _node_steps)(p)]
    branch = "main"
    p.assume(f"the default branch is {branch}")
    workflow: dict[str, Any] = {
        "name": "CI",
        "on": {"push": {"branches": [branch]}, "pull_request": {"branches": [branch]}},
        "permissions": {"contents": "read"},
        "concurrency": {
            "group": "${{ github.workflow }}-${{ github.ref }}",
            "cancel-in-progress": True,
        },
        "jobs": {"test": {"runs-on": "ubuntu-latest", "timeout-minutes": 15, "steps": steps}},
    }
    notes = [
        f"Runs on pushes to {branch} and on pull requests: checkout, then the {p.framework} "
        "toolchain's install, lint, test and build; a newer push cancels the older run.",
        "The token is read-only unless a job asks for more.",
    ]
    if p.has(r"\bdocker\b|\bimage\b|\bghcr\b|\bregistry\b|\bcontainer\b"):
        workflow["jobs"]["image"] = _image_job()
        notes.append(
            "After the tests pass on a push, the image is built and pushed to "
            "ghcr.io/<owner>/<repo>:<sha> with the workflow's own token."
        )
    code = yamldoc.dump(workflow, f"{p.name}: continuous integration")
    return Rendered(code, "yaml", ".github/workflows/ci.yml", notes)
