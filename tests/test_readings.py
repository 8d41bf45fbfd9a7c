"""Readings: a direction only when the interval excludes no difference, else 'cannot tell'."""

from __future__ import annotations

import math

import nbformat
import pytest
from nbclient import NotebookClient

from medcoding import readings

NAN = math.nan


def test_interval_formats_and_says_when_nothing_can_be_computed():
    assert readings.interval(0.4123, 0.401, 0.4234) == "0.412 (95% CI 0.401 to 0.423)"
    assert readings.interval(0.213, 0.2, 0.25, ".1%") == "21.3% (95% CI 20.0% to 25.0%)"
    assert readings.interval(0.5, NAN, NAN) == "0.500"
    assert readings.interval(NAN, 0.1, 0.2) == "not computable"


@pytest.mark.parametrize(("low", "high", "expected"), [
    (0.01, 0.2, 1), (-0.3, -0.001, -1), (-0.1, 0.1, 0), (0.0, 0.1, 0), (NAN, NAN, 0)])
def test_direction_needs_the_whole_interval_on_one_side(low, high, expected):
    assert readings.direction(low, high) == expected


def test_direction_against_another_null():
    assert readings.direction(0.55, 0.7, null=0.5) == 1
    assert readings.direction(0.3, 0.45, null=0.5) == -1
    assert readings.direction(0.45, 0.55, null=0.5) == 0


def test_compare_names_the_winner_only_when_the_interval_excludes_zero():
    assert readings.compare("PLM-CA", "the frequency prior", 0.21, 0.18, 0.24, "micro F1") == (
        "PLM-CA beat the frequency prior by 0.210 micro F1 (95% CI 0.180 to 0.240).")
    assert readings.compare("PLM-CA", "the TF-IDF baseline", -0.05, -0.08, -0.02, "micro F1") == (
        "The TF-IDF baseline beat PLM-CA by 0.050 micro F1 (difference -0.050, 95% CI -0.080 "
        "to -0.020).")
    tied = readings.compare("PLM-CA", "the dictionary", 0.01, -0.02, 0.04, "MAP")
    assert tied == ("The data cannot tell PLM-CA and the dictionary apart on MAP (difference "
                    "0.010, 95% CI -0.020 to 0.040, which includes no difference).")
    assert "cannot tell which" in readings.compare("a", "b", 0.1, NAN, NAN, "F1")
    assert readings.compare("a", "b", NAN, NAN, NAN, "F1") == (
        "The F1 of a and b cannot be compared here.")


def test_against_a_reference_value():
    assert readings.against("Ours", 0.64, 0.55, 0.72, 0.5, "the study's") == (
        "Ours, 64.0% (95% CI 55.0% to 72.0%), is above the study's (50.0%).")
    assert "is below" in readings.against("Ours", 0.3, 0.2, 0.4, 0.5, "the study's")
    assert "consistent with" in readings.against("Ours", 0.45, 0.3, 0.6, 0.5, "the study's")
    assert readings.against("ours", NAN, NAN, NAN, 0.5, "the study's").startswith(
        "Ours cannot be computed")
    assert readings.against("ours", 0.4, 0.3, 0.5, NAN, "the study").endswith("has no value.")


def test_association_rises_falls_or_cannot_tell():
    assert readings.association("department F1", "the secondary share", -0.4, -0.6, -0.2,
                                "unit", ".2f") == (
        "Department F1 falls as the secondary share rises (-0.40 per unit, 95% CI -0.60 to "
        "-0.20).")
    assert readings.association("F1", "frequency", 0.1, 0.05, 0.2).startswith("F1 rises with")
    assert readings.association("F1", "x", 0.1, -0.05, 0.2).startswith("The data cannot tell")
    assert "without an interval" in readings.association("F1", "x", 0.1, NAN, NAN)
    assert "cannot be estimated" in readings.association("F1", "x", NAN, NAN, NAN)


def test_majority_is_judged_against_one_half():
    assert readings.majority("the flagged cases", 0.8, 0.7, 0.9) == (
        "Most of the flagged cases are real: 80% (95% CI 70% to 90%).")
    assert "false alarms" in readings.majority("the flagged cases", 0.2, 0.1, 0.3)
    assert "cannot tell" in readings.majority("the flagged cases", 0.5, 0.3, 0.7)
    assert "no cases" in readings.majority("the flagged cases", NAN, NAN, NAN)


def test_points_and_number_formatters():
    assert readings.points(-0.052) == "-5.2 points"
    assert readings.number(".1%")(0.213) == "21.3%"


def test_glue_stores_the_text_for_myst_nb_without_showing_it():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from medcoding import readings\nreadings.glue('headline', 'PLM-CA beat the prior.')")])
    NotebookClient(notebook, kernel_name="python3").execute()
    (output,) = notebook.cells[0].outputs
    assert output["metadata"]["scrapbook"]["name"] == "headline"
    assert output["data"]["application/papermill.record/text/plain"] == (
        "'PLM-CA beat the prior.'")
    assert not any(key.startswith("text/") for key in output["data"])
