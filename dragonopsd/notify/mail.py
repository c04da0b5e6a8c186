"""Email over SMTP (aiosmtplib): STARTTLS, implicit TLS or plain, with optional login.

Errors are reported by SMTP code or failure kind only: server replies can echo the login name,
and none of the password, the reply text or the message body reaches a log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from ..netguard import REFUSED, AddressGuard, AddressRefused, connected_socket
from .channels import Channel, EmailConfig, one_line
from .delivery import Attempt
from .event import NotificationEvent, facts, headline, sanitised

SUBJECT_LIMIT = 200


def message(cfg: EmailConfig, event: NotificationEvent, delivery_id: str) -> EmailMessage:
    """The email for one event: headline as subject, the facts as a plain-text body.

    Every text comes from the sanitised event: a name or push message with CR/LF cannot add
    a header or a line of its own to the body.
    """
    event = sanitised(event)
    msg = EmailMessage()
    # one_line: names and messages may hold CR/LF, which would end the header (injection).
    msg["Subject"] = one_line(f"[dragonopsd] {headline(event)}", SUBJECT_LIMIT)
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(cfg.to)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring=delivery_id.replace("-", ""), domain="dragonopsd")
    msg["X-DragonOps-Event"] = event.event
    msg["X-DragonOps-Delivery"] = delivery_id
    width = max(len(label) for label, _ in facts(event))
    lines = [headline(event), ""]
    lines += [f"{label + ':':<{width + 1}} {value}" for label, value in facts(event)]
    lines += ["", "-- ", "dragonopsd"]
    msg.set_content("\n".join(lines) + "\n")
    return msg


async def send(
    channel: Channel,
    event: NotificationEvent,
    delivery_id: str,
    *,
    guard: AddressGuard,
) -> Attempt:
    """One SMTP transaction; the dispatcher bounds it with the attempt timeout."""
    cfg = channel.config
    assert isinstance(cfg, EmailConfig)
    host = cfg.host.strip("[]")
    try:
        # Resolved and judged here, then dialled to the judged address: "2130706433", "127.1"
        # or "localhost" are loopback however they are spelled.
        sock = await connected_socket(guard, host, cfg.port)
    except AddressRefused:
        return Attempt.unreached(REFUSED, retry=False)
    except OSError as exc:
        return Attempt.unreached(f"cannot connect ({type(exc).__name__})", retry=True)
    try:
        # The socket is the transport's from here on: it closes it, on success or failure.
        await aiosmtplib.send(
            message(cfg, event, delivery_id),
            sock=sock,
            hostname=host,  # the name the user wrote: TLS (SNI, certificate check) uses it
            port=None,
            username=cfg.username,
            password=cfg.password,
            use_tls=cfg.security == "tls",
            start_tls=cfg.security == "starttls",
            validate_certs=cfg.verify_tls,
        )
    except aiosmtplib.SMTPConnectResponseError as exc:
        # Something listened but did not greet as SMTP: told like a closed port.
        return Attempt.unreached(f"no SMTP greeting ({exc.code})", retry=True)
    except aiosmtplib.SMTPResponseException as exc:
        # 4yz is transient by definition (RFC 5321); 5yz (bad login, refused sender) is not.
        return Attempt.failed(f"SMTP {exc.code}", retry=400 <= exc.code < 500, status=exc.code)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = sorted({e.code for e in exc.recipients})
        retry = all(400 <= c < 500 for c in codes)
        return Attempt.failed(f"recipients refused (SMTP {codes})", retry=retry)
    except aiosmtplib.SMTPTimeoutError:
        raise TimeoutError from None  # reported like the dispatcher's own timeout
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Attempt.unreached(f"SMTP failure ({type(exc).__name__})", retry=True)
    return Attempt(ok=True)
