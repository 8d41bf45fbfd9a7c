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
    assert ("over.yaml: unknown key 'self_harm_rates'; fix: did you mean 'self_harm_rate'?"
            in message)
    assert "\n" not in message


def test_types_and_ranges_are_checked():
    with pytest.raises(ValueError, match=r"over.yaml: self_harm_rate\['toxicology'\] = 1.5 is "
                                         r"outside \[0, 1\]; fix: give a value in \[0, 1\]"):
        SyntheticConfig.from_dict({"self_harm_rate": {"toxicology": 1.5}}, source="over.yaml")
    with pytest.raises(ValueError, match=r"burden_scale = -0.1 is outside \[0, inf\]"):
        SyntheticConfig.from_dict({"burden_scale": -0.1})
    with pytest.raises(ValueError, match="max_courses = 2.5: input should be a valid integer"):
        SyntheticConfig.from_dict({"max_courses": 2.5})
    assert SyntheticConfig.from_dict({"chronic_scale": 2}).chronic_scale == 2.0  # int for float


def test_mappings_merge_key_by_key():
    config = SyntheticConfig.from_dict({"self_harm_rate": {"toxicology": 0.3},
                                        "coding_base": {"drug": 0.5}})
    assert config.self_harm_rate["toxicology"] == 0.3
    assert config.self_harm_rate["emergency_medicine"] == 0.04  # kept
    assert config.coding_base == {**SyntheticConfig().coding_base, "drug": 0.5}
    with pytest.raises(ValueError, match="coding_base = 0.5: input should be a valid dictionary"):
        SyntheticConfig.from_dict({"coding_base": 0.5})


def test_the_profile_override_maps_to_the_config():
    profile = yaml.safe_load(open("params/default.yaml", encoding="utf-8"))
    config = SyntheticConfig.from_dict(profile["synthetic_overrides"])
    assert config.self_harm_rate["emergency_medicine"] == 0.18


def test_cli_reports_bad_config_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("negation_rates: 0.5\n", encoding="utf-8")
    assert main(["--patients", "5", "--out", str(tmp_path / "out"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'negation_rates'" in err and "Traceback" not in err
    unknown = tmp_path / "spec.yaml"
    unknown.write_text("self_harm_rate: {toxicologie: 0.5}\n", encoding="utf-8")
    assert main(["--patients", "5", "--out", str(tmp_path / "o2"), "--config", str(unknown)]) == 2
    assert "unknown specialties ['toxicologie']" in capsys.readouterr().err
    assert not (tmp_path / "o2" / "manifest.json").exists()
