"""The language resources: templates, names that avoid the ICD title, the surface-form bank."""

from __future__ import annotations

import random
import re
from collections import Counter

from medcoding import icd10
from medcoding.cohort.synthetic import SyntheticConfig, language


def test_template_alternatives_slots_and_nesting():
    template = "{Known|History of} {$name}{ since {$year}|}."
    seen = Counter(language.render(template, random.Random(i), {"name": "HTN", "year": "2004"})
                   for i in range(400))
    assert set(seen) == {"Known HTN since 2004.", "Known HTN.", "History of HTN since 2004.",
                         "History of HTN."}
    assert min(seen.values()) > 60  # each alternative about a quarter of the time
    assert language.render("{$Name} stable.", random.Random(0), {"name": "asthma"}) == \
        "Asthma stable."


def test_misspell_changes_one_word():
    r = random.Random(3)
    sentence = "Mobilised with the physiotherapist in the corridor"
    for _ in range(50):
        typo = language.misspell(sentence, r)
        changed = [a for a, b in zip(sentence.split(), typo.split(), strict=True) if a != b]
        assert len(changed) == 1 and len(changed[0]) >= 5


def test_derived_forms_never_hold_the_who_title():
    for category in ("K35", "H81", "J18", "D69", "M54", "L40", "G43"):
        titles = [t.lower() for t in language.titles(category)]
        forms = language.derived_forms(category)
        assert forms, category
        assert not any(t in f.lower() for f in forms for t in titles), (category, forms)


def test_the_title_is_a_rare_variant():
    config = SyntheticConfig()
    r = random.Random(1)
    names = [language.name("K35.8", r, config) for _ in range(4000)]
    title_share = sum(icd10.title("K35.8").lower() in n.lower() or
                      icd10.title("K35").lower() in n.lower() for n in names) / len(names)
    assert 0.02 < title_share < 0.07  # title_rate 0.04
    assert len(set(names)) >= 6
    r = random.Random(2)
    hypertension = Counter(language.name("I10", r, config) for _ in range(3000))
    assert hypertension["HTN"] > 200 and hypertension["Essential (primary) hypertension".lower()
                                                     [:1] + "ssential (primary) hypertension"] < 200


def test_surface_form_bank_is_lower_case_and_covers_every_way_of_naming():
    bank = language.surface_forms(["I10", "E11", "N18", "X60", "K35"])
    assert {"htn", "hypertension", "high blood pressure", "hypertention"} <= set(bank["I10"])
    assert {"t2dm", "type 2 diabetes", "niddm"} <= set(bank["E11"])
    assert {"ckd 3b", "chronic kidney disease"} <= set(bank["N18"])
    assert "suicide attempt" in bank["X60"]
    assert all(p == p.lower() for phrases in bank.values() for p in phrases)
    full = language.surface_forms()
    assert len(full) > 1400 and "I10" in full and "T39" in full


def test_derived_forms_read_as_running_text():
    from medcoding.cohort.synthetic.population import drawable_categories

    inverted = re.compile(r"^[A-Za-z]+, ")  # "sclerosis, multiple", "fracture, forearm"
    awkward = re.compile(r"\b(other|specified|unspecified)\b|^of |, of\b", re.I)
    for category in drawable_categories():
        forms = language.derived_forms(category)
        titles = [language._clean(t).lower() for t in language.titles(category)]
        if len(forms) == 1 and forms[0].lower() in titles:
            continue  # nothing better than the title: it stays the only form
        for form in forms:
            assert not inverted.search(form) and not awkward.search(form), (category, form)
    assert "multiple sclerosis" in language.derived_forms("G35")
