"""The HTML report, its study tables across suites, model cards, --metric, the corruption
error that fits the data set, and the page opened in a real headless Chromium."""
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from robust_transfer.corruptions import CORRUPTION_GROUPS
from robust_transfer.html_report import build_entries, expand_results_paths, load_documents, write_html_report
from robust_transfer.html_report.study_tables import study_tables
from robust_transfer.metrics import (ALEXNET_ERRORS, MCE_ALEXNET_LABEL, MEAN_CORRUPTION_ERROR_LABEL,
                                     corruption_error_for_dataset)
from robust_transfer.results import new_results, save_results, set_cell

TASKS = {  # task: (metrics with their clean values, metric scale, data set)
    "detection": ({"bbox_mAP": 0.40, "segm_mAP": 0.36, "bbox_mAP_50": 0.60}, 1.0, "coco_synthetic"),
    "segmentation": ({"mIoU": 42.0, "mAcc": 55.0}, 100.0, "ade20k_synthetic"),
    "classification": ({"top1": 90.0}, 100.0, "cifar10_synthetic"),
}
ROBUSTNESS = {"plain": 0.5, "noise_aug": 0.3}  # share of the clean score lost at severity 5


def results_of(task, backbone, mode, severities=range(1, 6)):
    """Results whose numbers follow from the arguments: value = clean * (1 - loss * s / 5), so
    mPC over severities 1..5 is clean * (1 - 0.6 * loss)."""
    clean, scale, dataset = TASKS[task]
    loss = ROBUSTNESS[backbone] * (0.8 if mode.endswith("+prime") else 1.0)
    r = new_results(task=task, model=f"{task}_{backbone}_{mode}", backbone=backbone,
                    transfer_mode=mode, metrics=list(clean), dataset=dataset, metric_scale=scale,
                    checkpoint_sha256="ab" * 32)
    set_cell(r, "clean", 0, clean)
    for corruption in CORRUPTION_GROUPS["benchmark"]:
        for s in severities:
            set_cell(r, corruption, s, {m: v * (1 - loss * s / 5) for m, v in clean.items()})
    return r


def write_demo_like_suites(root: Path) -> list[Path]:
    """Two suites' results folders, the demo's stand-ins in both modes and PRIME in one;
    classification has no noise_aug full-network model (a missing model)."""
    written = []
    for suite, modes in (("study", ("fixed-feature", "full-network")),
                         ("prime", ("full-network+prime",))):
        for task in TASKS:
            for backbone in ROBUSTNESS:
                for mode in modes:
                    if (task, backbone, mode) == ("classification", "noise_aug", "full-network"):
                        continue
                    path = root / suite / "results" / task / f"{backbone}__{mode}.json"
                    save_results(results_of(task, backbone, mode), path)
                    written.append(path)
    (root / "study" / "results" / "notes.json").write_text('{"not": "results"}')
    return written


class Tables(HTMLParser):
    """The study tables of a page: {(task, mode): {row label: [cell texts]}}."""

    def __init__(self):
        super().__init__()
        self.tables, self.current, self.row, self.text = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "study" in (attrs.get("class") or ""):
            self.current = self.tables.setdefault((attrs["data-task"], attrs["data-mode"]), {})
        elif tag == "tr" and self.current is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.text = ""

    def handle_data(self, data):
        if self.text is not None:
            self.text += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.text is not None:
            self.row.append(self.text.strip())
            self.text = None
        elif tag == "tr" and self.row is not None:
            if self.row and self.row[0]:
                self.current[self.row[0]] = self.row[1:]
            self.row = None
        elif tag == "table":
            self.current = None


def study_tables_of(html: str) -> dict:
    parser = Tables()
    parser.feed(html)
    return parser.tables


@pytest.fixture
def suites(tmp_path):
    write_demo_like_suites(tmp_path / "work_dirs")
    return tmp_path / "work_dirs"


