"""AttInGrad and its baselines on a real (tiny, trained) PLM-CA: definition, words, faithfulness."""

from __future__ import annotations

import html
import re
import time

import explain_fixture as fx
import numpy as np
import pandas as pd
import pytest
import torch

from medcoding import explain
from medcoding.explain import case as explain_case
from medcoding.model import PLMCA


@pytest.fixture(scope="module", autouse=True)
def tiny_model_threads():
    with fx.one_thread():
        yield


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return fx.model_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return fx.prepared_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def model_and_tokenizer(model_dir):
    model = PLMCA.from_pretrained(model_dir)
    return model, model.tokenizer


@pytest.fixture(scope="module")
def coder(model_dir):
    from medcoding.predict import Coder

    return Coder.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def test_split(prepared):
    return pd.read_parquet(prepared / "test.parquet")


def top_word(explanation, code):
    words = explanation_words(explanation, code)
    return words.sort_values("score", ascending=False, kind="stable")["word"].iloc[0]


def explanation_words(explanation, code):
    return explain.word_attributions(explanation, code)


def test_word_spans_split_words_and_punctuation():
    text = "30-40 tablets of 500mg; suicidal."
    spans = explain.word_spans(text)
    assert [text[s:e] for s, e in spans] == ["30", "-", "40", "tablets", "of", "500mg", ";",
                                             "suicidal", "."]


@pytest.mark.parametrize("method", explain.METHODS)
def test_token_scores_are_a_distribution_over_real_tokens(model_and_tokenizer, method):
    model, tokenizer = model_and_tokenizer
    text = "suicidal intent after paracetamol tablets, seen on the ward today"
    result = explain.attingrad(model, tokenizer, text, ["X60", "T39"], labels=fx.LABELS,
                               method=method)
    n_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert result.token_scores.shape == (2, n_tokens)
    assert (result.token_scores >= 0).all()
    np.testing.assert_allclose(result.token_scores.sum(axis=1), 1.0, atol=1e-9)
    words = explain.word_attributions(result, "X60")
    assert list(words.columns) == ["start", "end", "word", "score"]
    assert words["score"].sum() == pytest.approx(1.0, abs=1e-9)


