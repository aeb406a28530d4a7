"""Catalogue tests run the importer and the generators it makes against the fake provider server on 127.0.0.1."""

from tests.fakes.fixtures import fake, hosted_ctx  # noqa: F401  (fixtures)
