"""The --demo inventory: a few believable clients so a newcomer sees data at first start."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from .inventory.service import InventoryService
from .model.inventory import ClientCreate, EnvironmentCreate, ProjectCreate, ServerCreate
from .model.monitor import MonitorSpec

MonitorCreator = Callable[[MonitorSpec], Awaitable[Any]]

SEEDED = "demo_seeded"

# client -> [(project, technologies, domain)]
CLIENTS: list[tuple[str, str, list[tuple[str, list[str], str]]]] = [
    (
        "Acme Logistics",
        "Freight tracking for 40 warehouses",
        [
            ("Fleet Tracker", ["Python", "FastAPI", "PostgreSQL", "Redis"], "fleet.acme.example"),
            ("Customer Portal", ["React", "TypeScript", "Node.js"], "portal.acme.example"),
        ],
    ),
    (
        "Globex Retail",
        "E-commerce storefronts",
        [
            ("Storefront", ["Next.js", "Go", "PostgreSQL"], "shop.globex.example"),
        ],
    ),
    (
        "Initech Health",
        "Patient scheduling (HIPAA scope)",
        [
            ("Scheduler API", ["Java", "Spring Boot", "MariaDB"], "api.initech.example"),
        ],
    ),
]
# environment -> (server roles, subnet)
ENVIRONMENTS = [("Production", ("web", "db"), 10), ("Staging", ("web",), 20)]


async def seed(inventory: InventoryService) -> bool:
    """Create the demo inventory once per database; False when it was already seeded."""
    if await inventory.store.get_meta(SEEDED):
        return False
    host = 10
    for client_name, about, projects in CLIENTS:
        client = await inventory.create(
            "clients", ClientCreate(name=client_name, description=about, tags=["demo"])
        )
        for project_name, tech, domain in projects:
            project = await inventory.create(
                "projects",
                ProjectCreate(
                    client_id=uuid.UUID(client.id),
                    name=project_name,
                    technology=tech,
                    tags=["demo"],
                ),
            )
            slug = project_name.lower().replace(" ", "-")
            for env_name, roles, subnet in ENVIRONMENTS:
                prefix = "" if env_name == "Production" else "staging."
                env = await inventory.create(
                    "environments",
                    EnvironmentCreate(
                        project_id=uuid.UUID(project.id),
                        name=env_name,
                        url=f"https://{prefix}{domain}",
                        tags=["demo"],
                    ),
                )
                for role in roles:
                    host += 1
                    await inventory.create(
                        "servers",
                        ServerCreate(
                            environment_id=uuid.UUID(env.id),
                            name=f"{slug}-{env_name[:4].lower()}-{role}",
                            type=role,
                            status="running",
                            private_ip=f"10.{subnet}.0.{host}",
                            tags=["demo"],
                        ),
                    )
    await inventory.store.set_meta(SEEDED, "1")
    return True


MONITORS_SEEDED = "demo_monitors_seeded"


def demo_monitors(port: int) -> list[MonitorSpec]:
    """Monitors that work offline: the daemon's own API and port, and a push heartbeat that
    nobody sends (so the demo also shows a monitor going down and its incident)."""
    return [
        MonitorSpec(
            name="dragonopsd API",
            kind="http",
            url=f"http://127.0.0.1:{port}/healthz",
            interval=30,
            given_timeout=5,
            conditions=["[STATUS] == 200", "[BODY].status == ok", "[RESPONSE_TIME] < 500"],
            tags=["demo"],
        ),
        MonitorSpec(
            name="dragonopsd port",
            kind="tcp",
            host="127.0.0.1",
            port=port,
            interval=30,
            given_timeout=5,
            tags=["demo"],
        ),
        MonitorSpec(name="nightly backup", kind="push", interval=120, grace=30, tags=["demo"]),
    ]


async def seed_monitors(inventory: InventoryService, create: MonitorCreator, port: int) -> bool:
    """Add the demo monitors once per database (needs the bound port, so runs after listen)."""
    if await inventory.store.get_meta(MONITORS_SEEDED):
        return False
    for spec in demo_monitors(port):
        await create(spec)
    await inventory.store.set_meta(MONITORS_SEEDED, "1")
    return True
