"""medcoding.icd10: normal form, validity, categories, chapters, titles and ranges."""

import pandas as pd
import pytest

from medcoding import icd10


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("E660", "E66.0"), ("E66.0", "E66.0"), ("DE660", "E66.0"), (" e66.0 ", "E66.0"),
     ("E66", "E66"), ("D50", "D50"), ("DD509", "D50.9"), ("E6601", "E66.01"),
     ("T360X1A", "T36.0X1A")],
)
def test_normalise(raw, expected):
    assert icd10.normalise(raw) == expected


@pytest.mark.parametrize("garbage", ["", "hello", "66.0", "E6", "E66.00000", "X60-X84"])
def test_normalise_rejects_garbage_with_fix(garbage):
    with pytest.raises(ValueError, match="fix:"):
        icd10.normalise(garbage)


def test_normalise_rejects_non_text():
    with pytest.raises(ValueError, match="must be a string"):
        icd10.normalise(660)


def test_validity_who_and_cm():
    assert icd10.is_valid("E66.0") and icd10.is_valid("DE660") and icd10.is_valid("E66")
    assert not icd10.is_valid("E66.00")  # WHO has no fifth character here
    assert not icd10.is_valid("E99")  # no such category
    assert not icd10.is_valid("X60-X84")  # a block, not a code
    assert not icd10.is_valid("nonsense")
    assert icd10.is_valid("E6601", system="cm") and icd10.is_valid("E66.01", system="cm")
    assert not icd10.is_valid("X60", system="cm")  # CM codes self-harm in T14.91 / T36-T65
    with pytest.raises(ValueError, match="unknown code system"):
        icd10.is_valid("E66", system="icd9")


def test_external_causes_take_the_who_place_of_occurrence_character():
    """WHO lists the place digits (.0 home ... .9 unspecified) once for W00-Y34, not per code."""
    assert icd10.is_valid("X61.0") and icd10.is_valid("DX780") and icd10.is_valid("W01.5")
    assert icd10.is_valid("Y34.9") and icd10.chapter("X61.0") == "XX"
    assert icd10.title("X84.0") == "Intentional self-harm by unspecified means: home"
    assert icd10.category("X61.0") == "X61" and icd10.in_range("X61.0", "X60-X85")
    assert not icd10.is_valid("X61.10")  # one place digit, no fifth character
    assert not icd10.is_valid("X34.5")  # X34 lists its own subdivisions: only those
    assert not icd10.is_valid("Y35.9")  # outside W00-Y34 (Y35 has its own)
    assert not icd10.is_valid("X84X") and not icd10.is_valid("E66.7")
    assert not icd10.is_valid("X61.0", system="cm")


def test_category_chapter_title():
    assert icd10.category("DE660") == "E66"
    assert icd10.is_category("E66") and not icd10.is_category("E66.0")
    assert not icd10.is_category("E99")
    assert icd10.chapter("E66.0") == "IV"
    assert icd10.chapter("X84") == "XX"
    assert icd10.chapter("T360X1A", system="cm") == "XIX"
    assert icd10.title("E66") == "Obesity"
    assert icd10.title("X85") == "Assault by drugs, medicaments and biological substances"
    with pytest.raises(ValueError, match="not defined in ICD-10 WHO"):
        icd10.title("E99")


def test_study_spelling_of_suicide_range_is_self_harm_only():
    study = icd10.parse_range("X60-X85")
    assert str(study) == icd10.SUICIDE_RELATED == "X60-X84"
    categories = icd10.range_categories("X60-X85")
    assert len(categories) == 25 and categories[0] == "X60" and categories[-1] == "X84"
    assert icd10.in_range("X84", "X60-X85") and not icd10.in_range("X85", "X60-X85")


def test_ranges():
    hypertension = icd10.parse_range("I10-I15")
    assert (hypertension.start, hypertension.end) == ("I10", "I15")
    assert "I15.9" in hypertension and "I10" in hypertension and "DI119" in hypertension
    assert "I16" not in hypertension and "I09.9" not in hypertension and "junk" not in hypertension
    assert icd10.range_categories("I10-I15") == ["I10", "I11", "I12", "I13", "I15"]
    assert icd10.in_range("E66.9", "E66") and not icd10.in_range("E67", "E66")
    assert icd10.range_categories("E10-E11,E14") == ["E10", "E11", "E14"]
    assert icd10.range_categories(["E10-E11", "E14"]) == ["E10", "E11", "E14"]
    assert icd10.in_range("E14.9", "E10-E11, E14") and not icd10.in_range("E12", "E10-E11,E14")
    with pytest.raises(ValueError, match="ends before it starts"):
        icd10.parse_range("I15-I10")
    with pytest.raises(ValueError, match="cannot read code range"):
        icd10.parse_range("I10-foo")


def test_vectorised_helpers_match_scalar_functions():
    codes = pd.Series(["E660", "DE660", "bad", None, "X60", "E99"] * 1000)
    categories = icd10.categories_of(codes)
    assert categories[:6].tolist()[:2] == ["E66", "E66"] and categories[4] == "X60"
    assert categories[2:4].isna().all()
    assert icd10.valid_mask(codes)[:6].tolist() == [True, True, False, False, True, False]
    assert icd10.in_range_mask(codes, "X60-X85")[:6].tolist() == [False] * 4 + [True, False]
    assert icd10.normalise_series(codes[:2]).tolist() == ["E66.0", "E66.0"]
    coerced = icd10.normalise_series(codes[:3], errors="coerce")
    assert coerced.isna().tolist() == [False, False, True]
    with pytest.raises(ValueError, match="'bad' is not an ICD-10 code"):
        icd10.normalise_series(codes[:3])
