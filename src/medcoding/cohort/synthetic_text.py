"""Pre-rendered pieces of synthetic clinical English, and cheap assembly of notes from them.

Notes are built by joining ready-made strings (no per-token work), so a million courses take
minutes. Routine sentences (:data:`FILLER`) carry no diagnostic content; their number per course
sets the note length. Diagnosis sentences are templates with one ``{name}`` slot.
"""

from __future__ import annotations

import itertools

NOTE_TITLES = {
    "discharge_summary": "DISCHARGE SUMMARY",
    "admission_note": "ADMISSION NOTE",
    "progress_note": "PROGRESS NOTE",
}

ACUTE_PRESENTATION = (
    "Admitted acutely with {name}.",
    "Referred by the general practitioner with {name}.",
    "Presented to the hospital with {name}.",
    "Admitted because of {name}.",
)
PLANNED_PRESENTATION = (
    "Planned admission for treatment of known {name}.",
    "Elective admission; referred with established {name}.",
    "Planned outpatient course for {name}, diagnosis established before referral.",
)
UNCERTAIN_PRESENTATION = (
    "Admitted with suspected {name}; differential diagnosis {other}.",
    "Possible {name}, but {other} could not be excluded.",
    "Working diagnosis {name}; {other} considered as an alternative.",
)
DIAGNOSIS_LINE = (
    "Discharge diagnosis: {title}.",
    "Main diagnosis: {title}.",
    "Diagnosis: {title}.",
)
UNCERTAIN_DIAGNOSIS_LINE = (
    "Working diagnosis (not confirmed): {title}.",
    "Provisional diagnosis: {title}; results pending.",
)
HISTORY_LINE = (
    "Known with {names}.",
    "Medical history: {names}.",
    "Comorbidities: {names}.",
    "Previously diagnosed with {names}.",
)
SELF_HARM_LINE = (
    "Brought in after the patient {method} {intent}.",
    "Admitted after the patient {method} {intent}.",
    "The patient {method} {intent} and was brought to the hospital by ambulance.",
)
ACCIDENTAL_LINE = (
    "Admitted after the patient {method} by mistake; denies suicidal intent.",
    "The patient {method} accidentally, confused about the dosing; no suicidal intent.",
)
SELF_HARM_FOLLOWUP = (
    "Psychiatric assessment performed after the suicide attempt.",
    "Seen by the psychiatric liaison team because of the self-harm episode.",
    "Suicide risk assessment done before discharge.",
)
GENERIC_DIABETES = (
    "Diabetes: blood glucose measured four times daily.",
    "The diabetes was well regulated during the admission.",
    "Continue the current diabetes treatment.",
    "Diabetes nurse consulted regarding foot care.",
    "Diabetes control discussed with the patient.",
)
BURIED_DIABETES = (
    "Of note, the patient has had {name} since 2009, followed by the general practitioner.",
    "Background: {name} diagnosed many years ago.",
)
PLAN_LINES = (
    "Follow-up in the outpatient clinic in three months.",
    "Discharged to own home; follow-up by the general practitioner.",
    "Control visit in six weeks.",
    "No further follow-up planned at the department.",
    "Discharged to the municipal care facility.",
)

_ROUTINE = (
    "Vital signs stable, temperature {t} C.",
    "Pulse {p} and regular, saturation {s}% on room air.",
    "Mobilised with the physiotherapist, walked {m} metres.",
    "Slept well during the night; eating and drinking {food}.",
    "Pain score {pain} at rest, adequately covered by the analgesic plan.",
    "Blood tests taken {when}; results reviewed at the round.",
    "Seen by the {who} today.",
    "Family informed about the plan by {how}.",
    "Nutritional screening performed, score {pain}.",
    "Peripheral venous catheter {pvc}.",
    "Fluid balance {fluid}.",
    "The patient is {mood} and oriented in time and place.",
    "Urine output adequate, {ml} mL over the last 24 hours.",
    "Skin intact, pressure areas checked {when}.",
    "Medication reconciled with the shared medication record {when}.",
    "Round with the consultant; the plan was discussed with the patient.",
    "Occupational therapist assessed daily activities; independent in {adl}.",
    "Social worker contacted regarding {social}.",
)
_VALUES = {
    "t": ("36.6", "36.9", "37.1", "37.4"), "p": ("64", "72", "81", "88"),
    "s": ("95", "96", "97", "98"), "m": ("20", "50", "100", "150"),
    "food": ("normally", "sparingly", "well"), "pain": ("1", "2", "3"),
    "when": ("this morning", "yesterday", "at admission"),
    "who": ("physiotherapist", "dietitian", "ward doctor", "nurse specialist"),
    "how": ("telephone", "a meeting at the ward"),
    "pvc": ("removed", "in situ, without signs of infection", "replaced"),
    "fluid": ("balanced", "positive by 500 mL", "negative by 300 mL"),
    "mood": ("calm", "cooperative", "slightly tired"), "ml": ("1200", "1600", "2100"),
    "adl": ("personal hygiene", "dressing", "meals"),
    "social": ("home care", "transport", "rehabilitation"),
}  # fmt: skip


def _render_routine(per_template: int = 12) -> tuple[str, ...]:
    """A fixed pool: each routine template rendered ``per_template`` times, cycling through the
    combinations of its slot values, so every template is equally common."""
    sentences = []
    for template in _ROUTINE:
        slots = [name for name in _VALUES if "{" + name + "}" in template]
        combos = itertools.cycle(itertools.product(*(_VALUES[name] for name in slots)))
        for combo in itertools.islice(combos, per_template):
            sentences.append(template.format(**dict(zip(slots, combo, strict=True))))
    return tuple(sentences)


FILLER: tuple[str, ...] = _render_routine()


def render_note(header: str | None, note_type: str, lines: list[str]) -> str:
    """One note: optional department header line, the note title, then its lines."""
    head = [header, NOTE_TITLES[note_type]] if header else [NOTE_TITLES[note_type]]
    return "\n".join(head + lines)


def join_names(names: list[str]) -> str:
    """``["HTN", "T2DM", "COPD"]`` -> ``"HTN, T2DM and COPD"``."""
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]
