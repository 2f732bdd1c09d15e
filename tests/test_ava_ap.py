"""AVA-ActiveSpeaker average precision against hand-computed cases and the official script's refusals."""

import pytest

from speechssl.downstream.ava_ap import (
    ava_average_precision,
    interpolated_average_precision,
    precision_recall,
    read_ava_csv,
)


def rows(labels, scores, boxes=None):
    gt, pred = [], []
    for i, (lab, s) in enumerate(zip(labels, scores)):
        box = dict(entity_box_x1=0.1, entity_box_y1=0.2, entity_box_x2=0.5, entity_box_y2=0.6)
        common = dict(video_id="v", frame_timestamp=f"{900 + i * 0.04:.2f}", entity_id="v:e1", **box)
        gt.append({**common, "label": "SPEAKING_AUDIBLE" if lab else "NOT_SPEAKING"})
        pred.append({**common, "label": "SPEAKING_AUDIBLE", "score": s})
    return gt, pred


def test_hand_computed_cases():
    # perfect ranking
    assert ava_average_precision(*rows([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])) == 1.0
    # ranks: + - + -  -> precision 1, .5, .667, .5; recall .5, .5, 1, 1; envelope 1, .667, .667, .5
    # AP = .5 * 1 + .5 * 2/3
    assert ava_average_precision(*rows([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])) == pytest.approx(0.5 + 1 / 3)
    # worst ranking: - - + +  -> precision 0, 0, 1/3, 1/2; envelope 1/2 at both recall steps
    assert ava_average_precision(*rows([0, 0, 1, 1], [0.9, 0.8, 0.7, 0.6])) == pytest.approx(0.5)
    # row order does not matter, scores do
    gt, pred = rows([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
    assert ava_average_precision(gt[::-1], pred) == pytest.approx(0.5 + 1 / 3)


def test_interpolation_and_precision_recall():
    p, r = precision_recall([True, False, True], [0.3, 0.2, 0.1])
    assert p.tolist() == pytest.approx([1.0, 0.5, 2 / 3]) and r.tolist() == [0.5, 0.5, 1.0]
    assert interpolated_average_precision(p, r) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert interpolated_average_precision([], []) == 0.0
    with pytest.raises(ValueError, match="non-decreasing"):
        interpolated_average_precision([1.0, 1.0], [0.5, 0.2])


def test_refusals_name_the_row():
    gt, pred = rows([1, 0], [0.9, 0.1])
    with pytest.raises(ValueError, match="2 rows and predictions 1"):
        ava_average_precision(gt, pred[:1])
    bad = [dict(pred[0], label="NOT_SPEAKING"), pred[1]]
    with pytest.raises(ValueError, match="900.00:v:e1 is labelled 'NOT_SPEAKING'"):
        ava_average_precision(gt, bad)
    moved = [dict(pred[0], entity_box_x1=0.3), pred[1]]
    with pytest.raises(ValueError, match="box of 900.00:v:e1 differs"):
        ava_average_precision(gt, moved)
    with pytest.raises(ValueError, match="no SPEAKING_AUDIBLE"):
        ava_average_precision(*rows([0, 0], [0.9, 0.1]))
    other = [pred[0], dict(pred[1], entity_id="v:e2")]
    with pytest.raises(ValueError, match="no row for 900.04:v:e1"):
        ava_average_precision(gt, other)


def test_reads_the_csv_layout(tmp_path):
    f = tmp_path / "gt.csv"
    f.write_text(
        "v,900.00,0.1,0.2,0.5,0.6,SPEAKING_AUDIBLE,v:e1,1,v:e1:1\nv,900.04,0.1,0.2,0.5,0.6,NOT_SPEAKING,v:e1,0,v:e1:1\n"
    )
    gt = read_ava_csv(f)
    assert gt[0]["label"] == "SPEAKING_AUDIBLE" and gt[1]["frame_timestamp"] == "900.04"
    (tmp_path / "bad.csv").write_text("v,900.00,0.1\n")
    with pytest.raises(ValueError, match="bad.csv:1: 3 columns"):
        read_ava_csv(tmp_path / "bad.csv")