def test_folders_expand_to_results_files_only(suites):
    paths = expand_results_paths([suites / "study" / "results", suites / "prime" / "results"])
    assert len(paths) == 3 * 2 * 2 - 1 + 3 * 2
    assert all(p.name.endswith(".json") and p.name != "notes.json" for p in paths)
    (suites / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no robust-transfer results"):
        expand_results_paths([suites / "empty"])
    with pytest.raises(ValueError, match="no such results file or folder"):
        expand_results_paths([suites / "missing.json"])


def test_combined_tables_show_missing_models_as_missing_never_zero(suites):
    entries, notes = build_entries(load_documents([suites]))
    tables, _ = study_tables(entries)
    by_task = {t.task: t for t in tables}
    assert list(by_task) == ["detection", "segmentation", "classification"]
    full = {g.title: g for g in by_task["classification"].modes}["full-network"]
    assert full.columns == ["noise_aug", "plain"]  # first seen (files in name order)
    rows = dict(full.rows)
    assert [n.text for n in rows["P"]] == ["—", "90.0"] and rows["mPC"][0].value is None
    # detection: P 40.0, mPC = 40 * (1 - 0.6 * loss): 32.8 for noise_aug, 28.0 for plain
    ff = dict({g.title: g for g in by_task["detection"].modes}["fixed-feature"].rows)
    assert [n.text for n in ff["mPC"]] == ["32.8", "28.0"]
    prime = dict(by_task["detection"].prime[0].rows)
    # PRIME loses 0.8 of the loss: plain's mPC 40 * (1 - 0.6 * 0.4) = 30.4, +2.4 pp
    assert [n.text for n in prime["mPC PRIME"]] == ["34.2", "30.4"]
    assert [n.text for n in prime["ΔmPC (pp)"]] == ["+1.4", "+2.4"]
    assert not notes


def test_a_severity_1_run_is_complete_and_every_table_says_which_severities(tmp_path):
    """The study's setting (severity 1 only, recorded as the planned grid) gives plain numbers
    (no '*'), and the tables, leaderboard and model sections state what each mean covers."""
    from robust_transfer.results import record_planned_grid

    documents = []
    for backbone in ROBUSTNESS:
        r = results_of("classification", backbone, "full-network", severities=[1])
        record_planned_grid(r, [("clean", 0)] + [(c, 1) for c in CORRUPTION_GROUPS["benchmark"]])
        documents.append((r, tmp_path / f"{backbone}.json"))
    entries, _ = build_entries(documents)
    tables, _ = study_tables(entries)
    assert tables[0].scopes == ["15 corruptions x severity 1"]
    assert all(not n.partial for _, numbers in tables[0].modes[0].rows for n in numbers)
    write_html_report(documents, tmp_path / "report.html", plots=False)
    page = (tmp_path / "report.html").read_text()
    assert "mPC over 15 corruptions x severity 1" in page
    assert page.count("<td>15 corruptions x severity 1</td>") == 2  # each model's metrics table
    assert "*" not in re.sub(r"<(script|style)>.*?</\1>", "", page, flags=re.S).split("Study tables")[1]


def test_a_results_file_reached_twice_counts_once(suites):
    entries, notes = build_entries(load_documents([suites, suites / "study" / "results" / "detection"]))
    assert len(entries) == 17 and not notes  # the same path resolves to one file
    twice = load_documents([suites / "study" / "results" / "detection" / "plain__full-network.json"])
    entries, notes = build_entries(twice + [(twice[0][0], Path("copy.json"))])
    assert len(entries) == 1 and "counted once" in notes[0]


def test_metric_option_picks_the_tables_metric_and_names_the_held_ones(suites):
    entries, _ = build_entries(load_documents([suites]), metric="segm_mAP")
    assert {e.task for e in entries} == {"detection"} and {e.metric for e in entries} == {"segm_mAP"}
    with pytest.raises(ValueError, match="no results hold metric 'AP75'; they hold: .*bbox_mAP"):
        build_entries(load_documents([suites]), metric="AP75")


def test_cards_hold_numbers_provenance_and_label_the_corruption_error(tmp_path, suites):
    documents = load_documents([suites])
    written = write_html_report(documents, tmp_path / "r" / "report.html", plots=False)
    cards = {p.stem: json.loads(p.read_text()) for p in written["cards"]}
    assert len(cards) == 17 and all(p.parent == tmp_path / "r" / "cards" for p in written["cards"])
    card = cards["detection__detection_plain_fixed-feature"]
    assert card["clean"]["bbox_mAP"] == pytest.approx(0.40)
    assert card["corrupted"]["bbox_mAP"] == pytest.approx(0.28)
    assert card["metrics"]["bbox_mAP_50"]["per_corruption"]["fog"] == pytest.approx(0.60 * 0.7)
    assert card["checkpoint"]["sha256"] == "ab" * 32 and card["backbone"]["in_catalogue"] is False
    cifar = cards["classification__classification_plain_fixed-feature"]
    assert cifar["corruption_error"]["label"] == MEAN_CORRUPTION_ERROR_LABEL
    assert cifar["corruption_error"]["value"] == pytest.approx(1 - 0.9 * 0.7)


def test_catalogued_backbones_carry_their_checkpoint_source(tmp_path):
    r = results_of("detection", "plain", "full-network")
    r["backbone"] = "ant"
    written = write_html_report([(r, None)], tmp_path / "report.html", plots=False)
    backbone = json.loads(written["cards"][0].read_text())["backbone"]
    assert backbone["in_catalogue"] and backbone["url"].endswith("ANT_Model.pth")


def test_alexnet_normalised_mce_only_for_imagenet():
    cells = {c: {s: {"acc": 1 - e / 2} for s in range(1, 6)} for c, e in ALEXNET_ERRORS.items()}
    label, value = corruption_error_for_dataset(cells, "acc", "imagenet_val")
    assert (label, value) == (MCE_ALEXNET_LABEL, pytest.approx(0.5))
    label, value = corruption_error_for_dataset(cells, "acc", "cifar10")
    expected = sum(e / 2 for e in ALEXNET_ERRORS.values()) / len(ALEXNET_ERRORS)
    assert (label, value) == (MEAN_CORRUPTION_ERROR_LABEL, pytest.approx(expected))
    assert corruption_error_for_dataset({}, "acc", None) == (MEAN_CORRUPTION_ERROR_LABEL, None)


def test_report_cli_writes_the_page_and_cards_and_prints_the_path(tmp_path, suites):
    table = tmp_path / "imagenet.yaml"
    table.write_text("metric: pre-training rPC\nvalues: {plain: 50, noise_aug: 70}\n")
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "robust_transfer.cli", "report",
                           str(suites / "study" / "results"), str(suites / "prime" / "results"),
                           "--out", str(out), "--no-plots", "--imagenet-robustness", str(table)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"html report: {(out / 'report.html').resolve()}" in proc.stdout
    html = (out / "report.html").read_text()
    assert len(list((out / "cards").glob("*.json"))) == 17 and (out / "summary.md").exists()
    assert "Spearman rho" in html and MEAN_CORRUPTION_ERROR_LABEL in html
    assert MCE_ALEXNET_LABEL not in html


def test_report_cli_html_alone_and_bad_metric(tmp_path, suites):
    page = tmp_path / "page" / "study.html"
    run = [sys.executable, "-m", "robust_transfer.cli", "report", str(suites), "--no-plots"]
    proc = subprocess.run(run + ["--html", str(page), "--metric", "mIoU"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert study_tables_of(page.read_text())[("segmentation", "fixed-feature")]["P"] == ["42.0", "42.0"]
    assert not (tmp_path / "page" / "summary.md").exists()
    proc = subprocess.run(run + ["--html", str(page), "--metric", "AP75"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "they hold" in proc.stderr
    proc = subprocess.run(run, capture_output=True, text=True)
    assert proc.returncode == 2 and "give --out DIR" in proc.stderr
    helptext = subprocess.run(run[:4] + ["--help"], capture_output=True, text=True).stdout
    assert all(flag in helptext for flag in ("--html", "--cards", "--metric", "folders"))


# ------------------------------------------------------------------------- in a real browser

PROBE_HEAD = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push('error: ' + e.message); });
var __consoleError = console.error;
console.error = function () { window.__errors.push('console: ' + Array.prototype.join.call(arguments, ' ')); __consoleError.apply(console, arguments); };
</script>"""
# After load: sort the leaderboard by rPC twice (descending), read the first model, and check
# every embedded image decoded; the findings go into the DOM that --dump-dom prints.
PROBE_TAIL = """<script>
window.addEventListener('load', function () {
  var table = document.getElementById('leaderboard-table');
  var rpc = Array.prototype.filter.call(table.tHead.rows[0].cells, function (th) { return th.textContent === 'rPC'; })[0];
  rpc.click(); var lowest = table.tBodies[0].rows[0].cells[0].textContent;
  rpc.click(); var highest = table.tBodies[0].rows[0].cells[0].textContent;
  var broken = Array.prototype.filter.call(document.images, function (i) { return !i.naturalWidth; }).length;
  var probe = document.createElement('pre'); probe.id = 'probe';
  probe.textContent = JSON.stringify({errors: window.__errors, lowest: lowest, highest: highest,
                                      images: document.images.length, broken: broken});
  document.body.appendChild(probe);
});
</script>"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def chromium_or_skip() -> str:
    for name in (os.environ.get("RT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium on this machine (apt-get install -y chromium, or set RT_CHROMIUM): "
                "the HTML report is not checked in a browser")


def run_chromium(browser: str, tmp_path: Path, *args: str) -> str:
    argv = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_page_in_headless_chromium(tmp_path, suites):
    browser = chromium_or_skip()
    table = tmp_path / "imagenet.yaml"
    table.write_text("metric: pre-training rPC (%)\nvalues: {plain: 50, noise_aug: 70}\n")
    from robust_transfer.report import load_imagenet_robustness

    values, metric = load_imagenet_robustness(table)
    page = write_html_report(load_documents([suites]), tmp_path / "report" / "report.html",
                             imagenet_robustness=values, imagenet_metric=metric,
                             title="Demo-like study")["html"]
    html = page.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', html), "the page must need no network"
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("<head>", "<head>" + PROBE_HEAD, 1)
                      .replace("</body>", PROBE_TAIL + "</body>", 1))
    dom = run_chromium(browser, tmp_path, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    found = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1)
                       .replace("&quot;", '"').replace("&amp;", "&"))
    assert found["errors"] == []
    # a severity-curve plot per model, a scatter per (task, mode); every one decoded
    assert found["images"] == 17 + 3 * 3 and found["broken"] == 0
    assert re.match(r"\w+_plain_(fixed-feature|full-network)$", found["lowest"])
    assert "noise_aug_full-network+prime" in found["highest"]
    tables = study_tables_of(dom)  # the numbers the browser shows, from the results files
    assert tables[("detection", "fixed-feature")]["mPC"] == ["32.8", "28.0"]
    assert tables[("segmentation", "full-network")]["rPC"] == ["82.0", "70.0"]
    assert tables[("classification", "full-network")]["P"] == ["—", "90.0"]
    assert tables[("detection", "full-network: PRIME against no PRIME")]["ΔrPC (pp)"] == ["+3.6", "+6.0"]
    shot = Path(os.environ.get("RT_REPORT_SCREENSHOT") or tmp_path / "report.png")
    run_chromium(browser, tmp_path, "--window-size=1280,1400", f"--screenshot={shot.resolve()}",
                 page.as_uri())
    assert shot.read_bytes()[:4] == b"\x89PNG"
