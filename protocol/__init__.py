"""Wire types, canonical codec, signed envelope, validation and the Transport seam."""

from .codec import decode, decode_canonical, encode
from .envelope import Envelope, open_envelope, seal
from .errors import (
    BazaarError,
    DecodeError,
    OversizeError,
    ProtocolError,
    ProtocolReason,
    ReplayError,
    SchemaError,
    SignatureError,
    StaleError,
)
from .keys import KeyPair, verify
from .messages import register, registered_types, validate_basic
from .replay import ReplayGuard
from .schema import Bool, Bytes, Int, List, Map, Num, Optional, Schema, Str

__all__ = [
    "BazaarError",
    "Bool",
    "Bytes",
    "DecodeError",
    "Envelope",
    "Int",
    "KeyPair",
    "List",
    "Map",
    "Num",
    "Optional",
    "OversizeError",
    "ProtocolError",
    "ProtocolReason",
    "ReplayError",
    "ReplayGuard",
    "Schema",
    "SchemaError",
    "SignatureError",
    "StaleError",
    "Str",
    "decode",
    "decode_canonical",
    "encode",
    "open_envelope",
    "register",
    "registered_types",
    "seal",
    "validate_basic",
    "verify",
]
