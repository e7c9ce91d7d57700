"""Verification of Amazon SNS HTTP(S) deliveries, before a single byte of them is trusted.

What a message must pass (the AWS rules, "Verifying the signatures of Amazon SNS messages", and
the checks of AWS's own validators):

- a known ``Type`` (Notification, SubscriptionConfirmation, UnsubscribeConfirmation) whose signed
  fields are all present as strings, matching the ``x-amz-sns-message-type`` header;
- ``TopicArn`` equal to ``settings.SNS_TOPIC_ARN`` (and to the topic header when sent);
- ``SignatureVersion`` "2" (SHA256withRSA); "1" (SHA1withRSA) only outside production;
- ``SigningCertURL`` https, port 443, no user or password, path ending ``.pem``, host exactly
  ``sns.<topic region>.amazonaws.com`` — checked before anything is fetched;
- the certificate, fetched over https only (cached per URL; failures cached briefly; at most a few
  fetches at once and per second in the process), is issued to ``sns.amazonaws.com`` and verifies
  ``Signature`` over the exact string to sign of that message type.

The certificate fetch is a setting (``SNS_CERT_FETCHER``, a dotted path to ``fetch(url) -> bytes``)
so tests and the benchmark run offline with a key and certificate they made; production refuses
anything but the https fetcher (settings.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"


def sns_message(body: Any) -> Any:
    """The JSON a stored SNS body carries in ``Message``, parsed; None if it has none or it is not
    JSON. Parsed once per event: every kind of event (EUM, SES, SMS, voice) is told from it."""
    try:
        return json.loads(body.get("Message", "")) if isinstance(body, dict) else None
    except (TypeError, ValueError):
        return None


# The string to sign: "Key\nValue\n" for each key, in exactly this (byte-sorted) order.
# Subject is signed only when present; every other key is required.
SIGNED_KEYS: dict[str, tuple[str, ...]] = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    UNSUBSCRIBE_CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
OPTIONAL_SIGNED_KEYS = frozenset({"Subject"})

SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

# AWS's validators: rejects sns.us-east-1.amazonaws.com.evil.com and S3 hosts under amazonaws.com.
SNS_HOST = re.compile(r"^sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?$")

CERT_CACHE_SIZE = 32
MAX_CERT_BYTES = 64 * 1024
# A URL that gave no usable certificate is not fetched again for this long: forged messages
# naming a made-up .pem on the real SNS host must not make us hammer it.
NEGATIVE_CACHE_SECONDS = 60
# A transient failure (timeout, 5xx) is remembered this long: SNS retries, we do not hammer the host.
UNAVAILABLE_CACHE_SECONDS = 10
# The subjects an SNS signing certificate is issued to.
SNS_CERT_NAMES = frozenset({"sns.amazonaws.com"})


class SNSVerificationError(Exception):
    """The message is not a genuine SNS message for our topic: refuse it (4xx) and change nothing.

    ``status`` is the HTTP status to answer: 400 for a malformed request, 403 for one that fails
    authentication (wrong topic, bad certificate URL, bad signature).
    """

    def __init__(self, reason: str, *, status: int = 403):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class CertificateUnavailable(Exception):
    """The signing certificate could not be fetched for a transient reason (network, 5xx).

    The message may be genuine: the endpoint answers 503 so SNS delivers it again later.
    """


@dataclass(frozen=True)
class VerifiedMessage:
    """An SNS message whose signature, topic and type were verified."""

    type: str
    message_id: str
    topic_arn: str
    body: dict[str, Any]


# --- certificate URL and fetching ---------------------------------------------------------------


def expected_sns_host(topic_arn: str | None = None) -> str:
    """``sns.<topic region>.amazonaws.com`` (``.com.cn`` in China): the one host that signs for our topic.

    A pattern such as ``sns.<anything>.amazonaws.com`` also admits hosts like
    ``sns.s3-us-west-2.amazonaws.com`` (an S3 website of anyone's bucket): only the exact host is taken.
    """
    parts = (topic_arn or settings.SNS_TOPIC_ARN).split(":")
    if len(parts) < 6 or parts[2] != "sns" or not parts[3]:
        raise SNSVerificationError("SNS_TOPIC_ARN is not an SNS topic ARN.", status=500)
    suffix = "amazonaws.com.cn" if parts[1] == "aws-cn" else "amazonaws.com"
    return f"sns.{parts[3]}.{suffix}"


def validate_sns_url(url: Any, *, what: str = "SigningCertURL", require_pem: bool = True) -> str:
    """Refuse any URL that is not https://sns.<topic region>.amazonaws.com/...(.pem) on port 443."""
    if not isinstance(url, str) or not url:
        raise SNSVerificationError(f"{what} is missing.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SNSVerificationError(f"{what} is not a valid URL.") from None
    if parts.scheme != "https":
        raise SNSVerificationError(f"{what} must use https.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise SNSVerificationError(f"{what} must not carry a user name or password.")
    if port not in (None, 443):
        raise SNSVerificationError(f"{what} must use port 443.")
    host = parts.hostname or ""
    if not SNS_HOST.match(host):
        raise SNSVerificationError(f"{what} host {host!r} is not an Amazon SNS host.")
    if host != expected_sns_host():
        raise SNSVerificationError(f"{what} host {host!r} is not {expected_sns_host()!r}, the SNS host of our topic.")
    if require_pem and not parts.path.endswith(".pem"):
        raise SNSVerificationError(f"{what} must point at a .pem certificate.")
    return url


def https_get(url: str, *, max_bytes: int = MAX_CERT_BYTES, timeout: float = 5.0) -> bytes:
    """GET an https URL (TLS verified, no redirects); raise CertificateUnavailable on transient failure.

    A 4xx from the SNS host means there is no such certificate: the message is forged.
    """
    if not url.startswith("https://"):
        raise SNSVerificationError("Only https URLs are fetched.")
    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False, stream=True)
    except requests.RequestException as exc:
        raise CertificateUnavailable(f"{type(exc).__name__} fetching {url}") from exc
    with response:
        if 400 <= response.status_code < 500:
            raise SNSVerificationError(f"{url} answered HTTP {response.status_code}.")
        if response.status_code != 200:
            raise CertificateUnavailable(f"{url} answered HTTP {response.status_code}.")
        body = response.raw.read(max_bytes + 1, decode_content=True)
    if len(body) > max_bytes:
        raise SNSVerificationError(f"{url} returned more than {max_bytes} bytes.")
    return body


def fetch_certificate(url: str) -> bytes:
    """The default certificate fetcher: https only, from a validated SNS URL."""
    validate_sns_url(url)
    return https_get(url)


def fetch_subscribe_url(url: str) -> bytes:
    """The default subscription-confirmation fetcher: GET the SubscribeURL over https."""
    validate_sns_url(url, what="SubscribeURL", require_pem=False)
    return https_get(url, max_bytes=256 * 1024)


class _CertificateCache:
    """Public keys by certificate URL (LRU); one fetch per URL even with many threads asking."""

    def __init__(self, size: int = CERT_CACHE_SIZE):
        self._size = size
        self._keys: OrderedDict[str, tuple[float, rsa.RSAPublicKey]] = OrderedDict()
        self._refused: OrderedDict[str, tuple[float, str, bool]] = OrderedDict()
        self._lock = threading.Lock()
        self._url_locks: dict[str, threading.Lock] = {}

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
            self._refused.clear()
            self._url_locks.clear()

    def _remember_failure(self, url: str, seconds: float, reason: str, *, transient: bool) -> None:
        with self._lock:
            self._refused[url] = (time.monotonic() + seconds, reason, transient)
            while len(self._refused) > self._size:
                self._refused.popitem(last=False)

    def _cached(self, url: str) -> rsa.RSAPublicKey | None:
        with self._lock:
            refused = self._refused.get(url)
            if refused is not None:
                if refused[0] >= time.monotonic():
                    if refused[2]:
                        raise CertificateUnavailable(f"{refused[1]} (a recent failure, not fetched again yet)")
                    raise SNSVerificationError(refused[1])
                del self._refused[url]
            entry = self._keys.get(url)
            if entry is None:
                return None
            expires, key = entry
            if expires < time.monotonic():
                del self._keys[url]
                return None
            self._keys.move_to_end(url)
            return key

    def get(self, url: str) -> rsa.RSAPublicKey:
        key = self._cached(url)
        if key is not None:
            return key
        with self._lock:
            url_lock = self._url_locks.setdefault(url, threading.Lock())
        try:
            with url_lock:
                return self._fetch(url)
        finally:
            with self._lock:  # one lock per URL being fetched, not per URL ever seen
                self._url_locks.pop(url, None)

    def _fetch(self, url: str) -> rsa.RSAPublicKey:
        key = self._cached(url)  # another thread may have fetched it while we waited
        if key is not None:
            return key
        try:
            with fetch_limiter.slot():
                pem = _fetcher("SNS_CERT_FETCHER")(url)
            key = _load_public_key(pem)
        except SNSVerificationError as exc:
            self._remember_failure(url, NEGATIVE_CACHE_SECONDS, exc.reason, transient=False)
            raise
        except CertificateUnavailable as exc:
            if not getattr(exc, "limited", False):  # the limiter's refusal is not the URL's fault
                self._remember_failure(url, UNAVAILABLE_CACHE_SECONDS, str(exc), transient=True)
            raise
        with self._lock:
            self._keys[url] = (time.monotonic() + settings.SNS_CERT_CACHE_SECONDS, key)
            self._keys.move_to_end(url)
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
        return key


class FetchLimiter:
    """At most ``concurrency`` certificate fetches at once and ``rate`` per second (burst ``burst``) in
    this process, whatever the URLs: forged messages naming made-up certificates cannot make the
    server fetch at will. Over the limit the message is answered 503 (SNS retries a genuine one).
    """

    def __init__(self, *, rate: float = 1.0, burst: int = 5, concurrency: int = 2):
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)

    def _take_token(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    @contextmanager
    def slot(self):
        if not self._slots.acquire(blocking=False):
            raise _limited("too many signing-certificate fetches at once")
        try:
            if not self._take_token():
                raise _limited("the signing-certificate fetch rate limit is reached")
            yield
        finally:
            self._slots.release()

    def reset(self) -> None:
        with self._lock:
            self._tokens, self._updated = float(self.burst), time.monotonic()


def _limited(reason: str) -> CertificateUnavailable:
    exc = CertificateUnavailable(reason)
    exc.limited = True
    return exc


certificate_cache = _CertificateCache()
fetch_limiter = FetchLimiter()


def _fetcher(setting: str):
    return import_string(getattr(settings, setting))


def _certificate_names(cert: x509.Certificate) -> set[str]:
    names = {a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME) if isinstance(a.value, str)}
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names.update(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    return {name.lower() for name in names}


def _load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise SNSVerificationError("The signing certificate is not a PEM X.509 certificate.") from None
    now = datetime.now(UTC)
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise SNSVerificationError("The signing certificate is not valid now.")
    if not (_certificate_names(cert) & (SNS_CERT_NAMES | {expected_sns_host()})):
        raise SNSVerificationError("The signing certificate is not issued to Amazon SNS (its subject).")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SNSVerificationError("The signing certificate does not hold an RSA key.")
    return key


# --- the message itself ---------------------------------------------------------------------------


def string_to_sign(message: dict[str, Any]) -> bytes:
    """The exact bytes SNS signed for this message (its Type decides the keys)."""
    keys = SIGNED_KEYS.get(message.get("Type"))  # type: ignore[arg-type]
    if keys is None:
        raise SNSVerificationError(f"Unknown SNS message type {message.get('Type')!r}.", status=400)
    parts: list[str] = []
    for key in keys:
        if key not in message:
            if key in OPTIONAL_SIGNED_KEYS:
                continue
            raise SNSVerificationError(f"The {message['Type']} lacks {key}.", status=400)
        value = message[key]
        if not isinstance(value, str):
            raise SNSVerificationError(f"{key} must be a string.", status=400)
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode("utf-8")


def _check_age(message: dict[str, Any]) -> None:
    max_age = settings.SNS_MAX_MESSAGE_AGE_SECONDS
    if not max_age:
        return
    try:
        sent = datetime.fromisoformat(message["Timestamp"].replace("Z", "+00:00"))
    except (KeyError, AttributeError, ValueError):
        raise SNSVerificationError("Timestamp is not an ISO 8601 time.", status=400) from None
    if sent.tzinfo is None:
        raise SNSVerificationError("Timestamp has no time zone.", status=400)
    age = (datetime.now(UTC) - sent).total_seconds()
    if age > max_age:
        raise SNSVerificationError(f"The message is {int(age)} s old (limit {max_age} s): a replay.")


def verify_message(message: Any, *, headers: dict[str, str] | None = None) -> VerifiedMessage:
    """Verify a parsed SNS body; return it as a VerifiedMessage or raise SNSVerificationError.

    ``headers`` are the request's ``x-amz-sns-*`` headers (lower-case names). The message type
    header is required (SNS always sends it) and must match the body; the topic and message-id
    headers, when sent, must match too. Raises CertificateUnavailable when the certificate cannot
    be fetched for a transient reason.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if not isinstance(message, dict):
        raise SNSVerificationError("The body is not a JSON object.", status=400)
    if headers.get("x-amz-sns-rawdelivery", "").lower() == "true":
        raise SNSVerificationError("Raw message delivery carries no signature: turn it off.", status=400)
    message_type = message.get("Type")
    if message_type not in SIGNED_KEYS:
        raise SNSVerificationError(f"Unknown SNS message type {message_type!r}.", status=400)
    header_type = headers.get("x-amz-sns-message-type")
    if header_type != message_type:
        raise SNSVerificationError(
            f"x-amz-sns-message-type {header_type!r} does not match the body's Type {message_type!r}.", status=400
        )
    payload = string_to_sign(message)  # every signed key present and a string

    topic = message["TopicArn"]
    if topic != settings.SNS_TOPIC_ARN:
        raise SNSVerificationError(f"TopicArn {topic!r} is not the configured topic.")
    if "x-amz-sns-topic-arn" in headers and headers["x-amz-sns-topic-arn"] != topic:
        raise SNSVerificationError("x-amz-sns-topic-arn does not match the body's TopicArn.", status=400)
    if "x-amz-sns-message-id" in headers and headers["x-amz-sns-message-id"] != message["MessageId"]:
        raise SNSVerificationError("x-amz-sns-message-id does not match the body's MessageId.", status=400)

    version = message.get("SignatureVersion")
    hash_class = SIGNATURE_HASHES.get(version) if isinstance(version, str) else None
    if hash_class is None:
        raise SNSVerificationError(f"Unsupported SignatureVersion {version!r}: only 1 and 2 are accepted.")
    if version == "1" and not settings.SNS_ALLOW_SIGNATURE_V1:
        # The topic signs with version 2 (SHA256); a SHA1 signature is someone else's message.
        raise SNSVerificationError("SignatureVersion 1 (SHA1) is refused here: the topic signs with version 2.")
    signature_b64 = message.get("Signature")
    if not isinstance(signature_b64, str) or not signature_b64:
        raise SNSVerificationError("The message is not signed.")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SNSVerificationError("Signature is not base64.") from None

    cert_url = validate_sns_url(message.get("SigningCertURL"))
    public_key = certificate_cache.get(cert_url)
    try:
        public_key.verify(signature, payload, padding.PKCS1v15(), hash_class())
    except InvalidSignature:
        raise SNSVerificationError("The signature does not verify.") from None
    _check_age(message)
    return VerifiedMessage(type=message_type, message_id=message["MessageId"], topic_arn=topic, body=message)


def confirm_subscription(message: VerifiedMessage) -> None:
    """Confirm a verified SubscriptionConfirmation for our topic by visiting its SubscribeURL."""
    if message.type != SUBSCRIPTION_CONFIRMATION:
        raise ValueError("Only a SubscriptionConfirmation can be confirmed.")
    url = validate_sns_url(message.body.get("SubscribeURL"), what="SubscribeURL", require_pem=False)
    _fetcher("SNS_SUBSCRIBE_FETCHER")(url)
    logger.info("sns: confirmed the subscription to %s (message %s)", message.topic_arn, message.message_id)
