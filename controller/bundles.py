"""A gateway's bundle as one file for flashing offline, signed by the controller.

The file holds the board's config (id, broker, user, profile, its table key and MQTT password, and
for an mqtts:// broker `broker_ca`, the CA the broker's certificate chains to) and its current table,
sealed with that key, so a board flashed from it routes calls before it ever reaches the broker. The
controller signs the file with an Ed25519 key derived from its secret key: anyone holding the
controller's public key (`citygate bundle pubkey`) can check a bundle offline, and a bundle altered
or cut short in transit is refused by name. The secrets inside are handed out under the trust rule
(a key rotation, audited); no command prints them.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import time
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from firmware.gw import tls
from protocols import checks, routing

FORMAT = "citygate-bundle/1"
MAX_BYTES = 256 * 1024  # a config and a 32 KiB table, sealed, with room to spare
CONFIG_FIELDS = ("id", "broker", "user", "profile", "key", "password")
OPTIONAL_FIELDS = ("broker_ca",)  # PEM: required when the broker is mqtts://


class BundleError(ValueError):
    """The file is not a usable bundle: `field` names what, `reason` says why."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def check_ca(pem: object, field: str = "config.broker_ca") -> list[x509.Certificate]:
    """The CA certificates a board checks an mqtts:// broker against: PEM as the firmware takes it
    (firmware/gw/tls.py: at most MAX_CERTS certificates in MAX_CA characters), each a certificate in force."""
    if not isinstance(pem, str):
        raise BundleError(field, "must be PEM text (-----BEGIN CERTIFICATE-----)")
    try:
        ders = tls.der_certs(pem)
    except tls.TLSConfigError as e:
        raise BundleError(field, str(e).removeprefix("broker_ca: ").removeprefix("broker_ca ")) from None
    now, certs = datetime.datetime.now(datetime.UTC), []
    for i, der in enumerate(ders, 1):
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            raise BundleError(field, f"certificate {i} is not an X.509 certificate") from None
        if cert.not_valid_after_utc < now:
            raise BundleError(field, f"certificate {i} ({cert.subject.rfc4514_string()}) expired on "
                                     f"{cert.not_valid_after_utc:%Y-%m-%d}")
        certs.append(cert)
    return certs


def ca_pem(certs: list[x509.Certificate]) -> str:
    """The certificates alone, as PEM (no comments or other text a CA file may carry)."""
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certs)


def _check_broker_ca(config: dict) -> None:
    if config.get("broker_ca") is not None:
        check_ca(config["broker_ca"])
    elif config["broker"].startswith("mqtts://"):
        raise BundleError("config.broker_ca", "an mqtts:// broker needs the CA its certificate chains to: the "
                                              "board checks the broker against it and connects to nothing else")


def _signing_key(secret_key: str) -> Ed25519PrivateKey:
    seed = hmac.new(secret_key.encode(), b"citygate bundle signing key", hashlib.sha256).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key(secret_key: str) -> str:
    """The controller's bundle-signing public key, hex: pin it where bundles are checked."""
    raw = _signing_key(secret_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return raw.hex()


def _signed_bytes(doc: dict) -> bytes:
    return json.dumps({k: v for k, v in doc.items() if k != "sig"}, sort_keys=True, separators=(",", ":")).encode()


def make(config: dict, table_body: bytes | None, secret_key: str) -> dict:
    """The bundle document for `config` (with its key and password) and the table body it must run."""
    missing = [f for f in CONFIG_FIELDS if not config.get(f)]
    if missing:
        raise BundleError("config", "lacks " + ", ".join(missing))
    _check_broker_ca(config)
    fields = CONFIG_FIELDS + tuple(f for f in OPTIONAL_FIELDS if config.get(f) is not None)
    doc = {"format": FORMAT, "created_at": int(time.time()), "gateway": config["id"],
           "config": {f: config[f] for f in fields}, "table": None, "table_version": None,
           "signer": public_key(secret_key)}
    if table_body is not None:
        doc["table"] = routing.seal(table_body, config["key"]).decode()
        doc["table_version"] = routing.load(table_body).version
    doc["sig"] = _signing_key(secret_key).sign(_signed_bytes(doc)).hex()
    return doc


def write(path: Path, doc: dict) -> None:
    """Only its owner reads the file: it holds the gateway's secrets."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def read(path: Path, trusted: str | None = None) -> dict:
    """Load and check a bundle: format, fields, the controller's signature (against `trusted`, a public
    key in hex, when given; else against the key the file names, which proves it whole, not who made it)
    and the sealed table (signed with the key inside, for the gateway inside)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BundleError("file", f"cannot read {path}: {e.strerror or e}") from None
    if len(raw) > MAX_BYTES:
        raise BundleError("file", f"is {len(raw)} bytes, more than a bundle's {MAX_BYTES}: not a bundle")
    try:
        doc = json.loads(raw)
    except ValueError:
        raise BundleError("file", "is not JSON: corrupted or cut short (export it again)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError("format", f"must be {FORMAT!r}: not a citygate bundle")
    config = doc.get("config")
    if not isinstance(config, dict) or any(not isinstance(config.get(f), str) for f in CONFIG_FIELDS):
        raise BundleError("config", "must hold " + ", ".join(CONFIG_FIELDS))
    if not checks.is_gateway_id(config["id"]) or doc.get("gateway") != config["id"]:
        raise BundleError("gateway", "does not match config.id")
    if not checks.is_hex(config["key"], 64):
        raise BundleError("config.key", "must be 64 lowercase hex digits")
    _check_broker_ca(config)
    signer = trusted or doc.get("signer")
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(signer))
        key.verify(bytes.fromhex(doc.get("sig", "")), _signed_bytes(doc))
    except (TypeError, ValueError, InvalidSignature):
        who = "the controller's key you trust" if trusted else "the key it names"
        raise BundleError("sig", f"does not match {who}: the bundle was altered, or made by another "
                                 "controller") from None
    if doc.get("table") is not None:
        try:
            routing.unseal(doc["table"].encode(), config["key"], config["id"])
        except routing.TableError as e:
            raise BundleError("table", f"{e.path}: {e.reason}") from None
    return doc


def summary(doc: dict) -> dict:
    """What a technician may see of a bundle: never the key or the password, only their fingerprints."""
    c = doc["config"]
    ca = c.get("broker_ca")
    return {"gateway": c["id"], "profile": c["profile"], "broker": c["broker"], "user": c["user"],
            "table_version": doc.get("table_version"), "created_at": doc.get("created_at"),
            "key_fingerprint": hashlib.sha256(bytes.fromhex(c["key"])).hexdigest()[:16],
            "broker_ca": [f"{cert.subject.rfc4514_string()} sha256:{cert.fingerprint(hashes.SHA256()).hex()[:16]}"
                          for cert in check_ca(ca)] if ca is not None else None,
            "signer": doc.get("signer")}
