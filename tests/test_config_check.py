"""Every YAML in conf/ loads into its schema and validates (the dry run `speechssl config check`), and a
broken file is reported with its name and the reason."""

import shutil

from speechssl.config import CONF_DIR
from speechssl.config_check import bases_of, check_conf_tree, format_report


def test_every_shipped_config_validates():
    results = check_conf_tree(CONF_DIR)
    assert len(results) >= 30
    bad = [r for r in results if r.error]
    assert not bad, format_report(results)
    kinds = {r.schema for r in results}
    assert kinds == {
        "hubert",
        "w2v-bert",
        "lighthubert",
        "asr",
        "superb",
        "lighthubert_space",
        "superb_anchors",
        "vec2wav",
        "vec2mel",
        "text2vec",
        "asd",
    }
    # layered files are checked on their bases, as the recipe passes them
    assert bases_of(CONF_DIR / "pretrain" / "hubert_demo_it2.yaml") == [
        "pretrain/hubert_mini",
        "pretrain/hubert_mini_it2",
    ]


def test_broken_configs_are_named_with_the_reason(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "pretrain" / "hubert_typo.yaml").write_text("# base: pretrain/hubert_mini\noptim:\n  lrr: 1.0e-3\n")
    (conf / "distill" / "lighthubert_bad.yaml").write_text(
        "# base: distill/lighthubert_mini_stage1\nobjective:\n  sampling: sometimes\n"
    )
    (conf / "finetune" / "asr_type.yaml").write_text("optim:\n  total_steps: many\n")
    (conf / "misc").mkdir()
    (conf / "misc" / "stray.yaml").write_text("a: 1\n")
    errors = {str(r.path.relative_to(conf)): r.error for r in check_conf_tree(conf) if r.error}
    assert set(errors) == {
        "pretrain/hubert_typo.yaml",
        "distill/lighthubert_bad.yaml",
        "finetune/asr_type.yaml",
        "misc/stray.yaml",
    }
    assert (
        "optim.lrr" in errors["pretrain/hubert_typo.yaml"]
        and "did you mean optim.lr" in errors["pretrain/hubert_typo.yaml"]
    )
    assert "sometimes" in errors["distill/lighthubert_bad.yaml"]
    assert "total_steps" in errors["finetune/asr_type.yaml"]
    assert "no schema" in errors["misc/stray.yaml"]
