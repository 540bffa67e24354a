"""Certificates for the TLS tests, made here with `cryptography`: a CA, a server certificate it signed
for 127.0.0.1 and localhost, and an unrelated CA; and the Mosquitto listener lines that serve them."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: str, issuer: x509.Name, public, signer, *extensions, days: int = 2) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer).public_key(public)
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=3))
         .not_valid_after(now + datetime.timedelta(days=days)))
    for ext, critical in extensions:
        b = b.add_extension(ext, critical=critical)
    return b.sign(signer, hashes.SHA256())


def make(d: Path) -> Path:
    """In `d`: ca.crt, other-ca.crt, expired-ca.crt (ended yesterday), server.crt + server.key (for
    127.0.0.1 and localhost, signed by ca) and elsewhere.crt + elsewhere.key (signed by ca too, but for
    broker.example only: a host name mismatch)."""
    d.mkdir(parents=True, exist_ok=True)
    is_ca = (x509.BasicConstraints(ca=True, path_length=None), True)
    keys = {}
    for name in ("ca", "other-ca", "expired-ca"):
        keys[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = _cert(f"citygate test {name}", _name(f"citygate test {name}"), keys[name].public_key(), keys[name],
                     is_ca, days=-1 if name == "expired-ca" else 2)
        (d / f"{name}.crt").write_bytes(_pem(cert))
    names = {"server": ("127.0.0.1", [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
             "elsewhere": ("broker.example", [x509.DNSName("broker.example")])}
    for name, (cn, san) in names.items():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = _cert(cn, _name("citygate test ca"), key.public_key(), keys["ca"],
                     (x509.SubjectAlternativeName(san), False))
        (d / f"{name}.crt").write_bytes(_pem(cert))
        (d / f"{name}.key").write_bytes(_key_pem(key))
        (d / f"{name}.key").chmod(0o600)
    return d


def listener(certs: Path, port: int | None = None, cert: str = "server") -> str:
    """Mosquitto config lines for a TLS listener serving `cert` of `certs` (on `port`, else the listener
    above these lines)."""
    head = f"listener {port} 127.0.0.1\n" if port else ""
    return head + (f"cafile {certs / 'ca.crt'}\ncertfile {certs / (cert + '.crt')}\n"
                   f"keyfile {certs / (cert + '.key')}\n")
