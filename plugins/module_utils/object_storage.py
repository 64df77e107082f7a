# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Uploads a directory tree to S3-compatible object storage (AWS S3, MinIO, Ceph RGW) for the
object_storage module: AWS Signature Version 4 over httpx, which the collection already needs.
No boto3: botocore pins python-dateutil<3 while the kubernetes client (kubernetes.core, in the
same execution environment) needs python-dateutil>=3.

Idempotent: an object whose ETag is the MD5 of the local file (single-part uploads) is left
alone; each upload carries Content-MD5, so the server rejects a corrupted body."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import mimetypes
import os
import ssl
import traceback
from typing import Any
from urllib.parse import quote, urlsplit

try:
    import httpx

    HAS_HTTPX = True
    HTTPX_IMPORT_ERROR: str | None = None
except ImportError:  # pragma: no cover - depends on the controller's Python
    httpx = None  # type: ignore[assignment]
    HAS_HTTPX = False
    HTTPX_IMPORT_ERROR = traceback.format_exc()

# A single PUT takes at most 5 GiB (S3's limit); bundles and reports are far smaller.
MAX_SINGLE_PUT = 5 * 1024**3
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class StorageError(Exception):
    """A clear, user-facing failure (bad URL, refused credentials, missing bucket)."""


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without surrounding slashes)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise StorageError(f"dest must be an s3://BUCKET[/PREFIX] URL, got {url!r}")
    if parts.query or parts.fragment:
        raise StorageError(f"dest takes no query or fragment: {url!r}")
    return parts.netloc, parts.path.strip("/")


def endpoint_for(endpoint_url: str | None, region: str) -> str:
    """The S3 API base URL: the given endpoint (MinIO, Ceph) or AWS's regional one."""
    endpoint = (endpoint_url or f"https://s3.{region}.amazonaws.com").rstrip("/")
    if urlsplit(endpoint).scheme not in {"http", "https"} or not urlsplit(endpoint).netloc:
        raise StorageError(f"endpoint_url must be an http(s):// URL, got {endpoint!r}")
    return endpoint


def local_files(src: str) -> list[tuple[str, str]]:
    """(path on disk, key below the prefix) of a file or of every file under a directory."""
    if os.path.isfile(src):
        return [(src, os.path.basename(src))]
    if not os.path.isdir(src):
        raise StorageError(f"src {src!r} is neither a file nor a directory")
    found = []
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            found.append((path, os.path.relpath(path, src).replace(os.sep, "/")))
    return sorted(found, key=lambda item: item[1])  # by key, as a bucket lists them


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    payload_sha256: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    session_token: str | None = None,
    now: datetime.datetime | None = None,
    service: str = "s3",
) -> dict[str, str]:
    """The headers of a request signed with AWS Signature Version 4."""
    now = now or datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 (module Pythons < 3.11)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    parts = urlsplit(url)
    signed = {k.lower(): v.strip() for k, v in headers.items()}
    signed.update(
        {"host": parts.netloc, "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256}
    )
    if session_token:
        signed["x-amz-security-token"] = session_token
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            parts.path or "/",  # already URI-encoded by object_url
            parts.query,
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(
        _hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request"
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    del signed["host"]  # httpx sets it from the URL
    return signed


def object_url(endpoint: str, bucket: str, key: str, path_style: bool) -> str:
    """Path-style (endpoint/bucket/key: MinIO, Ceph) or virtual-hosted (bucket.host/key)."""
    encoded = quote(key, safe="/~")
    if path_style:
        return f"{endpoint}/{quote(bucket, safe='')}/{encoded}"
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{bucket}.{parts.netloc}/{encoded}"


def _digests(path: str) -> tuple[str, str, str]:
    """MD5 hex, MD5 base64 and SHA-256 hex of a file, read once."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()  # MD5: S3's ETag, not security
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), base64.b64encode(md5.digest()).decode(), sha.hexdigest()


def _explain(response: Any, what: str) -> StorageError:
    body = response.text[:500]
    hint = ""
    if response.status_code == 403:
        hint = " (check the access key, the secret key and the region)"
    elif response.status_code == 404 and "NoSuchBucket" in body:
        hint = " (the bucket does not exist: create it first)"
    return StorageError(f"{what}: HTTP {response.status_code}{hint}: {body}")


def upload_tree(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Uploads params['src'] under params['dest']; the module's result (without ``changed``)."""
    if not params.get("access_key") or not params.get("secret_key"):
        raise StorageError(
            "no credentials: set access_key and secret_key (or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, as the AWX credential type 'aistack object storage' does)"
        )
    bucket, prefix = parse_url(params["dest"])
    region = params.get("region") or "us-east-1"
    endpoint = endpoint_for(params.get("endpoint_url"), region)
    path_style = (
        bool(params.get("endpoint_url"))
        if params.get("path_style") is None
        else params["path_style"]
    )
    files = local_files(params["src"])
    verify: Any = True
    if params.get("ca_cert"):
        verify = ssl.create_default_context(cafile=params["ca_cert"])
    elif params.get("validate_certs") is False:
        verify = False
    auth = {
        "access_key": params["access_key"],
        "secret_key": params["secret_key"],
        "region": region,
        "session_token": params.get("session_token"),
    }
    objects = []
    with httpx.Client(verify=verify, timeout=params.get("timeout") or 60) as client:
        for path, rel in files:
            key = f"{prefix}/{rel}" if prefix else rel
            size = os.path.getsize(path)
            if size > MAX_SINGLE_PUT:
                raise StorageError(f"{path}: {size} bytes, over the 5 GiB of a single upload")
            md5_hex, md5_b64, sha_hex = _digests(path)
            url = object_url(endpoint, bucket, key, path_style)
            head = client.head(url, headers=sign("HEAD", url, {}, EMPTY_SHA256, **auth))
            if head.status_code == 200 and head.headers.get("etag", "").strip('"') == md5_hex:
                objects.append({"key": key, "size": size, "status": "unchanged"})
                continue
            if head.status_code not in (200, 404):
                raise _explain(head, f"HEAD s3://{bucket}/{key} at {endpoint}")
            if not check_mode:
                headers = {
                    "content-md5": md5_b64,
                    "content-type": mimetypes.guess_type(path)[0] or "application/octet-stream",
                    "content-length": str(size),
                }
                with open(path, "rb") as body:
                    put = client.put(
                        url, content=body.read(), headers=sign("PUT", url, headers, sha_hex, **auth)
                    )
                if put.status_code != 200:
                    raise _explain(put, f"PUT s3://{bucket}/{key} at {endpoint}")
            objects.append({"key": key, "size": size, "status": "uploaded"})
    uploaded = sum(1 for o in objects if o["status"] == "uploaded")
    return {
        "url": f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}",
        "bucket": bucket,
        "prefix": prefix,
        "endpoint_url": endpoint,
        "objects": objects,
        "uploaded": uploaded,
        "unchanged": len(objects) - uploaded,
    }


def error_message(exc: BaseException, params: dict[str, Any]) -> str:
    """A failed connection as one line naming the endpoint (never the credentials)."""
    endpoint = params.get("endpoint_url") or "AWS S3"
    return f"object storage at {endpoint}: {type(exc).__name__}: {exc}"