def test_attingrad_is_attention_times_input_gradient_norm(model_and_tokenizer):
    """Recompute the definition independently: one batched backward over copies of the input."""
    model, tokenizer = model_and_tokenizer
    text = "metformin t2dm hypertension amlodipine stable ward review " * 40  # three windows
    codes = ["E11", "I10", "X60"]
    indices = [fx.LABELS.index(code) for code in codes]
    encoded = explain.encode(tokenizer, text)
    assert encoded.input_ids.shape[1] == 3
    n_tokens = len(encoded.spans)
    copies = encoded.input_ids.expand(len(codes), -1, -1)  # [codes, chunks, 128]
    masks = encoded.attention_mask.expand(len(codes), -1, -1)
    embeddings = model.input_embeddings()(copies).detach().requires_grad_(True)
    logits, attention = model(copies, masks, inputs_embeds=embeddings, return_attention=True)
    logits[torch.arange(len(codes)), indices].sum().backward()
    norms = (embeddings * embeddings.grad).flatten(1, 2).norm(dim=-1)[:, :n_tokens]
    weights = attention[torch.arange(len(codes)), indices, :n_tokens]
    expected = (weights * norms).detach().double().numpy()
    expected /= expected.sum(axis=1, keepdims=True)
    result = explain.attingrad(model, tokenizer, text, codes, labels=fx.LABELS)
    np.testing.assert_allclose(result.token_scores, expected, rtol=1e-4, atol=1e-8)
    gradient = explain.attingrad(model, tokenizer, text, codes, labels=fx.LABELS,
                                 method="gradient")
    gradient_expected = norms.detach().double().numpy()
    gradient_expected /= gradient_expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(gradient.token_scores, gradient_expected, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(result.scores, torch.sigmoid(logits[0, indices]).detach().numpy(),
                               rtol=1e-5)


def test_codes_explained_together_equal_codes_explained_alone(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    text = "paracetamol tablets suicidal intent furosemide ejection noted"
    together = explain.attingrad(model, tokenizer, text, ["X60", "I50"], labels=fx.LABELS)
    for code in ("X60", "I50"):
        alone = explain.attingrad(model, tokenizer, text, code, labels=fx.LABELS)
        np.testing.assert_allclose(together.token_scores[together.row(code)],
                                   alone.token_scores[0], rtol=1e-6)


def test_trigger_words_get_the_top_attribution(model_and_tokenizer, test_split):
    """On the fixture each code has two trigger words: AttInGrad should put one of them first."""
    model, tokenizer = model_and_tokenizer
    hits = {method: [] for method in explain.METHODS}
    for row in test_split.itertuples():
        codes = list(row.true_l3)
        encoded = explain.encode(tokenizer, row.text)
        indices = [fx.LABELS.index(code) for code in codes]
        _, raw = explain.token_attributions(model, encoded, indices)
        words = explain.word_spans(row.text)
        for method, scores in raw.items():
            per_word = explain.word_scores(encoded.spans, scores, words)  # [codes, words]
            for code, best in zip(codes, per_word.argmax(axis=1), strict=True):
                hits[method].append(row.text[slice(*words[best])] in fx.TRIGGERS[code])
    rates = {method: float(np.mean(values)) for method, values in hits.items()}
    assert rates["attingrad"] >= 0.8, rates
    assert rates["attingrad"] >= rates["attention"] - 0.05, rates


def test_a_word_split_across_two_windows_is_one_word(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    long_word = "paracetamoltablets"
    assert len(tokenizer.tokenize(long_word)) >= 2
    assert len(tokenizer.tokenize("ward")) == 1
    text = "ward " * 127 + long_word + " tablets"
    result = explain.attingrad(model, tokenizer, text, "T39", labels=fx.LABELS)
    start = text.index(long_word)
    inside = np.flatnonzero((result.token_spans[:, 0] >= start)
                            & (result.token_spans[:, 1] <= start + len(long_word)))
    assert inside[0] == 127 and inside[-1] >= 128  # pieces in window 1 and window 2
    words = explain.word_attributions(result)
    row = words[words["word"] == long_word]
    assert len(row) == 1 and (row["start"].item(), row["end"].item()) == (start,
                                                                          start + len(long_word))
    assert row["score"].item() == pytest.approx(result.token_scores[0, inside].sum(), rel=1e-12)
    assert len(words) == 129 and words["score"].sum() == pytest.approx(1.0)


def test_windows_hold_the_same_tokens_the_coder_scores(model_and_tokenizer):
    from medcoding.encoding import chunk_tokens, encode_texts

    _, tokenizer = model_and_tokenizer
    text = "Naïve café: 30-40 paracetamol tablets!\n\tsuicidal   intent " * 30
    encoded = explain.encode(tokenizer, text, max_tokens=200)
    (expected,) = encode_texts(tokenizer, [text], max_tokens=200)
    windows = chunk_tokens(expected, pad_id=tokenizer.pad_token_id)
    np.testing.assert_array_equal(encoded.input_ids[0].numpy(), windows)
    assert len(encoded.spans) == len(expected) == 200
    assert int(encoded.attention_mask.sum()) == 200


def test_unknown_code_and_method_give_clear_errors(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    with pytest.raises(KeyError, match="not one of the model's 7 labels"):
        explain.attingrad(model, tokenizer, "text", "Q99", labels=fx.LABELS)
    with pytest.raises(ValueError, match="unknown explanation method 'saliency'"):
        explain.attingrad(model, tokenizer, "text", "X60", labels=fx.LABELS, method="saliency")
    with pytest.raises(ValueError, match="no tokens"):
        explain.attingrad(model, tokenizer, "  ", "X60", labels=fx.LABELS)


def gallery_frame() -> pd.DataFrame:
    """Four cases, one per gallery kind, plus decoys that must not be picked."""
    rows = [
        ("S1", ["T39"], ["T39.0", "X60.0"], ["listed", "listed"]),  # under-coded suicide
        ("S2", ["T39", "X60"], ["T39.0", "X60.0"], ["listed", "listed"]),  # coded: decoy
        ("H1", ["J18"], ["J18.9", "I10"], ["listed", "drug"]),  # hypertension via drugs
        ("H2", ["J18"], ["J18.9", "I10"], ["listed", "listed"]),  # explicit: decoy
        ("D1", ["E14"], ["E11.9"], ["listed"]),  # E14/E11 disagreement
        ("D2", ["E14"], ["E11.9"], ["listed"]),  # second candidate, lower E11 score
        ("F1", ["I50", "I21"], ["I21.0", "I50.9"], ["listed", "undocumented"]),  # no evidence
    ]
    return pd.DataFrame({
        "course_id": [r[0] for r in rows], "codes_l3": [r[1] for r in rows],
        "true_full": [r[2] for r in rows], "true_evidence": [r[3] for r in rows],
    })


def test_select_gallery_cases_picks_one_case_per_kind():
    frame = gallery_frame()
    labels = ["E11", "I10", "I50", "X60"]
    scores = np.full((len(frame), len(labels)), 0.1)
    scores[4, 0], scores[5, 0] = 0.4, 0.9  # D2 is the case the model is surest of
    gallery = explain.select_gallery_cases(frame, scores, labels)
    assert gallery["kind"].tolist() == list(explain.GALLERY_KINDS)
    assert gallery["course_id"].tolist() == ["S1", "H1", "D2", "F1"]
    assert gallery["code"].tolist() == ["X60", "I10", "E11", "I50"]
    assert gallery["candidates"].tolist() == [1, 1, 2, 1]
    assert gallery["score"].tolist() == pytest.approx([0.1, 0.1, 0.9, 0.1])
    numbered = frame.assign(course_id=np.arange(len(frame)) + 2202)
    ids = explain.select_gallery_cases(numbered.iloc[2:4], scores[2:4], labels)["course_id"]
    assert ids.tolist() == [None, 2204, None, None]  # integer ids stay integers beside None
    small = explain.select_gallery_cases(frame.iloc[2:4], scores[2:4], labels)
    assert small["course_id"].isna().tolist() == [True, False, True, True]
    assert small["candidates"].tolist() == [0, 1, 0, 0]
    two = explain.select_gallery_cases(frame, scores, labels, size=2)
    assert two["course_id"].tolist() == ["S1", "H1"]
    six = explain.select_gallery_cases(frame, scores, labels, size=6, seed=0)
    assert six["kind"].tolist()[4:] == ["random", "random"]
    assert set(six["course_id"][4:]) <= {"S2", "H2", "D1"}
    assert six["code"].tolist()[4:] == ["E11", "E11"]  # ties: the first label
    with_missing = explain.select_gallery_cases(frame.iloc[2:4], scores[2:4], labels, size=2)
    assert with_missing["kind"].tolist() == [*explain.GALLERY_KINDS, "random"]
    assert with_missing["course_id"].notna().sum() == 2
    with pytest.raises(ValueError, match=r"expected \(7, 4\)"):
        explain.select_gallery_cases(frame, scores[:, :2], labels)


def test_gallery_pool_keeps_candidates_only_and_is_seeded():
    frame = gallery_frame()
    pool = explain.gallery_pool(frame, per_kind=1, seed=3)
    assert set(pool["course_id"]) <= {"S1", "H1", "D1", "D2", "F1"}
    assert {"S1", "H1", "F1"} <= set(pool["course_id"]) and len(pool) == 4
    assert explain.gallery_pool(frame, per_kind=1, seed=3).equals(pool)
    assert explain.gallery_pool(frame.drop(columns=["true_full"])).empty


def test_a_case_is_real_unless_said_synthetic(coder, test_split):
    from medcoding.explorer import render_page

    row = test_split.iloc[0]
    case = explain.build_case(coder, row, top_k=2)
    assert case["synthetic"] is False and case["true_codes"] == []
    assert html.escape(row["text"]) not in render_page(case)


def test_comprehensiveness_top_words_beat_random_words(coder, test_split):
    """Each fixture code has two trigger words: deleting the top two removes the evidence."""
    cases = test_split.head(12)
    texts = cases["text"].tolist()
    scores = coder.score(cases)
    codes = [coder.labels[int(index)] for index in np.argmax(scores, axis=1)]
    summary = explain.comprehensiveness(coder, texts, codes, ks=(1, 2), seed=0)
    assert list(summary.columns) == ["method", "k", "mean_score_drop", "sem", "n_cases"]
    assert set(summary["method"]) == {*explain.METHODS, "random"}
    assert (summary["n_cases"] == len(texts)).all()
    drop = summary.set_index(["method", "k"])["mean_score_drop"]
    for method in explain.METHODS:
        assert drop[(method, 2)] > drop[("random", 2)] + 0.3, summary
        assert drop[(method, 2)] >= drop[(method, 1)] - 1e-6, summary
    again = explain.comprehensiveness(coder, texts, codes, ks=(1, 2), seed=0)
    pd.testing.assert_frame_equal(summary, again)
    cases_frame = explain.comprehensiveness(coder, texts[:2], codes[:2], ks=(1,),
                                            method="attingrad", per_case=True)
    assert cases_frame["method"].tolist() == ["attingrad", "random"] * 2
    np.testing.assert_allclose(cases_frame["score_drop"],
                               cases_frame["score"] - cases_frame["score_deleted"])


def test_build_case_lists_predicted_human_and_true_codes(coder, test_split):
    row = test_split[test_split["true_l3"].map(lambda codes: "X60" in codes)
                     & ~test_split["codes_l3"].map(lambda codes: "X60" in codes)].iloc[0]
    case = explain.build_case(coder, row, top_k=3, synthetic=True)
    by_code = {entry["code"]: entry for entry in case["codes"]}
    assert set(row["true_l3"]) <= set(by_code) and set(row["codes_l3"]) <= set(by_code)
    assert len(by_code) == len(case["codes"])  # each code listed once
    assert by_code["X60"]["true"] and not by_code["X60"]["human"]
    words = [row["text"][s:e] for s, e in case["words"]]
    strongest = [words[index] for index, intensity in by_code["X60"]["attributions"]
                 if intensity == 1.0]
    assert strongest[0] in fx.TRIGGERS["X60"]
    ranks = [entry["rank"] for entry in case["codes"]]
    assert ranks[:3] == [1, 2, 3] and ranks == sorted(ranks)
    assert all(0 <= entry["score"] <= 1 for entry in case["codes"])


def test_cli_writes_a_page_and_withholds_real_text(coder, model_dir, tmp_path, capsys):
    real = fx.write_prepared(tmp_path / "real", n_train=4, n_test=4, synthetic=False)
    row = pd.read_parquet(real / "test.parquet").iloc[0]
    out = tmp_path / "page.html"
    assert explain.main(["--model", str(model_dir), "--case", row["course_id"], "--prepared",
                         str(real), "--out", str(out), "--top-k", "3"]) == 0
    assert "note text withheld" in capsys.readouterr().out
    raw = out.read_bytes()
    assert row["text"].encode() not in raw
    assert not any(f">{word}<".encode() in raw for word in row["text"].split())
    assert row["course_id"].encode() in raw
    assert explain.main(["--model", str(model_dir), "--case", row["course_id"], "--prepared",
                         str(real), "--out", str(out), "--include-text"]) == 0
    note = re.search(r'<div id="note-text"[^>]*>(.*?)</div>', out.read_text(), re.S).group(1)
    assert html.unescape(re.sub(r"<[^>]+>", "", note)) == row["text"]


@pytest.mark.slow
def test_a_course_explains_in_seconds_with_minilm():
    """MiniLM encoder (random label attention), a course of the median length, 12 codes."""
    from medcoding.encoding import load_encoder_and_tokenizer
    from medcoding.model import PLMCA, PLMCAConfig

    encoder, tokenizer = load_encoder_and_tokenizer("minilm")
    config = PLMCAConfig(encoder=encoder.config.to_dict(),
                         id2label={index: f"L{index}" for index in range(50)},
                         pad_token_id=tokenizer.pad_token_id)
    model = PLMCA(config, encoder=encoder).eval()
    rng = np.random.default_rng(0)
    text = " ".join(rng.choice(fx.FILLER + ["paracetamol", "metformin"], size=300))[:1_500]
    started = time.perf_counter()
    result = explain.attingrad(model, tokenizer, text, list(range(12)))
    seconds = time.perf_counter() - started
    assert result.token_scores.shape[0] == 12
    assert seconds < 30, f"{seconds:.1f} s for 12 codes of a 1,500-character course"


def test_codes_map_to_the_model_labels_at_its_level():
    assert explain_case.label_for("X60.0", ["T39", "X60"]) == "X60"
    assert explain_case.label_for("X60", ["X60.0", "X60.9"]) == "X60.0"
    assert explain_case.label_for("I10", ["I10", "I50.0"]) == "I10"
    assert explain_case.label_for("Q99.1", ["I10"]) is None
    row = {"codes_full": ["E14.9"], "codes_l3": ["E14"], "true_full": ["E11.9", "I10"]}
    labels = ["E11.9", "E14.9", "I10"]
    assert explain_case._case_codes(row, labels, "codes", "full") == ["E14.9"]
    assert explain_case._case_codes(row, labels, "true", "full") == ["E11.9", "I10"]
    assert explain_case._case_codes(row, ["E11", "E14"], "codes", "3") == ["E14"]


def faithfulness_table(drops: dict[str, float], sem: float) -> pd.DataFrame:
    """A comprehensiveness table at k = 1 and 5 (only k = 5 is read), one row per method."""
    rows = [{"method": method, "k": k, "mean_score_drop": drop * k / 5, "sem": sem}
            for method, drop in drops.items() for k in (1, 5)]
    return pd.DataFrame(rows)


def test_the_faithfulness_reading_states_a_direction_only_when_the_interval_allows():
    close = faithfulness_table({"attingrad": 0.30, "attention": 0.28, "gradient": 0.25,
                                "random": 0.05}, sem=0.06)
    reading = explain.faithfulness_reading(close, 30)
    assert reading.startswith("Deleting the 5 words each method ranks highest lowers the model's "
                              "score for its top code by 0.300 on average with AttInGrad, 0.280 "
                              "with attention alone and 0.250 with the input gradient alone, "
                              "against 0.050 for 5 random words (30 courses). The highlighted")
    # 0.25 +- 1.96 * hypot(0.06, 0.06) = 0.25 +- 0.166; 0.30 - 0.28 = 0.02 +- 0.166 holds 0
    assert "(AttInGrad minus random: 0.250 (95% CI 0.084 to 0.416))" in reading
    assert reading.endswith("the data cannot tell the three methods apart (the interval of the "
                            "difference between the two most faithful holds 0).")
    apart = faithfulness_table({"attingrad": 0.30, "attention": 0.10, "gradient": 0.25,
                                "random": 0.05}, sem=0.01)  # 0.05 +- 0.028 excludes 0
    assert explain.faithfulness_reading(apart, 30).endswith(
        "the most faithful of the three here is attingrad.")
    level = faithfulness_table({"attingrad": 0.04, "attention": 0.1, "gradient": 0.0,
                                "random": 0.05}, sem=0.01)  # -0.01 +- 0.028 holds 0
    assert "the data cannot tell the highlighted words from random ones" in \
        explain.faithfulness_reading(level, 30)
    nothing = faithfulness_table({"attingrad": 0.0, "attention": 0.0, "gradient": 0.0,
                                  "random": 0.0}, sem=0.0)  # an untrained model: every drop 0
    assert "cannot tell the highlighted words from random ones" in \
        explain.faithfulness_reading(nothing, 30)
    worse = faithfulness_table({"attingrad": 0.0, "attention": 0.1, "gradient": 0.0,
                                "random": 0.1}, sem=0.01)
    assert "matter less than random ones (AttInGrad minus random: -0.100" in \
        explain.faithfulness_reading(worse, 30)


def test_faithfulness_courses_are_a_seeded_sorted_sample():
    picked = explain.sample_courses(100, 30, seed=1)
    assert len(set(picked)) == 30 and (np.diff(picked) > 0).all() and picked.max() < 100
    assert (picked == explain.sample_courses(100, 30, seed=1)).all()
    assert explain.sample_courses(5, 30, seed=1).tolist() == [0, 1, 2, 3, 4]


def test_the_gallery_reading_names_the_kinds_with_a_page():
    gallery = pd.DataFrame({"course_id": ["c1", None, "c7"],
                            "description": ["missed suicide attempt: the coder missed it",
                                            "metformin only: none", "buried diabetes type: x"]})
    assert explain.gallery_reading(gallery) == (
        "The gallery shows 2 course(s): missed suicide attempt, buried diabetes type. ")
    assert explain.gallery_reading(gallery.iloc[[1]]) == (
        "No gallery kind occurs in this test set. ")
