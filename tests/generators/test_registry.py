"""The registry: ids, lookups, availability with its fix, the config file, and plugins installed with pip."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image
from pydantic import BaseModel

from generators.base import BaseGenerator, Credential
from generators.credentials import register_secret_source, unregister_secret_source
from generators.errors import ConfigurationError, GeneratorNotFoundError
from generators.registry import ENTRY_POINT_GROUP, Registry, get_registry, reset_registry

PLUGIN_SRC = Path(__file__).parents[1] / "plugin_pkg"
PLUGIN_MODULE = "boardflow_invert_plugin"


class _Prompt(BaseModel):
    prompt: str


class _Made(BaseModel):
    text: str


def _generator(gen_id: str, kind: str = "image", **attrs) -> BaseGenerator:
    """A generator class made for one test; `generate` is never called on these."""

    async def generate(self, inputs, context):
        raise AssertionError("not run in registry tests")

    body = {
        "name": gen_id,
        "artifact_type": kind,
        "description": f"{gen_id} for tests",
        "get_input_schema": lambda self: _Prompt,
        "get_output_schema": lambda self: _Made,
        "generate": generate,
        **attrs,
    }
    return type(gen_id.replace("/", "_").replace("-", "_"), (BaseGenerator,), body)()


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    for gen_id, kind in [
        ("test/flux-dev", "image"),
        ("test/flux-pro", "image"),
        ("test/kling-video", "video"),
        ("test/narrator", "audio"),
    ]:
        reg.register(_generator(gen_id, kind))
    return reg


def test_register_get_list_and_list_by_type(registry):
    assert registry.names() == ["test/flux-dev", "test/flux-pro", "test/kling-video", "test/narrator"]
    assert registry.get("test/narrator").artifact_type == "audio"
    assert "test/flux-pro" in registry and "test/flux" not in registry
    assert [entry.generator.name for entry in registry.list("image")] == ["test/flux-dev", "test/flux-pro"]
    assert [entry.generator.name for entry in registry.list("video")] == ["test/kling-video"]
    assert registry.list("lora") == []
    assert all(entry.source == "builtin" and entry.usable for entry in registry.list())


def test_a_duplicate_id_is_rejected_naming_both(registry):
    with pytest.raises(ConfigurationError, match="'test/flux-dev' is already registered") as info:
        registry.register(_generator("test/flux-dev"), source="plugin other-package")
    assert "rename" in info.value.hint
    assert registry.get("test/flux-dev").description == "test/flux-dev for tests"  # the first one stays


def test_an_unknown_id_suggests_close_matches(registry):
    with pytest.raises(GeneratorNotFoundError) as info:
        registry.get("test/flux-dve")
    assert info.value.close_matches[0] == "test/flux-dev"
    assert "Did you mean: test/flux-dev" in str(info.value)
    with pytest.raises(GeneratorNotFoundError, match="boardflow generators list"):
        registry.get("zzz")


def test_a_missing_credential_lists_the_generator_unavailable_with_the_env_var_and_signup_url(registry, monkeypatch):
    key = Credential(
        "BOARDFLOW_TEST_EXAMPLE_KEY",
        provider="Example",
        signup_url="https://example.com/keys",
        block_type="example-credentials",
    )
    registry.register(_generator("example/model", credentials=(key,), cost_model="$0.01 per image"))
    for var in ("BOARDFLOW_TEST_EXAMPLE_KEY", "BOARDFLOW_TEST_EXAMPLE_KEY_BLOCK"):
        monkeypatch.delenv(var, raising=False)

    [entry] = [e for e in registry.list() if e.generator.name == "example/model"]
    assert not entry.availability.ok and not entry.usable and entry.enabled
    assert "BOARDFLOW_TEST_EXAMPLE_KEY" in entry.availability.reason
    assert "BOARDFLOW_TEST_EXAMPLE_KEY" in entry.availability.fix
    assert "https://example.com/keys" in entry.availability.fix
    assert "example-credentials" in entry.availability.fix

    monkeypatch.setenv("BOARDFLOW_TEST_EXAMPLE_KEY", "sk-test")
    assert registry.get("example/model").availability().ok
    monkeypatch.delenv("BOARDFLOW_TEST_EXAMPLE_KEY")
    saved = {"my-saved-block": "example-key-from-a-block"}

    def blocks(credential: Credential, block: str | None) -> str | None:  # stands in for Prefect's blocks
        return saved.get(block) if credential.env_var == "BOARDFLOW_TEST_EXAMPLE_KEY" and block else None

    register_secret_source(blocks)
    try:
        monkeypatch.setenv("BOARDFLOW_TEST_EXAMPLE_KEY_BLOCK", "my-saved-block")  # a saved block counts too
        assert registry.get("example/model").availability().ok
        # A block name that points nowhere is unavailable now, with the fix, not a failure when the step runs.
        monkeypatch.setenv("BOARDFLOW_TEST_EXAMPLE_KEY_BLOCK", "no-such-block")
        avail = registry.get("example/model").availability()
        assert not avail.ok and "'no-such-block'" in avail.reason and "example-credentials" in avail.fix
    finally:
        unregister_secret_source(blocks)


@pytest.mark.parametrize("module", ["boardflow_no_such_module", "boardflow_no_such_package.submodule"])
def test_a_missing_optional_module_lists_the_generator_unavailable_with_the_install_command(registry, module):
    registry.register(_generator("example/needs-module", requires_modules=("PIL", module)))
    [entry] = [e for e in registry.list("image") if e.generator.name == "example/needs-module"]
    assert not entry.availability.ok
    assert module in entry.availability.reason
    assert entry.availability.fix == f"pip install {module}"


def _write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boardflow.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_file_disables_generators(registry, tmp_path):
    registry.apply_config(_write_config(tmp_path, '[generators]\ndisabled = ["test/flux-pro"]\n'))
    listed = {e.generator.name: e for e in registry.list()}
    assert not listed["test/flux-pro"].enabled and not listed["test/flux-pro"].usable
    assert listed["test/flux-dev"].enabled and listed["test/narrator"].enabled


def test_config_file_enables_only_the_named_generators(registry, tmp_path):
    text = '[generators]\nenabled = ["test/flux-dev", "test/narrator"]\ndisabled = ["test/narrator"]\n'
    registry.apply_config(_write_config(tmp_path, text))
    assert [e.generator.name for e in registry.list() if e.enabled] == ["test/flux-dev"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[generators]\nenabled = ["test/flux-dev", "test/flux-ultra"]\n', "unknown generator(s): test/flux-ultra"),
        ('[generators]\ndisabled = ["nobody/none"]\n', "unknown generator(s): nobody/none"),
        ('[generators]\nenable = ["test/flux-dev"]\n', "unknown key(s) enable"),
        ('[generators]\ndisabled = "test/flux-dev"\n', "must be a list of generator ids"),
        ("[generators\nenabled = [", "is not valid TOML"),
    ],
)
def test_config_file_mistakes_are_refused_clearly(registry, tmp_path, text, words):
    with pytest.raises(ConfigurationError, match=words.replace("(", r"\(").replace(")", r"\)")) as info:
        registry.apply_config(_write_config(tmp_path, text))
    assert info.value.hint
    assert all(e.enabled for e in registry.list())  # nothing half-applied


def test_a_missing_config_file_changes_nothing(registry, tmp_path):
    registry.apply_config(tmp_path / "absent.toml")
    assert all(e.enabled for e in registry.list())


@pytest.fixture
def fresh_default_registry(monkeypatch, tmp_path):
    monkeypatch.setenv("BOARDFLOW_CONFIG", str(tmp_path / "boardflow.toml"))
    reset_registry()
    yield
    reset_registry()


def test_get_registry_builds_from_builtins_even_when_there_are_none_yet(fresh_default_registry):
    from generators import builtin

    reg = get_registry()
    assert get_registry() is reg  # one per process
    assert reg.names() == sorted(g.name for g in builtin.generators())
    assert all(e.source == "builtin" for e in reg.list())


# -- plugins, installed for real ----------------------------------------------------------------


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """tests/plugin_pkg installed with pip into its own folder, as `pip install` would for a user."""
    work = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(PLUGIN_SRC, work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    target = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
    )
    assert list(target.glob("boardflow_invert_plugin-*.dist-info/entry_points.txt"))
    return target


@pytest.fixture
def plugin_on_path(plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    yield plugin_site
    for name in [m for m in sys.modules if m == PLUGIN_MODULE or m.startswith(PLUGIN_MODULE + ".")]:
        del sys.modules[name]  # so later tests cannot reach the plugin once its path is gone


def test_no_plugin_is_found_before_the_package_is_installed():
    reg = Registry()
    reg.load_plugins()
    assert not any(name.startswith("plugin/") for name in reg.names())


def _png(color=(10, 200, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 8), color).save(buf, "PNG")
    return buf.getvalue()


async def test_an_installed_plugin_is_discovered_through_the_entry_point_and_runs(plugin_on_path, ctx, store):
    reg = Registry()
    reg.load_plugins()

    listed = {e.generator.name: e for e in reg.list()}
    assert {"plugin/invert-image", "plugin/grayscale-image"} <= set(listed)
    invert = listed["plugin/invert-image"]
    assert invert.source == ("plugin boardflow-invert-plugin 0.1.0 (boardflow_invert_plugin.invert:InvertImage)")
    assert invert.usable and invert.generator.artifact_type == "image"
    assert "more_generators" in listed["plugin/grayscale-image"].source  # the callable(registry) form
    acme = listed["acme/upscale"]  # a hosted provider shipped as one unit: its entries became generators
    assert acme.generator.provider == "acme" and "provider:PROVIDER" in acme.source and "acme" in reg.providers
    # The deliberately broken entry point is recorded with its reason and did not stop the others.
    assert list(reg.plugin_errors) == ["broken-on-import"]
    assert "ImportError" in reg.plugin_errors["broken-on-import"]
    assert str(plugin_on_path) in sys.modules[PLUGIN_MODULE].__file__  # imported from the pip-installed copy

    source = await ctx.store_image_result(_png())
    result = await reg.get("plugin/invert-image").run({"image": source.model_dump(mode="json")}, ctx)
    out = result.primary
    assert out.parents == (source.sha256,) and out.generator == "plugin/invert-image"
    assert result.estimated_cost_usd == Decimal(0)
    with Image.open(store.local_path(store.key_for(out.storage_url))) as img:
        assert img.size == (16, 8) and img.convert("RGB").getpixel((3, 3)) == (245, 55, 215)


async def test_get_registry_includes_plugins_and_applies_the_config_to_them(
    plugin_on_path, fresh_default_registry, tmp_path
):
    _write_config(tmp_path, '[generators]\ndisabled = ["plugin/grayscale-image"]\n')
    reg = get_registry()
    listed = {e.generator.name: e for e in reg.list("image")}
    assert listed["plugin/invert-image"].enabled
    assert not listed["plugin/grayscale-image"].enabled
    assert "broken-on-import" in reg.plugin_errors


def test_the_entry_point_group_is_the_documented_one(plugin_site):
    text = next(plugin_site.glob("*.dist-info/entry_points.txt")).read_text()
    assert f"[{ENTRY_POINT_GROUP}]" in text and ENTRY_POINT_GROUP == "boardflow.generators"
