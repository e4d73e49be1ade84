"""The body of a gossip payload handed straight to one subscriber (``PROTO_PUSH``, docs/adr/0194):
``{topic: str, data: bin}`` in canonical msgpack. Shared by the two transports."""

from __future__ import annotations

from . import codec
from .errors import ProtocolError, ProtocolReason
from .transport import MAX_GOSSIP, RejectRequest

MAX_TOPIC = 512
MAX_PUSH = MAX_GOSSIP + MAX_TOPIC + 32


def encode_push(topic: str, data: bytes) -> bytes:
    """The request body of one push.

    Raises:
        ValueError: ``data`` is longer than ``MAX_GOSSIP`` or ``topic`` than ``MAX_TOPIC``.
    """
    if len(data) > MAX_GOSSIP or len(topic) > MAX_TOPIC:
        raise ValueError(f"push of {len(data)} bytes on a topic of {len(topic)} > {MAX_GOSSIP} / {MAX_TOPIC}")
    return codec.encode({"topic": topic, "data": bytes(data)})


def decode_push(request: bytes) -> tuple[str, bytes]:
    """``(topic, data)`` of a push request.

    Raises:
        RejectRequest: ``oversize`` or ``malformed``.
    """
    if len(request) > MAX_PUSH:
        raise RejectRequest(ProtocolReason.OVERSIZE)
    try:
        body = codec.decode(request, max_size=MAX_PUSH)
    except ProtocolError as err:
        raise RejectRequest(err.reason) from err
    if (not isinstance(body, dict) or set(body) != {"topic", "data"} or not isinstance(body["topic"], str)
            or not isinstance(body["data"], bytes) or len(body["topic"]) > MAX_TOPIC
            or len(body["data"]) > MAX_GOSSIP):
        raise RejectRequest(ProtocolReason.MALFORMED)
    return body["topic"], body["data"]
