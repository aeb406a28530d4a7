"""The one error hierarchy of boardflow; every message says what happened and what to do.

    BoardflowError
    ├── ConfigurationError            something to set up (a key, a dependency, a config file)
    │   └── MissingCredentialError    an API key is not set; names the env var and where to get one
    ├── GeneratorNotFoundError        unknown generator id; lists close matches
    ├── InputError                    the caller's input is wrong; never retried
    │   ├── InputValidationError      inputs fail a generator's schema; lists every field and why
    │   ├── UnsafeURLError            a URL that resolution refuses (SSRF guard, scheme, size cap)
    │   └── ArtifactDecodeError       a file that does not decode or is not the declared type
    ├── ProviderError                 a provider answered with an error (status_code, body)
    │   ├── ProviderAuthError         401/403: the key is wrong or lacks permission
    │   ├── InsufficientCreditError   402 or an out-of-credit answer
    │   ├── ProviderInputError        400/422: the provider rejected the input
    │   ├── RateLimitError            429, with retry_after seconds when the provider says
    │   ├── TransientProviderError    5xx, timeouts, dropped connections
    │   └── JobFailedError            the provider ran the job and it failed
    ├── UnexpectedResponseError       a body that does not match the provider's documented shape
    ├── MediaProcessingError          ffmpeg (or a decoder) failed; carries the command and stderr tail
    ├── StorageError                  the artifact store could not read or write
    │   └── DamagedArtifactError      a stored object is gone or holds other bytes than its name
    └── BudgetExceededError           a plan or a run would cross max_cost_usd

`retryable` on each class tells the orchestration layer whether a retry can help.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from decimal import Decimal

MAX_MESSAGE = 4000  # characters of a message (and a quarter of that for a hint) before the rest is cut
_MAX_HINT = MAX_MESSAGE // 4


def cut(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text`, or its first `limit` characters and how long it was: an error never carries megabytes."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters cut]"


def shorten(value: str, limit: int = 200) -> str:
    """`value` quoted for a message, cut to about `limit` characters (a 10 MB data: URI stays one line)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[: limit - 40]!r}… ({len(value)} characters)"


class BoardflowError(Exception):
    """Base of every error boardflow raises on purpose.

    `hint` says what to do; a class's `default_hint` is used when the raiser gives none, so no
    error reaches a person without a next step. Message and hint are cut to MAX_MESSAGE and a
    quarter of it, whatever text (a body, a URL) went into them.
    """

    retryable = False
    default_hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = cut(message)
        hint = hint if hint is not None else self.default_hint
        self.hint = cut(hint, _MAX_HINT) if hint is not None else None
        super().__init__(f"{self.message} {self.hint}" if self.hint else self.message)


class ConfigurationError(BoardflowError):
    """Something must be set up before this can run."""

    default_hint = "Check the BOARDFLOW_* environment variables and boardflow.toml."


def block_alternative(env_var: str, block_type: str | None) -> str:
    """The ", or use a block" half of a missing-key hint ("" when the credential has no block type)."""
    if not block_type:
        return ""
    article = "an" if block_type[0] in "aeiou" else "a"
    return f" or save {article} `{block_type}` block and set {env_var}_BLOCK to its name"


class MissingCredentialError(ConfigurationError):
    def __init__(self, env_var: str, *, provider: str, signup_url: str, block_type: str | None = None):
        self.env_var = env_var
        self.provider = provider
        self.signup_url = signup_url
        where = block_alternative(env_var, block_type)
        super().__init__(
            f"{provider} needs an API key and {env_var} is not set.",
            hint=f"Set the {env_var} environment variable{where}. Get a key at {signup_url}",
        )


class GeneratorNotFoundError(BoardflowError):
    def __init__(self, name: str, close_matches: Sequence[str] = ()):
        self.name = name
        self.close_matches = list(close_matches)
        hint = (
            f"Did you mean: {', '.join(self.close_matches)}?"
            if self.close_matches
            else "Run `boardflow generators list` to see every generator id."
        )
        super().__init__(f"No generator is registered as {name!r}.", hint=hint)


class InputError(BoardflowError):
    """The input is wrong; retrying the same input cannot help."""

    default_hint = "Fix the input and run again; the same input will fail the same way."


