"""Wire types, canonical codec, signed envelope, validation and the Transport seam."""

from .codec import decode, decode_canonical, encode
from .envelope import Envelope, open_envelope, seal
from .errors import (
    DecodeError,
    OversizeError,
    ProtocolError,
    ReplayError,
    SchemaError,
    SignatureError,
    StaleError,
)
from .keys import KeyPair, verify

__all__ = [
    "DecodeError",
    "Envelope",
    "KeyPair",
    "OversizeError",
    "ProtocolError",
    "ReplayError",
    "SchemaError",
    "SignatureError",
    "StaleError",
    "decode",
    "decode_canonical",
    "encode",
    "open_envelope",
    "seal",
    "verify",
]
