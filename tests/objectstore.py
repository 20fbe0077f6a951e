"""A real S3 API on loopback (moto's server mode) for the object-store cache tests.

``s3`` starts one ``moto_server`` per test session and creates a bucket; ``s3_cache``
sets the standard AWS environment variables a user's CI would set (worker processes
inherit them) and gives each test its own ``s3://bucket/prefix``, so tests never see each
other's objects.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .servers import free_port, stop, wait_until_listening

BUCKET = "ssg-dmi-test"
MOTO = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
needs_s3 = pytest.mark.skipif(
    not os.access(MOTO, os.X_OK)
    or importlib.util.find_spec("obstore") is None
    or importlib.util.find_spec("boto3") is None,
    reason="needs moto[server] and obstore (pip install -e '.[test]')",
)


@dataclass(frozen=True)
class S3:
    endpoint: str

    def env(self) -> dict[str, str]:
        """The variables a runner sets to reach this store."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def client(self) -> Any:
        """A boto3 client: the AWS SDK, a reader independent of the store's own client."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def get(self, key: str) -> bytes:
        return bytes(self.client().get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def put(self, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=BUCKET, Key=key, Body=data)

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    port = free_port()
    # Its request log goes nowhere: a pipe nobody reads fills up and stalls the server.
    proc = subprocess.Popen(
        [MOTO, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_listening(proc, port, seconds=30)
        server = S3(f"http://127.0.0.1:{port}")
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        stop(proc)


@pytest.fixture
def s3_cache(s3: S3, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh ``s3://`` cache location, with the AWS variables set for this test."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``ssg-dmi ARGS`` as a separate runner would start it."""
    return subprocess.run(
        [sys.executable, "-m", "ssg_dmi.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
        check=False,
    )
