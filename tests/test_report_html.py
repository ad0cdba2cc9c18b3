"""write_reports: report.json, report.md and a self-contained report.html with embedded figures."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from report_data import ARTIST20, ablation_dataset, multi_dataset_results, timbre_sample
from singerid.errors import ArtefactError, ParameterError
from singerid.evaluation import EvaluationResults, TimbreSample, validate_report, write_reports
from singerid.evaluation.figures import sample_timbre, singer_styles
from singerid.evaluation.report_html import html_table, render_html
from singerid.evaluation.report_md import ABLATION_SECTION
from singerid.evaluation.summary import summarise, summarise_dataset
from singerid.evaluation.tables import ablation_table

SYNTHETIC = tuple(f"singer{i:02d}" for i in range(6))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports") / "out"
    paths = write_reports(multi_dataset_results(), out, timbre=[timbre_sample("synthetic", SYNTHETIC, per_singer=20)])
    return out, paths


def test_all_three_reports_are_written_atomically(written):
    out, paths = written
    assert (paths.json, paths.markdown, paths.html) == (out / "report.json", out / "report.md", out / "report.html")
    assert sorted(p.name for p in out.iterdir()) == ["predictions", "report.html", "report.json", "report.md"]
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # no temp files
    validate_report(json.loads(paths.json.read_text()))
    assert paths.markdown.read_text().startswith("# singerid evaluation report")


def test_html_is_one_self_contained_file_with_embedded_pngs(written):
    text = written[1].html.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)
    assert "<script" not in text and "<link" not in text and "url(" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    # song-level confusions (artist20: 5 methods; synthetic: 5 + voice, voice-knn, ge2e-knn, voice-knn-clean,
    # none for the ablation methods) + attcrnn-knn block level + K curve + F1 bars each; 1 timbre map
    assert len(sources) == (5 + 1 + 1 + 1) + (9 + 1 + 1 + 1) + 1
    for src in sources:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)


def test_html_has_the_tables_figures_and_the_failed_dataset(written):
    text = written[1].html.read_text(encoding="utf-8")
    assert '<th colspan="3">Accuracy</th><th colspan="3">Precision</th>' in text
    assert "<td>Attention-CRNN-KNN</td><td>paper</td><td>0.99</td><td>0.74</td><td>–</td>" in text
    assert "Dataset failed: singer32: /data/singer32 matches no known layout" in text
    assert "block-level confusion matrix of Attention-CRNN-KNN, as the paper&#x27;s Fig. 3" in text
    assert "synthetic: timbre map of singers" in text
    assert "Per-singer F1 — artist20" in text and "Accuracy vs K — artist20" in text
    assert "song-level confusion matrix of Voice-AttCRNN-KNN (ours)" in text
    assert "confusion matrix of - separation" not in text  # ablation methods: their table only


def test_a_file_in_the_way_of_the_report_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("not a directory")
    with pytest.raises(ArtefactError, match=r"cannot create report directory '.*taken/out'"):
        write_reports(multi_dataset_results(), blocker / "out", timbre=None)


def test_timbre_sample_is_capped_seeded_and_covers_every_singer():
    sample = timbre_sample("artist20", ARTIST20, per_singer=40)
    small = TimbreSample(dataset="artist20", embeddings=sample.embeddings * 3.0, singers=sample.singers,
                         max_points=100, seed=5)
    emb, singers = sample_timbre(small)
    assert emb.shape == (100, 32) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert sorted(set(singers.tolist())) == sorted(ARTIST20)  # 5 per singer
    again, _ = sample_timbre(small)
    assert np.array_equal(emb, again)


def test_timbre_sample_refuses_bad_input():
    with pytest.raises(ParameterError, match=r"\(n >= 3, d >= 2\), got shape \(2, 4\)"):
        TimbreSample("a", np.zeros((2, 4)), ["x", "y"])
    with pytest.raises(ParameterError, match=r"4 timbre embeddings but 3 singer labels"):
        TimbreSample("a", np.zeros((4, 4)), ["x", "y", "z"])
    with pytest.raises(ParameterError, match="NaN or infinite"):
        TimbreSample("a", np.full((4, 4), np.nan), ["x"] * 4)


def test_twenty_singers_get_twenty_different_colours_and_sixty_distinct_styles():
    assert len({colour for colour, _ in singer_styles(20)}) == 20
    assert len(set(singer_styles(60))) == 60


def test_timbre_map_is_a_png(tmp_path: Path):
    from singerid.evaluation.figures import timbre_map_png

    png = timbre_map_png(timbre_sample("synthetic", SYNTHETIC, per_singer=15))
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000


def test_ablation_table_in_html_escapes_names_and_caption():
    ds = ablation_dataset({"voice-knn": {0: 16, 1: 18}, "voice-no-separation-knn": {0: 12, 1: 10}},
                          split_rule="album split <4/1/1> & co")
    text = html_table(ablation_table(summarise_dataset(ds)))
    assert "<caption>synthetic, song level" in text and "album split &lt;4/1/1&gt; &amp; co, seeds 0, 1." in text
    assert "<4/1/1>" not in text
    assert ('<th colspan="2"></th><th colspan="2">Song</th><th colspan="1">Block</th><th colspan="2"></th>'
            in text)
    assert ('<tr class="ours"><td>- separation (mix input)</td><td>voice-no-separation-knn</td><td>0.55 ± 0.05</td>'
            in text)
    assert text.count("<tr class=") == 2 and "<td>-0.30</td></tr>" in text


def test_html_shows_the_ablation_table_after_the_main_tables(written):
    text = written[1].html.read_text(encoding="utf-8")
    assert text.index("Table 2b — block level") < text.index(f"<h2>{ABLATION_SECTION}</h2>") \
        < text.index("<h3>Ablation — synthetic</h3>") < text.index("<h2>artist20</h2>")
    assert "<td>Voice-AttCRNN-KNN (all levers)</td><td>voice-knn</td>" in text
    assert "Ablation — artist20" not in text


def test_html_has_no_ablation_section_when_no_ablation_ran():
    results = EvaluationResults(datasets=(ablation_dataset({"voice-knn": {0: 16, 1: 18}}),))
    text = render_html(results, summarise(results))
    assert "Voice-AttCRNN-KNN (ours)" in text and ABLATION_SECTION not in text


# --- polish: our numbers first, confusion grid, per-song links, labelled figures ------------------------

def test_confusion_matrices_sit_in_a_grid_per_dataset(written):
    text = written[1].html.read_text(encoding="utf-8")
    for key, n in (("artist20", 5 + 1), ("synthetic", 9 + 1)):  # song level per method + attcrnn-knn block level
        start = text.index(f"<h3>Confusion matrices — {key}</h3>")
        grid = text[start:text.index("</div>", start)]
        assert grid.count("<figure>") == n and '<div class="grid">' in grid
        assert len(re.findall(r"<figcaption>[^<]*confusion matrix of", grid)) == n


def test_per_song_links_point_at_the_written_csvs(written):
    out, paths = written
    text = paths.html.read_text(encoding="utf-8")
    hrefs = re.findall(r'<a href="([^"]+)">', text)
    assert hrefs and all((out / href).is_file() for href in hrefs)
    assert "predictions/artist20/seed-21/attcrnn-knn.csv" in hrefs
    assert "<h3>Per-song predictions — artist20</h3>" in text and "<td>✓</td>" in text
    # the ablation methods stay out of the per-song table but keep their CSVs
    assert "predictions/synthetic/seed-1/voice-no-remix-knn.csv" in hrefs
    table = text[text.index("<h3>Per-song predictions — synthetic</h3>"):]
    table = table[:table.index("</table>")]
    assert "- shuffle-and-remix" not in table.split("<table>")[1]


def test_timbre_map_is_labelled_as_test_blocks(written):
    text = written[1].html.read_text(encoding="utf-8")
    assert "synthetic: timbre map of singers — each point is one 1-s test block" in text


def test_without_a_paper_dataset_the_page_leads_with_our_numbers():
    results = EvaluationResults(datasets=(ablation_dataset({"voice-knn": {0: 16, 1: 18}}),))
    text = render_html(results, summarise(results))
    headings = re.findall(r"<h2>(.*?)</h2>", text)
    assert headings[:4] == ["Song level — synthetic", "Block level — synthetic",
                            "Do the deep models beat the simple baseline?", "How to read this"]
    assert "Table 1" not in "".join(headings) and "A20" not in text
