"""The local SNS signing identity of `make run`: a key and certificate that only ENVIRONMENT=local trusts.

Amazon SNS signs every delivery with a key whose certificate it publishes at SigningCertURL. On
`make run` nobody at AWS delivers anything, so ``play_customer`` signs its deliveries with a key made
on this machine (``$WECARE_RUN_DIR/local-sns/``, made once, the key readable by its owner only), and
names LOCAL_CERT_URL as their SigningCertURL. scripts/local-env.sh sets
``SNS_CERT_FETCHER=localdev.sns_local.fetch_certificate``: for that one URL the fetcher reads the local
certificate file, for every other URL it is the real https fetcher. Settings refuse this fetcher
outside ENVIRONMENT=local, and the fetcher itself refuses to serve the local certificate elsewhere,
so the whole verification (topic, signature, age) runs as in production.

    python -m localdev.sns_local      # make the identity if missing, print the certificate's path
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

# On the real SNS host (the URL must pass messaging.sns.validate_sns_url) but a name SNS never uses.
LOCAL_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-10ca1000000000000000000000000000.pem"
CERT_DAYS = 365


def identity_dir() -> Path:
    base = os.environ.get("WECARE_RUN_DIR") or str(Path(__file__).resolve().parent.parent / ".run")
    return Path(base) / "local-sns"


@dataclass
class LocalIdentity:
    key: rsa.RSAPrivateKey
    cert_pem: bytes

    def sign(self, message: dict[str, Any]) -> dict[str, Any]:
        """``message`` with SignatureVersion 2 (SHA256withRSA) and its Signature, as SNS sends it."""
        from messaging.sns import string_to_sign

        signed = dict(message, SignatureVersion="2", SigningCertURL=LOCAL_CERT_URL)
        signature = self.key.sign(string_to_sign(signed), padding.PKCS1v15(), hashes.SHA256())
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed


def _certificate_is_current(pem: bytes) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return False
    return cert.not_valid_after_utc > datetime.now(UTC) + timedelta(days=1)


def ensure_identity() -> LocalIdentity:
    """The local key and certificate, made (or renewed when it expires within a day) on first use."""
    directory = identity_dir()
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    if key_path.exists() and cert_path.exists() and _certificate_is_current(cert_path.read_bytes()):
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return LocalIdentity(key=key, cert_pem=cert_path.read_bytes())
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=CERT_DAYS))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = key_path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_tmp = cert_path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    cert_tmp.write_bytes(cert_pem)
    os.replace(tmp, key_path)
    os.replace(cert_tmp, cert_path)
    return LocalIdentity(key=key, cert_pem=cert_pem)


def fetch_certificate(url: str) -> bytes:
    """SNS_CERT_FETCHER of `make run`: the local certificate for LOCAL_CERT_URL, the real fetch otherwise."""
    from django.conf import settings

    from messaging.sns import SNSVerificationError
    from messaging.sns import fetch_certificate as fetch_from_sns

    if url != LOCAL_CERT_URL:
        return fetch_from_sns(url)
    if settings.ENVIRONMENT != "local":  # settings refuse this fetcher elsewhere; never trust it there
        raise SNSVerificationError(
            f"The local SNS certificate is trusted only with ENVIRONMENT=local, not {settings.ENVIRONMENT}."
        )
    cert_path = identity_dir() / "cert.pem"
    if not cert_path.exists():
        raise SNSVerificationError(f"{url} answered HTTP 404 (no local certificate at {cert_path}).")
    return cert_path.read_bytes()


if __name__ == "__main__":
    ensure_identity()
    print(identity_dir() / "cert.pem")
