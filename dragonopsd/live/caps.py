"""Caps on open websockets, per principal and per client address.

Each socket costs a task, a queue and its topic index entries: one viewer token must not be able
to open sockets until the daemon runs out of memory or file descriptors. A socket holds a slot
for its address from before the upgrade (so sockets still waiting for their auth frame count
too) and one for its principal once it is known, until it ends. Addresses in
``[server] per_address_exempt`` (a reverse proxy on this host) are not counted.
"""

from __future__ import annotations

from ..netguard import AddressSet, Quota


class SocketCaps:
    """Open websockets per principal (``token:<id>`` / ``jwt:<sub>``) and per client address."""

    def __init__(self, per_principal: int, per_address: int, exempt: AddressSet) -> None:
        self.principals = Quota(per_principal)
        self.addresses = Quota(per_address, exempt)
