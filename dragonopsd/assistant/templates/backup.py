"""A bash backup script: dump, checksum, optional upload, prune; shellcheck clean.

Credentials never appear in it: database clients read theirs from the usual files
(~/.pgpass, ~/.my.cnf) or environment, the AWS CLI from its profile.
"""

from __future__ import annotations

import re

from ..params import Params, slug
from .rendered import Rendered

_DAYS = re.compile(
    r"\b(?:keep|retain|retention(?: of)?|for)\s+(\d{1,4})\s*days?\b|\b(\d{1,4})[\s-]*days?\s+"
    r"(?:of )?(?:retention|history|backups)\b",
    re.I,
)
_DB_NAME = re.compile(
    r"\b(?:database|db)\s+(?:called\s+|named\s+)?[\"'`]?([A-Za-z_][\w-]{0,62})[\"'`]?", re.I
)
_NOT_NAMES = frozenset(
    [
        "to",
        "and",
        "on",
        "in",
        "at",
        "for",
        "every",
        "each",
        "with",
        "into",
        "daily",
        "nightly",
        "hourly",
        "from",
    ]
)
_S3 = re.compile(r"\bs3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](?:/[\w./-]*)?", re.I)

# kind -> (file suffix, the dump command writing "${TMP}", what it is, how it is taken)
DUMPS: dict[str, tuple[str, str, str, str]] = {
    "postgres": (
        "dump",
        'pg_dump --format=custom --no-owner --file="${TMP}" "${DB_NAME}"',
        "PostgreSQL database",
        "pg_dump's custom format, restored with pg_restore",
    ),
    "mysql": (
        "sql.gz",
        'mysqldump --single-transaction --routines --triggers "${DB_NAME}" | gzip > "${TMP}"',
        "MySQL/MariaDB database",
        "a consistent InnoDB snapshot (--single-transaction), gzipped",
    ),
    "mongo": (
        "archive.gz",
        'mongodump --db="${DB_NAME}" --archive="${TMP}" --gzip',
        "MongoDB database",
        "a gzipped mongodump archive",
    ),
    "sqlite": (
        "sqlite3",
        'sqlite3 "${DB_FILE}" ".backup \'${TMP}\'"',
        "SQLite database",
        "SQLite's online .backup, safe while the app writes",
    ),
    "files": (
        "tar.gz",
        'tar --create --gzip --file="${TMP}" --directory="${SOURCE_DIR}" .',
        "files",
        "a tar.gz of the directory",
    ),
}


def _kind(p: Params) -> str:
    text = " ".join([p.prompt, *p.technologies])
    for kind, pattern in (
        ("postgres", r"\bpostgres(?:ql)?\b|\bpg_dump\b|\bpg\b"),
        ("mysql", r"\bmysql\b|\bmariadb\b|\bmysqldump\b"),
        ("mongo", r"\bmongo(?:db)?\b"),
        ("sqlite", r"\bsqlite3?\b"),
        ("files", r"\bfiles?\b|\bdirector(?:y|ies)\b|\bfolders?\b|\buploads\b"),
    ):
        if re.search(pattern, text, re.IGNORECASE):
            return kind
    if p.paths:
        return "files"
    p.assume("no database named: a PostgreSQL database")
    return "postgres"


def _settings(p: Params, kind: str, days: int, s3: str | None) -> list[str]:
    lines = [
        f'BACKUP_DIR="${{BACKUP_DIR:-/var/backups/{p.name}}}"',
        f'RETENTION_DAYS="${{RETENTION_DAYS:-{days}}}"',
    ]
    if kind in ("postgres", "mysql", "mongo"):
        named = [m[1] for m in _DB_NAME.finditer(p.prompt) if m[1].lower() not in _NOT_NAMES]
        if not named:
            p.uses("name")
        lines.append(f'DB_NAME="${{DB_NAME:-{named[0] if named else p.name.replace("-", "_")}}}"')
    if kind == "sqlite":
        path = next((x for x in p.paths if x.endswith((".db", ".sqlite", ".sqlite3"))), None)
        lines.append(f'DB_FILE="${{DB_FILE:-{path or f"/var/lib/{p.name}/{p.name}.db"}}}"')
    if kind == "files":
        source = next((x for x in p.paths if not x.startswith("/var/backups")), None)
        if source is None:
            p.assume(f"the directory to back up is /var/lib/{p.name}")
        lines.append(
            f'SOURCE_DIR="${{SOURCE_DIR:-{(source or f"/var/lib/{p.name}").rstrip("/")}}}"'
        )
    if s3 is not None:
        lines.append(f'S3_URI="${{S3_URI:-{s3.rstrip("/")}}}"')
    return lines


