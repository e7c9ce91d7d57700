"""One module per provider behind one contract (`messaging.channels.base.Provider`), and the registry.

- `messaging.channels.whatsapp`: AWS End User Messaging Social (`socialmessaging`).
- `messaging.channels.sms`: AWS End User Messaging SMS (`pinpoint-sms-voice-v2`), pool origination.
- `messaging.channels.email`: Amazon SES v2.
- `messaging.channels.voice`: text-to-speech calls, EUM SMS `SendVoiceMessage`.
- `messaging.channels.rcs`: RCS from the RCS agent, EUM SMS `SendRcsMessage` (never with a fallback).

`provider_for(channel)` is how the outbound path finds a channel's provider; a new channel (voice,
RCS) is a module with a `Provider` subclass decorated with `@register`, imported below. Nothing in
messaging.outbound names a channel.

Every provider call goes through `base.call`, the one place that decides DRY_RUN.

Retries: provider clients are made with botocore ``max_attempts=1`` (`provider_client`), so botocore
never retries a send on its own; the outbound task retries transient errors at most
OUTBOUND_MAX_RETRIES times (see messaging.outbound.deliver). A message therefore costs at most
1 + OUTBOUND_MAX_RETRIES provider calls per operation (4 by default).
"""

from __future__ import annotations

from messaging.channels.base import (
    READ_ONLY_OPERATIONS,
    TRANSIENT_CODES,
    ChannelError,
    Delivery,
    Provider,
    ProviderRequest,
    ProviderResult,
    call,
    dry_run_now,
    error_from_client_error,
    execute,
    provider_client,
)

_REGISTRY: dict[str, Provider] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Class decorator: the provider of ``cls.channel`` from now on."""
    _REGISTRY[cls.channel] = cls()
    return cls


def provider_for(channel: str) -> Provider:
    """The provider of a channel; KeyError for a channel nobody registered (the gate refuses it first)."""
    return _REGISTRY[channel]


def registered_channels() -> tuple[str, ...]:
    return tuple(_REGISTRY)


# Registration happens on import; the channel modules import base, never this package's registry.
from messaging.channels import email, rcs, sms, voice, whatsapp  # noqa: E402, F401

__all__ = [
    "READ_ONLY_OPERATIONS",
    "TRANSIENT_CODES",
    "ChannelError",
    "Delivery",
    "Provider",
    "ProviderRequest",
    "ProviderResult",
    "call",
    "dry_run_now",
    "error_from_client_error",
    "execute",
    "provider_client",
    "provider_for",
    "register",
    "registered_channels",
]
