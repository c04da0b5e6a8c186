"""Caps on open websockets, per principal and per client address.

Each socket costs a task, a queue and its topic index entries: one viewer token must not be able
to open sockets until the daemon runs out of memory or file descriptors. A socket holds a slot
for its address from before the upgrade (so sockets still waiting for their auth frame count
too) and one for its principal once it is known, until it ends. Addresses in
``[server] per_address_exempt`` (a reverse proxy on this host) are not counted.
"""

from __future__ import annotations

from ..netguard import AddressSet


class SocketCaps:
    """Open websockets per principal (``token:<id>`` / ``jwt:<sub>``) and per client address."""

    def __init__(self, per_principal: int, per_address: int, exempt: AddressSet) -> None:
        self.per_principal = per_principal
        self.per_address = per_address
        self._exempt = exempt
        self._principals: dict[str, int] = {}
        self._addresses: dict[str, int] = {}

    def claim_address(self, address: str) -> bool:
        """Take a slot for a socket from address; False when its sockets are at the cap."""
        if address in self._exempt:
            return True
        return _claim(self._addresses, address, self.per_address)

    def release_address(self, address: str) -> None:
        """Give back the slot claim_address took."""
        if address not in self._exempt:
            _release(self._addresses, address)

    def claim_principal(self, actor: str) -> bool:
        """Take a slot for a socket of this principal; False when it is at the cap."""
        return _claim(self._principals, actor, self.per_principal)

    def release_principal(self, actor: str) -> None:
        """Give back the slot claim_principal took."""
        _release(self._principals, actor)


def _claim(counts: dict[str, int], key: str, cap: int) -> bool:
    held = counts.get(key, 0)
    if held >= cap:
        return False
    counts[key] = held + 1
    return True


def _release(counts: dict[str, int], key: str) -> None:
    held = counts.get(key, 0) - 1
    if held > 0:
        counts[key] = held
    else:
        counts.pop(key, None)  # no entry left behind per address that ever connected
