"""The published JSON schema: generated from the registry, committed, and usable by a plain validator."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from netbuilder.arch import LAYERS, arch_schema
from netbuilder.arch.schema import SCHEMA_FILE, schema_text

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "netbuilder" / "archs").glob("*.json")) + [ROOT / "tests" / "data" / "legacy_mnist.json"]


def test_committed_schema_is_up_to_date() -> None:
    # Regenerate with: netbuilder arch schema > netbuilder/arch/archs.schema.json
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text()
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == arch_schema()


def test_schema_is_valid_and_covers_the_registry() -> None:
    schema = arch_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["$defs"]["layer"]["properties"]["type"]["enum"]) == set(LAYERS)
    for name, cls in LAYERS.items():
        assert schema["$defs"][f"layer_{name}"] == cls.schema_fragment()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_plain_validator_accepts_shipped_files(path: Path) -> None:
    jsonschema.Draft202012Validator(arch_schema()).validate(json.loads(path.read_text()))


def test_plain_validator_rejects_unknown_keys_and_types() -> None:
    validator = jsonschema.Draft202012Validator(arch_schema())
    good = json.loads((ROOT / "netbuilder" / "archs" / "digits.json").read_text())
    assert validator.is_valid(good) and validator.is_valid(good[0])
    bad = json.loads(json.dumps(good))
    bad[1]["encoder"][0]["filter"] = 3
    assert not validator.is_valid(bad)
    bad = json.loads(json.dumps(good))
    bad[0]["encoder"][1]["type"] = "linear"
    assert not validator.is_valid(bad)
    bad = json.loads(json.dumps(good))
    bad[0].setdefault("latent", {})["l2"] = True
    assert not validator.is_valid(bad)
    assert not validator.is_valid([])
