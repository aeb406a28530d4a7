"""S3 artifact store (boto3): AWS, MinIO, R2 or any S3 API at a configurable endpoint_url."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import mimetypes
import os
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import boto3.session
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from ..errors import StorageError
from .base import CHUNK, ArtifactStore, Fingerprint, StoredObject, object_key, sha256_file

_MISSING = {"404", "NoSuchKey", "NotFound"}
_AUTH = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
# S3 caps presigned SigV4 URLs at seven days.
_MAX_PRESIGN_SECONDS = 7 * 24 * 3600


class S3Store(ArtifactStore):
    """Objects under `s3://bucket/prefix/objects/ab/abcdef….ext`, JSON documents beside them.

    Uploads stream from disk through boto3's managed multipart transfer; an object only appears
    under its key when S3 completes the upload, and a failed multipart upload is aborted.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        client=None,
        region_name: str | None = None,
        multipart_threshold_mb: int = 16,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        max_concurrency: int = 4,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.root_url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        if client is None:
            session = boto3.session.Session(
                aws_access_key_id=aws_access_key_id,
                aws_secret_access_key=aws_secret_access_key,
                aws_session_token=aws_session_token,
                region_name=region_name,
            )
            # Path-style addressing: MinIO and most self-hosted endpoints have no per-bucket DNS names.
            s3_config = {"addressing_style": "path"} if endpoint_url else {}
            config = Config(
                s3=s3_config,
                signature_version="s3v4",  # SigV2 presigned URLs are refused in newer regions
                retries={"mode": "standard", "max_attempts": 5},
                max_pool_connections=max_concurrency + 4,
            )
            client = session.client("s3", endpoint_url=endpoint_url, config=config)
        self.client = client
        part = max(5, multipart_threshold_mb) * 1024 * 1024  # S3 refuses parts under 5 MiB
        # Uploads read each part from the file as it is sent. Downloads queue received chunks (256 KiB)
        # for one writer thread: boto3's default queue of 100 let a 1 GiB download peak ~50 MiB higher.
        self.transfer_config = TransferConfig(
            multipart_threshold=part,
            multipart_chunksize=part,
            max_concurrency=max_concurrency,
            max_io_queue=16,
            use_threads=True,
        )

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3Store({self.root_url}{where})"

    def _full(self, key: str) -> str:
        key = key.lstrip("/")
        if ".." in key.split("/"):
            raise StorageError(f"Key {key!r} points outside the store at {self.root_url}.")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, exc: Exception, action: str, key: str | None = None) -> StorageError:
        """Turn a botocore failure into a StorageError that says what to check."""
        where = f"s3://{self.bucket}/{self._full(key)}" if key is not None else self.root_url
        endpoint = self.endpoint_url or "the default AWS endpoint"
        # boto3 wraps upload ClientErrors in S3UploadFailedError (implicitly chained): use the original.
        if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, ClientError):
            exc = exc.__context__
        if isinstance(exc, NoCredentialsError):
            return StorageError(
                f"Cannot {action} {where}: no AWS credentials were found.",
                hint="Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or pass them to S3Store.",
            )
        if isinstance(exc, EndpointConnectionError):
            return StorageError(
                f"Cannot {action} {where}: could not connect to {endpoint}.",
                hint="Check BOARDFLOW_S3_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) and that the S3 server is running.",
            )
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket":
                return StorageError(
                    f"Cannot {action} {where}: bucket {self.bucket!r} does not exist at {endpoint}.",
                    hint="Create the bucket or fix the bucket name in BOARDFLOW_STORE (s3://BUCKET/prefix).",
                )
            if code in _AUTH:
                return StorageError(
                    f"Cannot {action} {where}: access denied ({code}).",
                    hint="Check the AWS credentials and that they may read and write this bucket and prefix.",
                )
            if code in _MISSING:
                return StorageError(
                    f"Cannot {action} {where}: there is no such object.",
                    hint="Re-run the step that made it (use --refresh).",
                )
            return StorageError(
                f"Cannot {action} {where}: S3 answered {code or 'an error'} ({exc}).",
                hint=f"Check the bucket name, credentials and endpoint ({endpoint}).",
            )
        return StorageError(
            f"Cannot {action} {where}: {exc}.", hint=f"Check the bucket name, credentials and endpoint ({endpoint})."
        )

    @staticmethod
    def _is_missing(exc: ClientError) -> bool:
        return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING

    # -- blobs -------------------------------------------------------------------------------------
    async def put_file(self, path: Path, ext: str) -> StoredObject:
        return await asyncio.to_thread(self._put_file, Path(path), ext)

    def _put_file(self, src: Path, ext: str) -> StoredObject:
        before = _fingerprint(src)
        sha, size = sha256_file(src)
        key = object_key(sha, ext)
        head = self._head(key)
        # Skipped only when S3 itself vouches that the object holds these bytes (its SHA-256 checksum is
        # their hash); anything else under the key — other bytes, no checksum, a multipart composite — is
        # replaced by the upload below.
        if head is not None and (found := _fingerprint_of(head)).sha256 == sha:
            return StoredObject(sha, key, self.url_for(key), size, created=False, fingerprint=found.token)
        # S3 checks the bytes it receives against the SHA-256 botocore computes while sending them, and keeps
        # it: a HEAD later tells whether the object still is what was uploaded.
        extra: dict[str, str | dict[str, str]] = {"Metadata": {"sha256": sha}, "ChecksumAlgorithm": "SHA256"}
        content_type = mimetypes.guess_type(f"x.{ext.lstrip('.')}")[0]
        if content_type:
            extra["ContentType"] = content_type
        try:
            self.client.upload_file(
                str(src), self.bucket, self._full(key), ExtraArgs=extra, Config=self.transfer_config
            )
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise self._error(exc, "upload to", key) from exc
        # The upload re-reads the file after hashing: if it changed in between, the object under this
        # content key does not hold those bytes, so take it back out rather than leave a lie behind.
        if _fingerprint(src) != before:
            self._delete(key)
            raise StorageError(
                f"{src} changed while it was being stored; nothing was kept.",
                hint="Store a file only after whatever writes it has finished.",
            )
        stored = self._head(key)
        token = _fingerprint_of(stored).token if stored is not None else ""
        return StoredObject(sha, key, self.url_for(key), size, created=True, fingerprint=token)

    async def get_to_path(self, key: str, dest: Path) -> None:
        await asyncio.to_thread(self._get_to_path, key, Path(dest))

    def _get_to_path(self, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as fh:
                self.client.download_fileobj(self.bucket, self._full(key), fh, Config=self.transfer_config)
            os.replace(tmp, dest)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, (ClientError, BotoCoreError)):
                raise self._error(exc, "download", key) from exc
            raise

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._exists, key)

    def _exists(self, key: str) -> bool:
        return self._head(key) is not None

    async def fingerprint(self, key: str) -> Fingerprint | None:
        head = await asyncio.to_thread(self._head, key)
        return _fingerprint_of(head) if head is not None else None

    async def hash_object(self, key: str) -> str:
        return await asyncio.to_thread(self._hash_object, key)

    def _hash_object(self, key: str) -> str:
        digest = hashlib.sha256()
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"]
            for chunk in body.iter_chunks(CHUNK):
                digest.update(chunk)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "read", key) from exc
        return digest.hexdigest()

    def _head(self, key: str) -> dict | None:
        try:
            # ChecksumMode=ENABLED: the answer carries the checksum S3 stored with the object.
            return self.client.head_object(Bucket=self.bucket, Key=self._full(key), ChecksumMode="ENABLED")
        except ClientError as exc:
            if self._is_missing(exc):
                return None
            raise self._error(exc, "check", key) from exc
        except BotoCoreError as exc:
            raise self._error(exc, "check", key) from exc

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    def _delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "delete", key) from exc

    # -- JSON documents ----------------------------------------------------------------------------
    async def read_json(self, key: str) -> dict | None:
        return await asyncio.to_thread(self._read_json, key)

    def _read_json(self, key: str) -> dict | None:
        body = self._read_bytes(key)
        if body is None:
            return None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise StorageError(
                f"{self.url_for(key)} is not valid JSON ({exc}).", hint="Delete it to let boardflow rewrite it."
            ) from exc

    async def read_bytes(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._read_bytes, key)

    def _read_bytes(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"].read()
        except ClientError as exc:
            if self._is_missing(exc):
                return None
            raise self._error(exc, "read", key) from exc
        except BotoCoreError as exc:
            raise self._error(exc, "read", key) from exc

    async def write_json(self, key: str, data: dict) -> None:
        await asyncio.to_thread(self._put, key, _json_body(data), "application/json", False)

    async def create_json(self, key: str, data: dict) -> bool:
        return await asyncio.to_thread(self._put, key, _json_body(data), "application/json", True)

    async def write_bytes(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data, "application/octet-stream", False)

    def _put(self, key: str, body: bytes, content_type: str, create_only: bool) -> bool:
        # If-None-Match: * makes S3 itself refuse the write when the key exists (conditional writes,
        # on AWS since 2024, also in MinIO and R2), so of several concurrent writers exactly one wins.
        condition = {"IfNoneMatch": "*"} if create_only else {}
        attempts = 5
        for attempt in range(attempts):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._full(key), Body=body, ContentType=content_type, **condition
                )
                return True
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if create_only and code in ("PreconditionFailed", "412"):
                    return False
                # 409: another conditional write to this key is in flight; asking again settles who won.
                if create_only and code == "ConditionalRequestConflict" and attempt < attempts - 1:
                    continue
                raise self._error(exc, "write", key) from exc
            except BotoCoreError as exc:
                raise self._error(exc, "write", key) from exc
        raise AssertionError("unreachable")

    async def list_keys(self, prefix: str) -> list[str]:
        return await asyncio.to_thread(self._list_keys, prefix)

    def _list_keys(self, prefix: str) -> list[str]:
        root = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=root + prefix)
            for page in pages:
                keys.extend(item["Key"][len(root) :] for item in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "list", prefix) from exc
        return sorted(keys)

    # -- addresses ---------------------------------------------------------------------------------
    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def key_for(self, url: str) -> str | None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or parsed.netloc != self.bucket:
            return None
        path = parsed.path.lstrip("/")
        if not self.prefix:
            return path or None
        if not path.startswith(self.prefix + "/"):
            return None
        return path[len(self.prefix) + 1 :] or None

    def browser_url(
        self,
        key: str,
        expires_seconds: int = _MAX_PRESIGN_SECONDS,
        *,
        head: bool = False,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str:
        """A presigned GET (or HEAD) URL, at most seven days (S3's limit), with S3's answer headers overridden."""
        params = {"Bucket": self.bucket, "Key": self._full(key)}
        # Response* parameters of GetObject/HeadObject: S3 answers with these headers instead of the stored ones.
        if content_type:
            params["ResponseContentType"] = content_type
        if content_disposition:
            params["ResponseContentDisposition"] = content_disposition
        try:
            return self.client.generate_presigned_url(
                "head_object" if head else "get_object",
                Params=params,
                ExpiresIn=min(int(expires_seconds), _MAX_PRESIGN_SECONDS),
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "sign a URL for", key) from exc


def _json_body(data: dict) -> bytes:
    return json.dumps(data, indent=1, sort_keys=True, default=str).encode("utf-8")


def _fingerprint_of(head: dict) -> Fingerprint:
    """An object's Fingerprint from its HEAD answer.

    A single-part upload's ChecksumSHA256 is the base64 SHA-256 of the whole object; a multipart one's is a
    checksum of the parts' checksums ("…-N", ChecksumType COMPOSITE), so it only identifies the upload,
    like the ETag. (https://docs.aws.amazon.com/AmazonS3/latest/API/API_Checksum.html and
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity-upload.html, 2026-12-03.)
    """
    checksum = str(head.get("ChecksumSHA256") or "")
    composite = "-" in checksum or head.get("ChecksumType") == "COMPOSITE"
    sha = None
    if checksum and not composite:
        try:
            raw = base64.b64decode(checksum, validate=True)
            sha = raw.hex() if len(raw) == 32 else None
        except ValueError:
            sha = None
    return Fingerprint(int(head["ContentLength"]), f"{checksum}|{head.get('ETag', '')}", sha)


def _fingerprint(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns
