"""The artifact-store block: a local folder, or an S3 bucket/prefix with prefect-aws AwsCredentials."""

from __future__ import annotations

from pathlib import Path

from prefect.blocks.core import Block
from prefect_aws import AwsCredentials
from pydantic import Field, HttpUrl, model_validator

from generators.settings import get_settings
from generators.storage import ArtifactStore, open_store


class ArtifactStoreBlock(Block):
    """Where boardflow keeps artifacts and its result index: a local folder, or an S3 bucket and prefix.

    Workers on several machines share a run's outputs and cache through an S3 store; MinIO, R2 and other
    S3 APIs work through `endpoint_url`.

    Example:
        Load the saved settings and open the store:
        ```python
        from blocks import ArtifactStoreBlock

        artifact_store = ArtifactStoreBlock.load("BLOCK_NAME")
        store = artifact_store.get_store()
        ```
    """

    _block_type_name = "boardflow Artifact Store"
    _block_type_slug = "boardflow-artifact-store"
    _documentation_url = HttpUrl("https://docs.prefect.io/integrations/prefect-aws")

    path: str | None = Field(
        default=None,
        description="A local folder (or file:// URL) to keep artifacts in; leave empty when using a bucket.",
    )
    bucket: str | None = Field(
        default=None, description="The S3 bucket to keep artifacts in; leave empty when using a local path."
    )
    prefix: str = Field(default="", description="A key prefix inside the bucket, e.g. studio/boardflow.")
    aws_credentials: AwsCredentials | None = Field(
        default=None,
        description="AWS credentials for the bucket; empty uses boto3's own chain (env vars, profile, role).",
    )
    endpoint_url: str | None = Field(
        default=None,
        title="Endpoint URL",
        description="The S3 API endpoint for MinIO, R2 or a local S3; empty means AWS (or BOARDFLOW_S3_ENDPOINT_URL).",
    )

    @model_validator(mode="after")
    def _one_place(self) -> ArtifactStoreBlock:
        if bool(self.path) == bool(self.bucket):
            raise ValueError("set exactly one of path (a local folder) or bucket (S3)")
        return self

    @property
    def url(self) -> str:
        """The store as a URL: file:///… or s3://bucket/prefix."""
        if self.path:
            return self.path if "://" in self.path else Path(self.path).expanduser().resolve().as_uri()
        prefix = self.prefix.strip("/")
        return f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"

    def get_store(self) -> ArtifactStore:
        """The artifact store these settings describe (generators.storage's LocalStore or S3Store)."""
        if self.path:
            return open_store(self.url)
        endpoint = self.endpoint_url
        if endpoint is None and self.aws_credentials is not None:
            endpoint = self.aws_credentials.aws_client_parameters.endpoint_url
        endpoint = endpoint or get_settings().s3_endpoint_url
        if self.aws_credentials is None:
            return open_store(self.url, endpoint_url=endpoint)
        from botocore.config import Config

        # The same client settings S3Store makes for itself, on the block's session (keys, profile or role).
        config = Config(
            s3={"addressing_style": "path"} if endpoint else {},
            signature_version="s3v4",
            retries={"mode": "standard", "max_attempts": 5},
        )
        session = self.aws_credentials.get_boto3_session()
        client = session.client("s3", endpoint_url=endpoint, config=config)
        return open_store(self.url, endpoint_url=endpoint, client=client)
