"""SyntheticConfig: documented defaults, strict keys, merged mappings, clear CLI errors."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from medcoding.cohort.synthetic import SyntheticConfig
from medcoding.cohort.synthetic.generator import main


def test_defaults_file_matches_the_dataclass():
    text = resources.files("medcoding.cohort.synthetic").joinpath("data/defaults.yaml")
    assert yaml.safe_load(text.read_text(encoding="utf-8")) == SyntheticConfig().to_dict()


def test_unknown_key_names_key_and_fix():
    with pytest.raises(ValueError) as error:
        SyntheticConfig.from_dict({"self_harm_rates": {"toxicology": 0.5}}, source="over.yaml")
    message = str(error.value)
    assert "over.yaml: unknown synthetic parameter(s) ['self_harm_rates']" in message
    assert "fix:" in message and "'self_harm_rate'" in message


def test_mappings_merge_key_by_key():
    config = SyntheticConfig.from_dict({"self_harm_rate": {"toxicology": 0.3},
                                        "coding_base": {"drug": 0.5}})
    assert config.self_harm_rate["toxicology"] == 0.3
    assert config.self_harm_rate["emergency_medicine"] == 0.04  # kept
    assert config.coding_base == {**SyntheticConfig().coding_base, "drug": 0.5}
    with pytest.raises(ValueError, match="coding_base must be a mapping"):
        SyntheticConfig.from_dict({"coding_base": 0.5})


def test_the_profile_override_maps_to_the_config():
    profile = yaml.safe_load(open("params/default.yaml", encoding="utf-8"))
    config = SyntheticConfig.from_dict(profile["synthetic_overrides"])
    assert config.self_harm_rate["emergency_medicine"] == 0.12


def test_cli_reports_bad_config_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("negation_rates: 0.5\n", encoding="utf-8")
    assert main(["--patients", "5", "--out", str(tmp_path / "out"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown synthetic parameter(s) ['negation_rates']" in err and "Traceback" not in err
    unknown = tmp_path / "spec.yaml"
    unknown.write_text("self_harm_rate: {toxicologie: 0.5}\n", encoding="utf-8")
    assert main(["--patients", "5", "--out", str(tmp_path / "o2"), "--config", str(unknown)]) == 2
    assert "unknown specialties ['toxicologie']" in capsys.readouterr().err
    assert not (tmp_path / "o2" / "manifest.json").exists()
