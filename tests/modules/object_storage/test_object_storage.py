"""aistack.platform.object_storage against a real S3 API (moto_server, signatures checked):
uploads a tree under a prefix, is idempotent by ETag, previews in check mode, re-uploads a
changed file, and fails clearly on wrong keys, a missing bucket and a bad URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import run_module_process
from tests.s3_server import S3Server


def upload(s3: S3Server, src: Path, dest: str, check: bool = False, **extra: Any) -> dict:
    args = {
        "src": str(src),
        "dest": dest,
        "endpoint_url": s3.endpoint,
        "access_key": s3.access_key,
        "secret_key": s3.secret_key,
        **extra,
    }
    return run_module_process("object_storage", args, check=check)


def test_upload_is_idempotent_and_previewed_in_check_mode(
    s3_server: S3Server, tmp_path: Path
) -> None:
    src = tmp_path / "bundle"
    (src / "qdrant").mkdir(parents=True)
    (src / "qdrant" / "00-service.yaml").write_text("kind: Service\n")
    (src / "summary.json").write_text("{}\n")
    dest = f"s3://{s3_server.bucket}/mod/run 1/"

    preview = upload(s3_server, src, dest, check=True)
    assert preview["changed"] is True and preview["uploaded"] == 2
    assert s3_server.keys("mod/") == []  # check mode writes nothing

    first = upload(s3_server, src, dest)
    assert first["changed"] is True and first["url"] == f"s3://{s3_server.bucket}/mod/run 1"
    keys = ["mod/run 1/qdrant/00-service.yaml", "mod/run 1/summary.json"]
    assert [o["key"] for o in first["objects"]] == keys == s3_server.keys("mod/")
    assert s3_server.get(keys[0]) == b"kind: Service\n"
    assert secret_not_in(first, s3_server.secret_key)

    second = upload(s3_server, src, dest)
    assert second["changed"] is False and second["unchanged"] == 2

    (src / "summary.json").write_text('{"objects": 1}\n')
    third = upload(s3_server, src, dest)
    assert third["uploaded"] == 1 and s3_server.get(keys[1]) == b'{"objects": 1}\n'


def secret_not_in(result: dict, secret: str) -> bool:
    return secret not in repr(result)


def test_clear_failures(s3_server: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "report.html"
    src.write_text("<html></html>")
    wrong = upload(s3_server, src, f"s3://{s3_server.bucket}/x", secret_key="wrong-secret")
    assert wrong["failed"] and "HTTP 403" in wrong["msg"] and "secret key" in wrong["msg"]
    missing = upload(s3_server, src, "s3://no-such-bucket/x")
    assert missing["failed"] and "bucket does not exist" in missing["msg"]
    bad = upload(s3_server, src, f"https://{s3_server.bucket}/x")
    assert bad["failed"] and "s3://BUCKET" in bad["msg"]
    assert s3_server.keys("x") == []