def render(p: Params) -> Rendered:
    """<name>-backup.sh for p."""
    kind = _kind(p)
    suffix, dump, what, how = DUMPS[kind]
    named = [m[1] for m in _DB_NAME.finditer(p.prompt) if m[1].lower() not in _NOT_NAMES]
    if named and "name" in p.defaults:
        p.name = slug(named[0])  # "back up the orders database": orders-backup.sh
    m = _DAYS.search(p.prompt)
    days = int(m[1] or m[2]) if m else 14
    if not m:
        p.assume("backups are kept 14 days")
    s3_m = _S3.search(p.prompt)
    s3 = s3_m[0] if s3_m else None
    if s3 is None and p.has(r"\bs3\b|\baws\b|\bbucket\b"):
        s3 = f"s3://example-backups/{p.name}"
        p.assume(f"the bucket is {s3}")
    lines = [
        "#!/usr/bin/env bash",
        f"# Back up the {p.name} {what} ({p.environment}): {how}.",
        f"# cron: 15 2 * * * /usr/local/bin/{p.name}-backup.sh",
        "set -euo pipefail",
        "umask 077",
        "",
        *_settings(p, kind, days, s3),
        'STAMP="$(date -u +%Y%m%dT%H%M%SZ)"',
        f'FILE="${{BACKUP_DIR}}/{p.name}-${{STAMP}}.{suffix}"',
        'TMP="${FILE}.partial"',
        "",
        'log() { printf \'%s %s\\n\' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }',
        'cleanup() { rm -f "${TMP}"; }',
        "trap cleanup EXIT",
        "",
        'mkdir -p "${BACKUP_DIR}"',
        "# One run at a time: a slow dump must not overlap the next cron start.",
        'exec 9>"${BACKUP_DIR}/.lock"',
        "if ! flock --nonblock 9; then",
        '    log "another backup is still running"',
        "    exit 1",
        "fi",
        "",
        'log "backing up to ${FILE}"',
        dump,
        "# Renamed only when complete: a file without .partial is a whole backup.",
        'mv "${TMP}" "${FILE}"',
        '(cd "${BACKUP_DIR}" && sha256sum "$(basename "${FILE}")" > "${FILE}.sha256")',
    ]
    if s3 is not None:
        lines += [
            'aws s3 cp --only-show-errors "${FILE}" "${S3_URI}/"',
            'aws s3 cp --only-show-errors "${FILE}.sha256" "${S3_URI}/"',
        ]
    lines += [
        "",
        'log "removing local backups older than ${RETENTION_DAYS} days"',
        f'find "${{BACKUP_DIR}}" -maxdepth 1 -type f -name "{p.name}-*" '
        '-mtime "+${RETENTION_DAYS}" -delete',
        'log "done"',
    ]
    notes = [
        f"Backs up the {what} ({how}) into /var/backups/{p.name} with a SHA-256 checksum, "
        f"keeps {days} days locally" + (f" and uploads each backup to {s3}" if s3 else "") + ".",
        "Runs under set -euo pipefail with a lock (flock) and a .partial file, so a failed or "
        "overlapping run never leaves a half-written backup that looks whole.",
        "Settings are environment variables with defaults at the top; credentials come from "
        "the clients' own files (~/.pgpass, ~/.my.cnf, the AWS profile), never the script.",
    ]
    if s3 is not None:
        notes.append("Pair the bucket with a lifecycle rule for remote retention.")
    return Rendered("\n".join(lines) + "\n", "bash", f"{p.name}-backup.sh", notes)
