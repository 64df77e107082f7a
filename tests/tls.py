"""A throw-away self-signed certificate (cryptography) for the tests' TLS peers."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path


def self_signed(
    dest: Path, common_name: str = "127.0.0.1", ip: str | None = "127.0.0.1"
) -> tuple[Path, Path]:
    """A self-signed CA certificate for ``common_name`` (and ``ip`` as a subject alternative
    name, when given), valid from five minutes ago for a day: ``dest``/cert.pem and its EC key
    ``dest``/key.pem (PKCS8, unencrypted)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if ip is not None:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))])
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(key, hashes.SHA256())
    dest.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = dest / "cert.pem", dest / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file
