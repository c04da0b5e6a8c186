"""PATCH of a notification channel: the stored document with the patch merged in, ready to be
validated again as a create body."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

from ..model.inventory import masked_service_url, masked_url
from ..store.notifications import StoredChannel
from .channels import ChannelPatch


def merge_config(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 merge of a config patch; a masked URL sent back (a GET round trip) keeps the
    stored one instead of replacing the credential with the mask."""
    merged = dict(old)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif key == "url" and isinstance(old.get("url"), str) and value == masked_url(old["url"]):
            continue
        elif key == "urls" and isinstance(value, list) and isinstance(old.get("urls"), list):
            # Element by element: a URL sent back as shown keeps the stored one at that place.
            stored = [str(u) for u in old["urls"]]
            merged[key] = [
                stored[i] if i < len(stored) and v == masked_service_url(stored[i]) else v
                for i, v in enumerate(value)
            ]
        else:
            merged[key] = value
    return merged


def patched(old: StoredChannel, patch: ChannelPatch) -> dict[str, Any]:
    """The whole document after a PATCH, for re-validation as a create body."""

    def pick(new: Any, stored: Any) -> Any:
        return stored if new is UNSET else msgspec.to_builtins(new)

    return {
        "kind": old.kind,
        "name": pick(patch.name, old.name),
        "enabled": pick(patch.enabled, old.enabled),
        "events": pick(patch.events, old.events),
        "scope": pick(patch.scope, old.scope),
        "config": old.config if patch.config is UNSET else merge_config(old.config, patch.config),
    }
