#!/usr/bin/python
# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: object_storage
short_description: Upload a directory or file to S3-compatible object storage
version_added: "0.1.0"
description:
  - Uploads a file, or every file under a directory, to an S3-compatible object store (AWS S3,
    MinIO, Ceph RGW) below C(s3://BUCKET/PREFIX), keeping the paths relative to O(src). The
    playbooks use it to keep rendered bundles and benchmark reports after a short-lived AWX job.
  - Idempotent. An object whose ETag equals the MD5 of the local file is not uploaded again
    (single-part uploads; a file of at most 5 GiB). Every upload carries C(Content-MD5).
  - Requests are signed with AWS Signature Version 4 (no boto3 needed). The bucket must exist.
  - Credentials and the endpoint come from the options or from the standard AWS environment
    variables, which the AWX credential type C(aistack object storage) injects.
author:
  - aistack.platform contributors (@aistack-platform)
options:
  src:
    description: A file, or a directory whose files are all uploaded (recursively).
    type: path
    required: true
  dest:
    description:
      - Where the files go, C(s3://BUCKET) or C(s3://BUCKET/PREFIX). A file C(a/b.yaml) under
        O(src) becomes the object C(PREFIX/a/b.yaml).
    type: str
    required: true
  endpoint_url:
    description:
      - Base URL of the S3 API, for example C(https://minio.example.com:9000) or a Ceph RGW.
      - Unset is AWS S3 in O(region), or the environment variable C(AWS_ENDPOINT_URL_S3) or
        C(AWS_ENDPOINT_URL).
    type: str
  region:
    description:
      - Region the requests are signed for (MinIO and Ceph accept V(us-east-1) unless
        configured otherwise).
      - Unset is the environment variable C(AWS_REGION) or C(AWS_DEFAULT_REGION), else V(us-east-1).
    type: str
  access_key:
    description: Access key ID; unset is the environment variable C(AWS_ACCESS_KEY_ID).
    type: str
  secret_key:
    description: Secret access key; unset is the environment variable C(AWS_SECRET_ACCESS_KEY).
    type: str
  session_token:
    description: Session token of temporary credentials; unset is C(AWS_SESSION_TOKEN).
    type: str
  path_style:
    description:
      - Address the bucket in the path (C(ENDPOINT/BUCKET/KEY)) rather than in the host name
        (C(BUCKET.ENDPOINT/KEY)).
      - Unset is path style with O(endpoint_url) (MinIO, Ceph) and virtual-hosted style for AWS.
    type: bool
  validate_certs:
    description: Verify the endpoint's TLS certificate.
    type: bool
    default: true
  ca_cert:
    description:
      - CA bundle (PEM) the endpoint's certificate is verified against; unset is the system's
        trust store, or the environment variable C(AWS_CA_BUNDLE).
    type: path
  timeout:
    description: Seconds to wait for each request.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
    description: Reports which objects would be uploaded; nothing is written.
  diff_mode:
    support: none
    description: No diff; RV(objects) says which objects were uploaded.
requirements:
  - httpx
notes:
  - Runs on the controller (or in the AWX execution environment).
"""

EXAMPLES = r"""
- name: Keep the rendered bundle in MinIO (credentials from the AWS_* environment)
  aistack.platform.object_storage:
    src: build/single-node
    dest: s3://aistack-outputs/bundles/single-node
    endpoint_url: https://minio.example.com:9000

- name: Upload a benchmark report to AWS S3
  aistack.platform.object_storage:
    src: build/benchmarks/20261203T120000Z
    dest: s3://my-bucket/benchmarks/20261203T120000Z
    region: eu-west-1
    access_key: "{{ s3_access_key }}"
    secret_key: "{{ s3_secret_key }}"
"""

RETURN = r"""
url:
  description: The C(s3://BUCKET/PREFIX) the files went to.
  returned: success
  type: str
  sample: s3://aistack-outputs/bundles/single-node
bucket:
  description: The bucket.
  returned: success
  type: str
  sample: aistack-outputs
prefix:
  description: The key prefix (no leading or trailing slash; empty for the bucket's root).
  returned: success
  type: str
  sample: bundles/single-node
endpoint_url:
  description: The S3 API endpoint used.
  returned: success
  type: str
  sample: https://minio.example.com:9000
objects:
  description: Each file as an object - its key, size and whether it was uploaded or unchanged.
  returned: success
  type: list
  elements: dict
  sample: [{key: bundles/single-node/qdrant/00-namespace.yaml, size: 120, status: uploaded}]
uploaded:
  description: How many objects were uploaded (would be, in check mode).
  returned: success
  type: int
  sample: 42
unchanged:
  description: How many objects were already there with the same content.
  returned: success
  type: int
  sample: 0
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.aistack.platform.plugins.module_utils.object_storage import (
    HAS_HTTPX,
    HTTPX_IMPORT_ERROR,
    StorageError,
    error_message,
    upload_tree,
)

ARGUMENT_SPEC = {
    "src": {"type": "path", "required": True},
    "dest": {"type": "str", "required": True},
    "endpoint_url": {
        "type": "str",
        "fallback": (env_fallback, ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]),
    },
    "region": {"type": "str", "fallback": (env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])},
    "access_key": {
        "type": "str",
        "no_log": False,
        "fallback": (env_fallback, ["AWS_ACCESS_KEY_ID"]),
    },
    "secret_key": {
        "type": "str",
        "no_log": True,
        "fallback": (env_fallback, ["AWS_SECRET_ACCESS_KEY"]),
    },
    "session_token": {
        "type": "str",
        "no_log": True,
        "fallback": (env_fallback, ["AWS_SESSION_TOKEN"]),
    },
    "path_style": {"type": "bool"},
    "validate_certs": {"type": "bool", "default": True},
    "ca_cert": {"type": "path", "fallback": (env_fallback, ["AWS_CA_BUNDLE"])},
    "timeout": {"type": "int", "default": 60},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not HAS_HTTPX:
        module.fail_json(msg=missing_required_lib("httpx"), exception=HTTPX_IMPORT_ERROR)
    try:
        result = upload_tree(module.params, module.check_mode)
    except StorageError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:
        module.fail_json(msg=error_message(exc, module.params))
    module.exit_json(changed=result["uploaded"] > 0, **result)


if __name__ == "__main__":
    main()
