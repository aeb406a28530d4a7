"""Provider API keys as Prefect blocks (SecretStr), and `load_api_key`: the secret source generators ask."""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable
from typing import Any, ClassVar, cast

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, HttpUrl, SecretStr

from generators.credentials import Credential
from generators.errors import ConfigurationError
from generators.providers.elevenlabs import ELEVENLABS, ElevenLabsClient
from generators.providers.fal import FAL, FalClient
from generators.providers.http import ProviderClient, ProviderInfo
from generators.providers.kie import KIE, KieClient
from generators.providers.openai import OPENAI, OpenAIClient
from generators.providers.replicate import REPLICATE, ReplicateClient


class ProviderCredentials(CredentialsBlock, ABC):
    """One provider's API key. Not registered itself (ABC): each provider's subclass is a block type."""

    info: ClassVar[ProviderInfo]
    client_class: ClassVar[type[ProviderClient]]

    api_key: SecretStr = Field(
        title="API key",
        description="The API key from the provider's dashboard; stored as a secret and never shown in logs.",
    )

    def get_client(self, **options: Any) -> ProviderClient:
        """The provider's HTTP client using this key (`async with block.get_client() as client:`)."""
        return self.client_class(api_key=self.api_key, **options)


class FalCredentials(ProviderCredentials):
    """An API key for fal.ai, used by boardflow's fal generators (Flux, Kling, upscalers).

    Get a key at https://fal.ai/dashboard/keys. Generators use the block named by FAL_KEY_BLOCK.

    Example:
        Load the saved key and make a fal client:
        ```python
        from blocks import FalCredentials

        fal_credentials = FalCredentials.load("BLOCK_NAME")
        client = fal_credentials.get_client()
        ```
    """

    info = FAL
    client_class = FalClient
    _block_type_name = "fal Credentials"
    _block_type_slug = FAL.credential.block_type
    _documentation_url = HttpUrl(FAL.credential.signup_url)


class ReplicateCredentials(ProviderCredentials):
    """An API token for Replicate, used by boardflow's Replicate generators.

    Get a token at https://replicate.com/account/api-tokens. Generators use the block named by
    REPLICATE_API_TOKEN_BLOCK.

    Example:
        Load the saved token and make a Replicate client:
        ```python
        from blocks import ReplicateCredentials

        replicate_credentials = ReplicateCredentials.load("BLOCK_NAME")
        client = replicate_credentials.get_client()
        ```
    """

    info = REPLICATE
    client_class = ReplicateClient
    _block_type_name = "Replicate Credentials"
    _block_type_slug = REPLICATE.credential.block_type
    _documentation_url = HttpUrl(REPLICATE.credential.signup_url)


class OpenAICredentials(ProviderCredentials):
    """An API key for OpenAI, used by boardflow's OpenAI generators (images, speech).

    Get a key at https://platform.openai.com/api-keys. Generators use the block named by
    OPENAI_API_KEY_BLOCK.

    Example:
        Load the saved key and make an OpenAI client:
        ```python
        from blocks import OpenAICredentials

        openai_credentials = OpenAICredentials.load("BLOCK_NAME")
        client = openai_credentials.get_client()
        ```
    """

    info = OPENAI
    client_class = OpenAIClient
    _block_type_name = "OpenAI Credentials"
    _block_type_slug = OPENAI.credential.block_type
    _documentation_url = HttpUrl(OPENAI.credential.signup_url)


class ElevenLabsCredentials(ProviderCredentials):
    """An API key for ElevenLabs, used by boardflow's ElevenLabs generators (speech, sound effects).

    Get a key at https://elevenlabs.io/app/settings/api-keys. Generators use the block named by
    ELEVENLABS_API_KEY_BLOCK.

    Example:
        Load the saved key and make an ElevenLabs client:
        ```python
        from blocks import ElevenLabsCredentials

        elevenlabs_credentials = ElevenLabsCredentials.load("BLOCK_NAME")
        client = elevenlabs_credentials.get_client()
        ```
    """

    info = ELEVENLABS
    client_class = ElevenLabsClient
    _block_type_name = "ElevenLabs Credentials"
    _block_type_slug = ELEVENLABS.credential.block_type
    _documentation_url = HttpUrl(ELEVENLABS.credential.signup_url)


class KieCredentials(ProviderCredentials):
    """An API key for Kie (kie.ai), used by boardflow's Kie generators (Suno music).

    Get a key at https://kie.ai/api-key. Generators use the block named by KIE_API_KEY_BLOCK.

    Example:
        Load the saved key and make a Kie client:
        ```python
        from blocks import KieCredentials

        kie_credentials = KieCredentials.load("BLOCK_NAME")
        client = kie_credentials.get_client()
        ```
    """

    info = KIE
    client_class = KieClient
    _block_type_name = "Kie Credentials"
    _block_type_slug = KIE.credential.block_type
    _documentation_url = HttpUrl(KIE.credential.signup_url)


PROVIDER_CREDENTIALS: tuple[type[ProviderCredentials], ...] = (
    FalCredentials,
    ReplicateCredentials,
    OpenAICredentials,
    ElevenLabsCredentials,
    KieCredentials,
)
_BY_SLUG = {cls.get_block_type_slug(): cls for cls in PROVIDER_CREDENTIALS}


def load_api_key(credential: Credential, block_name: str) -> SecretStr | None:
    """The key saved in the block `block_name` of the credential's block type; None for types not ours."""
    cls = _BY_SLUG.get(credential.block_type or "")
    if cls is None:
        return None
    save = f"`{cls.__name__}(api_key=...).save({block_name!r})` or the Blocks page of the Prefect UI"
    try:
        # The sync client: keys are asked for from sync code (a provider client's constructor). `_sync` is
        # read by Prefect's @async_dispatch wrapper, whose declared signature omits it and types the result as
        # maybe-a-coroutine; with _sync=True it is always the block, which the cast says.
        load = cast(Callable[..., ProviderCredentials], cls.load)
        block = load(block_name, _sync=True)
    except ValueError:  # Prefect's "Unable to find block document named … for block type …"
        raise ConfigurationError(
            f"{credential.env_var}_BLOCK names {block_name!r}, but there is no {cls.get_block_type_slug()} "
            "block of that name on the Prefect API.",
            hint=f"Save one with {save}, or set {credential.env_var} directly.",
        ) from None
    except Exception as exc:  # API unreachable, wrong schema…: say which block and why, never a key
        raise ConfigurationError(
            f"Could not load the {cls.get_block_type_slug()} block {block_name!r}: {type(exc).__name__}: {exc}",
            hint=f"Check that the Prefect API (PREFECT_API_URL) is reachable, or set {credential.env_var} directly.",
        ) from None
    return block.api_key
