"""Report sections read from files beside the summary: the held-out test evaluation of the
exported model (`test_evaluation.json`) and the data-quality report (`data_quality.json`)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from automl.data.quality import REPORT_FILE
from automl.export.card import base_model_lines, unseen_line
from automl.export.evaluation import CONFUSION_FILE, load_evaluation, plot_confusion


def test_section(out_dir: Path, report_dir: Path) -> str:
    """The exported model on the test split: headline, per-class table, confusion matrix."""
    evaluation = load_evaluation(out_dir)
    if evaluation is None:
        return ""
    plot_confusion(evaluation, report_dir / CONFUSION_FILE)
    rows = "".join(
        f'<tr><td class="id">{html.escape(r["label"])}</td><td>{r["precision"]:.3f}</td>'
        f"<td>{r['recall']:.3f}</td><td>{r['f1']:.3f}</td><td>{html.escape(str(r['support']))}</td></tr>"
        for r in evaluation["per_class"]
    )
    return "\n".join(
        [
            '<h2 id="test">Held-out test (exported model)</h2>',
            f"<p><b>Test accuracy {evaluation['accuracy']:.4f}</b> · macro-F1 "
            f"{evaluation['macro_f1']:.4f} · balanced accuracy "
            f"{evaluation['balanced_accuracy']:.4f} · "
            f"{html.escape(str(evaluation['num_examples']))} rows held "
            "out before training, read by no training or selection step of this sweep "
            "(scored once, after the best trial was chosen)</p>",
            *(
                [f"<p>{html.escape(unseen_line(evaluation['num_examples'], unseen))}</p>"]
                if isinstance(unseen := evaluation.get("unseen"), dict)
                else []
            ),
            *(f"<p>{html.escape(line)}</p>" for line in base_model_lines(evaluation)),
            "<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>"
            f"<th>support</th></tr>{rows}</table>",
            f'<img src="{CONFUSION_FILE}" alt="test confusion matrix">',
            '<p class="caption">Rows: the true class; columns: the predicted one; colour: the '
            "share of the true class (recall on the diagonal).</p>",
        ]
    )


def quality_section(out_dir: Path) -> str:
    """The data-quality report: sizes and balance, then its problems and warnings."""
    path = out_dir / REPORT_FILE
    if not path.is_file():
        return ""
    try:
        report: dict[str, Any] = json.loads(path.read_text())
        sizes = " / ".join(f"{n} {name}" for name, n in report["sizes"].items())
        classes, trunc = report["classes"], report["truncation"]
        leak = report["leakage"]
        smallest = ", ".join(f"{name} ({n})" for name, n in classes["smallest"])
        cells = [
            ("examples", sizes),
            ("classes", f"{report['num_classes']}; smallest (all splits): {smallest}"),
            ("majority class", f"{classes['majority']}: {classes['majority_share']:.1%} of train"),
            ("duplicates in train", f"{report['duplicates']['train']['near']} "
             f"({report['duplicates']['train']['exact']} exact)"),
            *((f"{pair.replace('->', ' → ')} overlap", f"{c['near']} ({c['exact']} exact)")
              for pair, c in leak.items()),
            ("truncated", f"{trunc['count']} texts ({trunc['share']:.1%}) over "
             f"{trunc['max_length']} tokens; longest {trunc['longest']}"),
        ]  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # another version's file
        return ""
    e = html.escape
    rows = "".join(f'<tr><td class="id">{e(k)}</td><td>{e(v)}</td></tr>' for k, v in cells)
    notes = [f'<p class="note">problem: {e(p)}</p>' for p in report.get("problems", [])]
    notes += [f'<p class="caption">warning: {e(w)}</p>' for w in report.get("warnings", [])]
    return "\n".join(['<h2 id="data-quality">Data quality</h2>', f"<table>{rows}</table>", *notes])
