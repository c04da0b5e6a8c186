"""`dragonopsd token create|list|revoke`: API tokens, usable while the daemon runs.

The running daemon notices token changes made here within about a second. A viewer or
operator token may be scoped to clients and projects (``--scope-client``, ``--scope-project``,
checked as POST /api/tokens checks a scope: the ids must exist; admins and agents take none).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ..config import Config
from ..model.principal import TOKEN_ROLES
from ..problem import Problem
from ..store.inventory import InventoryStore
from ..store.links import read_hierarchy
from ..store.sql import Database
from ..store.tokens import AccessScope, Token, TokenStore
from .common import EPILOG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_common, run
from .state import existing_database


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if not 1 <= days <= 3650:
        raise argparse.ArgumentTypeError("must be between 1 and 3650 days")
    return days


def _uuid_of(noun: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {noun} id (a UUID)") from None

    return parse


def _check_create(args: argparse.Namespace) -> str | None:
    """A usage problem with the flags of `token create` alone, or None."""
    name = args.name.strip()
    if not name or len(name) > 100:
        return "--name: 1 to 100 characters"
    if (args.scope_client or args.scope_project) and args.role in ("admin", "agent"):
        flags = "--scope-client/--scope-project"
        return f"{flags}: a scope limits viewers and operators, not {args.role}"
    if args.role != "agent":
        return "--server-id: only agent tokens are scoped to a server" if args.server_id else None
    if not args.server_id:
        return "--server-id: an agent token needs the server it pushes samples for"
    return None


async def _check_server(db: Database, args: argparse.Namespace) -> str | None:
    """A usage problem with --server-id (the server must exist), or None."""
    if args.server_id is None:
        return None
    try:
        await InventoryStore(db).get("servers", args.server_id)
    except Problem:
        return f"--server-id: no server with id {args.server_id}"
    return None


async def _scope(db: Database, args: argparse.Namespace) -> tuple[AccessScope | None, str | None]:
    """The scope the flags name (None: every client) and the usage problem with them, if
    any: each client and project must exist."""
    if not args.scope_client and not args.scope_project:
        return None, None
    hierarchy = await read_hierarchy(db)
    for flag, ids, known, noun in (
        ("--scope-client", args.scope_client, hierarchy.clients, "client"),
        ("--scope-project", args.scope_project, hierarchy.projects, "project"),
    ):
        for ident in ids:
            if ident not in known:
                return None, f"{flag}: no {noun} with id {ident}"
    clients, projects = sorted(set(args.scope_client)), sorted(set(args.scope_project))
    return AccessScope(clients=clients, projects=projects), None


def _scope_names(token: Token, clients: dict[str, str], projects: dict[str, str]) -> str:
    if token.role == "agent":
        return "its one server"
    if token.scope is None:
        return "every client"
    names = [clients.get(c, c) for c in token.scope.clients]
    names += [f"{projects.get(p, p)} (project)" for p in token.scope.projects]
    return ", ".join(names)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the token command and its actions."""
    token = sub.add_parser("token", help="manage API tokens", epilog=EPILOG)
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="mint a token and print it (once) on stdout", epilog=EPILOG
    )
    add_common(create)
    create.add_argument("--name", required=True, help="what the token is for")
    create.add_argument("--role", required=True, choices=TOKEN_ROLES, help="what it may do")
    create.add_argument(
        "--server-id",
        type=_uuid_of("server"),
        metavar="ID",
        help="agent tokens: the server whose samples the token may push (required for them)",
    )
    for noun in ("client", "project"):
        create.add_argument(
            f"--scope-{noun}",
            type=_uuid_of(noun),
            action="append",
            default=[],
            metavar="ID",
            help=f"limit a viewer or operator token to this {noun} (repeatable; "
            "with no --scope-* flag: every client)",
        )
    create.add_argument("--expires", type=_days, metavar="DAYS", help="expire after DAYS days")
    add_common(actions.add_parser("list", help="list tokens (never their values)", epilog=EPILOG))
    revoke = actions.add_parser("revoke", help="revoke a token by id", epilog=EPILOG)
    add_common(revoke)
    revoke.add_argument("id", help="the token's id (from `token list`)")
    token.set_defaults(handler=main)


def main(cfg: Config, args: argparse.Namespace) -> int:
    """Run the chosen token action."""
    return run(_token(cfg, args))


async def _token(cfg: Config, args: argparse.Namespace) -> int:
    if args.token_command == "create":
        problem = _check_create(args)
        if problem:
            print(problem, file=sys.stderr)
            return EXIT_USAGE
    db = existing_database(cfg)
    await db.open(migrate=True)
    store = TokenStore(db)
    try:
        if args.token_command == "create":
            name = args.name.strip()
            scope, problem = await _scope(db, args)
            problem = await _check_server(db, args) or problem
            if problem:
                print(problem, file=sys.stderr)
                return EXIT_USAGE
            expires = None
            if args.expires:
                at = datetime.now(UTC) + timedelta(days=args.expires)
                expires = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            _, plain = await store.create(
                name, args.role, expires, "cli", server_id=args.server_id, scope=scope
            )
            print(plain)
            return EXIT_OK
        if args.token_command == "list":
            hierarchy = await read_hierarchy(db)
            projects = {p: name for p, (name, _) in hierarchy.projects.items()}
            head = f"{'ID':36}  {'NAME':24}  {'ROLE':8}  {'PREFIX':10}  {'EXPIRES':24}  STATE"
            print(f"{head}    SCOPE")
            for t in await store.all():
                state = "revoked" if t.revoked_at else "active"
                print(
                    f"{t.id:36}  {t.name[:24]:24}  {t.role:8}  {t.prefix:10}  "
                    f"{t.expires_at or 'never':24}  {state:7}  "
                    f"{_scope_names(t, hierarchy.clients, projects)}"
                )
            return EXIT_OK
        try:
            ident = str(uuid.UUID(args.id))
            await store.revoke(ident)
        except (ValueError, Problem):
            print(f"no token with id {args.id}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"revoked {ident}")
        return EXIT_OK
    finally:
        await db.close()
