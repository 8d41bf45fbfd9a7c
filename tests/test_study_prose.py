"""medcoding.study_prose: the study's numbers as the chapters' prose shows them."""

from __future__ import annotations

import pytest

from medcoding import study_prose


def test_each_chapter_gets_the_study_numbers_formatted_from_study_py():
    assert study_prose.texts("01_cohort") == {
        "study_patients_raw": "2,600,000", "study_patients_kept": "2,075,000",
        "study_codes_per_course": "2", "study_max_characters": "10,000"}
    assert study_prose.texts("03_results") == {
        "study_test_patients": "270,000", "study_train_patients": "1,800,000",
        "study_epochs": "10"}
    # Table 1, level 3, 50K -> 1.8M: macro F1 rose 0.217, more than MAP's 0.104 or any other
    assert study_prose.texts("04_scaling") == {
        "study_fastest_metric": "F1 macro", "study_fastest_from": "0.256",
        "study_fastest_to": "0.473", "study_smallest": "50K", "study_largest": "1.8M"}
    assert study_prose.texts("05_specialties") == {
        "study_min_department": "100",
        "study_low_specialty": "53% (Child and adolescent psychiatry)",
        "study_high_specialty": "91% (Clinical neurophysiology)"}
    assert study_prose.texts("06_code_frequency") == {"study_never": "20.1%",
                                                      "study_min_count": "1,000"}
    assert study_prose.texts("07_primary_secondary") == {"study_secondary_recall": "90%"}
    assert study_prose.texts("08_undercoding") == {
        "study_review_size": "50", "study_secondary_E66": "86.9%",
        "study_secondary_I10": "89.6%", "study_x60_cases": "389",
        "study_validated_range": "76% to 86%"}
    assert study_prose.texts("09_documentation") == {"study_e14_share": "31%",
                                                     "study_i50_share": "17.6%"}


def test_a_chapter_without_study_numbers_is_named_in_the_error():
    with pytest.raises(KeyError, match="no study numbers for chapter '02_training'"):
        study_prose.texts("02_training")