class InputValidationError(InputError):
    """Inputs that fail a generator's input schema; `problems` holds (field path, message) pairs."""

    def __init__(self, generator: str, problems: Sequence[tuple[str, str]], *, where: str = ""):
        self.generator = generator
        self.problems = list(problems)
        lines = "\n".join(f"  - {field or '(inputs)'}: {msg}" for field, msg in self.problems)
        prefix = f"{where}: " if where else ""
        super().__init__(
            f"{prefix}invalid inputs for {generator}:\n{lines}",
            hint=f"See `boardflow generators show {generator}` for every field, its type and bounds.",
        )

    @classmethod
    def from_pydantic(cls, generator: str, exc, *, where: str = "") -> InputValidationError:
        problems = [(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()]
        return cls(generator, problems, where=where)


class UnsafeURLError(InputError):
    default_hint = "Use an http(s) URL on a public host, or put the file in the artifact store first."


class ArtifactDecodeError(InputError):
    default_hint = "Check that the file is complete and store it with the function for its real type."


class ProviderError(BoardflowError):
    default_hint = "Read the provider's message above; if it persists, check the provider's status page."

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        body: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.provider = provider
        self.status_code = status_code
        self.body = body
        # What the provider may have charged for this failed request (fal bills some 422s); set by the generator.
        self.charged_usd: Decimal | None = None
        status = f" (HTTP {status_code})" if status_code is not None else ""
        super().__init__(f"{provider}{status}: {message}", hint=hint)


class ProviderAuthError(ProviderError):
    default_hint = "Check that the provider's API key is right and allowed to use this model."


class InsufficientCreditError(ProviderError):
    default_hint = "Add credits to your account with the provider, then run again."


class ProviderInputError(ProviderError):
    default_hint = "Fix the inputs the provider named; `boardflow generators show ID` lists each field's bounds."


class RateLimitError(ProviderError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        self.retry_after = retry_after
        if kw.get("hint") is None:
            wait = f"after {retry_after:g} s" if retry_after is not None else "with backoff"
            kw["hint"] = (
                f"boardflow retries this {wait}; if it keeps happening, lower the concurrency limit for this provider."
            )
        super().__init__(message, **kw)


class TransientProviderError(ProviderError):
    retryable = True
    default_hint = "boardflow retries this; if it persists, check the provider's status page."


class JobFailedError(ProviderError):
    default_hint = "Check the inputs against the provider's message, or run again with another seed."


class UnexpectedResponseError(BoardflowError):
    def __init__(self, message: str, *, provider: str, body: str):
        self.provider = provider
        self.body = body
        super().__init__(
            f"{provider}: {message}. Body: {body[:500]}",
            hint="The provider's API may have changed; please report this with the body above.",
        )


class MediaProcessingError(BoardflowError):
    default_hint = "Check that every input file plays (`ffmpeg -i FILE`); ffmpeg's own message tells the cause."

    def __init__(self, message: str, *, command: Sequence[str] = (), stderr_tail: str = "", hint: str | None = None):
        self.command = list(command)
        self.stderr_tail = stderr_tail
        super().__init__(message, hint=hint)
        # The hint goes before the command and stderr so it is not lost at the end of a long tail.
        parts = [str(self)]
        if self.command:
            parts.append(f"Command: {cut(shlex.join(self.command))}")
        if stderr_tail:
            parts.append(f"ffmpeg said:\n{cut(stderr_tail)}")
        self.args = ("\n".join(parts),)


class StorageError(BoardflowError):
    default_hint = "Check that the artifact store (BOARDFLOW_STORE) is reachable and writable."


class DamagedArtifactError(StorageError):
    """An artifact's object is missing from the store or no longer holds the bytes its sha256 names.

    `problem` is "object missing" or "bytes changed"; a pipeline that knows which step made the artifact
    makes that step again instead of failing.
    """

    default_hint = "Run again: boardflow re-makes the step that produced it (or use --refresh)."

    def __init__(self, message: str, *, sha256: str, problem: str, hint: str | None = None) -> None:
        self.sha256 = sha256
        self.problem = problem
        super().__init__(message, hint=hint)

    def __reduce__(self):  # keyword-only arguments: pickled (Prefect's failed states) as what they are
        return _damaged, (self.message, self.sha256, self.problem, self.hint)


def _damaged(message: str, sha256: str, problem: str, hint: str | None) -> DamagedArtifactError:
    return DamagedArtifactError(message, sha256=sha256, problem=problem, hint=hint)


class BudgetExceededError(BoardflowError):
    def __init__(self, message: str, *, planned_usd: Decimal, cap_usd: Decimal, hint: str | None = None):
        self.planned_usd = planned_usd
        self.cap_usd = cap_usd
        super().__init__(
            message,
            hint=hint
            or f"Raise max_cost_usd above {planned_usd} or reduce the work (fewer rows/steps, cheaper models).",
        )


def is_retryable(exc: BaseException) -> bool:
    """True for faults a retry can cure: rate limits, 5xx, timeouts, dropped connections."""
    if isinstance(exc, BoardflowError):
        return exc.retryable
    import httpx  # local: errors.py stays importable without the HTTP stack loaded

    return isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError))
