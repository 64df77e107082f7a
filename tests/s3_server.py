"""A real S3 API server for the tests: moto's `moto_server` from .venv-s3 (`make s3`), on
loopback, with request signatures checked (an IAM user with an S3 policy; its keys sign every
request after the three set-up calls) and one bucket."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from tests.conftest import REPO, free_port, stop, wait_http

MOTO_SERVER = REPO / ".venv-s3" / "bin" / "moto_server"
# Three unsigned set-up calls (create the user, its key, its policy); every later one is checked.
SETUP_CALLS = 3


@dataclass
class S3Server:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str

    def _signed(self, method: str, url: str) -> httpx.Response:
        from ansible_collections.aistack.platform.plugins.module_utils.object_storage import (
            EMPTY_SHA256,
            sign,
        )

        headers = sign(
            method, url, {}, EMPTY_SHA256, access_key=self.access_key,
            secret_key=self.secret_key, region="us-east-1",
        )  # fmt: skip
        return httpx.request(method, url, headers=headers, timeout=30)

    def keys(self, prefix: str = "") -> list[str]:
        url = f"{self.endpoint}/{self.bucket}?list-type=2&prefix={quote(prefix, safe='')}"
        response = self._signed("GET", url)
        response.raise_for_status()
        return sorted(re.findall(r"<Key>([^<]+)</Key>", response.text))

    def get(self, key: str) -> bytes:
        response = self._signed("GET", f"{self.endpoint}/{self.bucket}/{quote(key)}")
        response.raise_for_status()
        return response.content


def _iam(endpoint: str, params: dict[str, str]) -> str:
    from ansible_collections.aistack.platform.plugins.module_utils.object_storage import sign

    body = "&".join(
        f"{k}={quote(v, safe='')}" for k, v in {**params, "Version": "2010-05-08"}.items()
    )
    headers = sign(
        "POST", endpoint + "/", {"content-type": "application/x-www-form-urlencoded"},
        hashlib.sha256(body.encode()).hexdigest(), access_key="setup", secret_key="setup",
        region="us-east-1", service="iam",
    )  # fmt: skip
    response = httpx.post(endpoint + "/", content=body, headers=headers, timeout=30)
    response.raise_for_status()
    return response.text


@contextmanager
def running_s3_server(tmp: Path) -> Iterator[S3Server]:
    """moto_server on a free loopback port with a signing user and a bucket, stopped after."""
    port = free_port()
    log = (tmp / "moto.log").open("wb")
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS)}
    proc = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log, env=env
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_http(endpoint + "/moto-api/", proc, 60)
        _iam(endpoint, {"Action": "CreateUser", "UserName": "aistack"})
        created = _iam(endpoint, {"Action": "CreateAccessKey", "UserName": "aistack"})
        policy = (
            '{"Version":"2012-10-17",'
            '"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
        )
        _iam(endpoint, {"Action": "PutUserPolicy", "UserName": "aistack",
                        "PolicyName": "s3", "PolicyDocument": policy})  # fmt: skip
        server = S3Server(
            endpoint,
            "aistack-outputs",
            re.findall(r"<AccessKeyId>([^<]+)<", created)[0],
            re.findall(r"<SecretAccessKey>([^<]+)<", created)[0],
        )
        assert server._signed("PUT", f"{endpoint}/{server.bucket}").status_code == 200
        yield server
    finally:
        stop(proc)
        log.close()
