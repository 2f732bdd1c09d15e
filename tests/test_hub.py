"""Names never mean random weights; from_pretrained resolves folders, checkpoints and hub ids through an
offline hub cache that the test builds; the CLI converts to Hugging Face and ONNX."""

import json
import shutil

import pytest
import torch

transformers = pytest.importorskip("transformers")

import speechssl  # noqa: E402
from speechssl import hub  # noqa: E402
from speechssl.cli import main  # noqa: E402
from speechssl.errors import InputError, MissingInputError  # noqa: E402
from speechssl.models import load_model  # noqa: E402
from speechssl.models.registry import _CONFIGS  # noqa: E402

TINY_WAVLM = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    conv_dim=(32, 32, 32),
    conv_kernel=(10, 3, 3),
    conv_stride=(5, 2, 2),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    num_buckets=16,
    max_bucket_distance=20,
)


def _cache_entry(cache, hub_id, model):
    """Lay ``model`` out as huggingface_hub's cache does: blobs, a snapshot per commit, refs/main."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + hub_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    model.save_pretrained(snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return snap


@pytest.fixture()
def offline_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_an_architecture_name_is_not_weights():
    with pytest.raises(InputError, match=r"'hubert_small' is an architecture name, not weights.*--random-init"):
        hub.load_upstream("hubert_small")
    with pytest.raises(InputError, match=r"from_pretrained\('hubert_small'\) loads published weights"):
        load_model("hubert_small")
    model = hub.load_upstream("hubert_small", random_init=True)
    assert model.metadata["weights"] == "random init"
    assert hub.weights_record(model) == {"source": "hubert_small", "weights": "random init"}


def test_hub_id_loads_offline_from_a_populated_cache(offline_cache):
    torch.manual_seed(0)
    ref = transformers.WavLMModel(transformers.WavLMConfig(**TINY_WAVLM)).eval()
    _cache_entry(offline_cache, "someone/tiny-wavlm", ref)
    model = speechssl.from_pretrained("someone/tiny-wavlm")
    assert model.config.family == "wavlm" and model.metadata["source"] == "hf://someone/tiny-wavlm"
    assert "sha256" in model.metadata["weights"]
    wav = torch.randn(1, 6000)
    with torch.no_grad():
        a = model(wav).hidden_states[-1]
        b = ref(wav).last_hidden_state
    assert float((a - b).abs().max()) < 1e-4


def test_a_missing_hub_id_offline_names_the_id_and_the_variable(offline_cache):
    with pytest.raises(MissingInputError, match=r"facebook/hubert-base-ls960: not in the Hugging Face cache .*HF_HOME"):
        speechssl.from_pretrained("hubert_base")
    with pytest.raises(MissingInputError, match="not a hub id"):
        speechssl.from_pretrained("no such thing")


def test_well_known_names_must_produce_their_architecture(offline_cache, monkeypatch):
    torch.manual_seed(0)
    _cache_entry(
        offline_cache, "microsoft/wavlm-base-plus", transformers.WavLMModel(transformers.WavLMConfig(**TINY_WAVLM))
    )
    with pytest.raises(
        InputError,
        match=r"wavlm_base_plus \(microsoft/wavlm-base-plus\): the weights do not have "
        r"the architecture this name promises: .*hidden_size: 32 \(loaded\) vs 768",
    ):
        speechssl.from_pretrained("wavlm_base_plus")
    # a name whose architecture matches loads (a tiny stand-in for the table's entries)
    monkeypatch.setitem(
        _CONFIGS,
        "tiny_wavlm_test",
        lambda: (
            hub.import_checkpoint(
                next((offline_cache / "models--microsoft--wavlm-base-plus" / "snapshots").iterdir())
            ).config
        ),
    )
    monkeypatch.setitem(hub.WELL_KNOWN, "tiny_wavlm_test", ("microsoft/wavlm-base-plus", "tiny_wavlm_test"))
    assert speechssl.from_pretrained("tiny_wavlm_test").config.hidden_size == 32


def test_every_well_known_architecture_is_registered_and_the_table_is_complete():
    for _name, (hub_id, arch) in hub.WELL_KNOWN.items():
        assert arch in _CONFIGS and "/" in hub_id
    assert {"hubert_base", "hubert_large", "wav2vec2_base", "wavlm_base_plus", "w2v_bert_2"} <= set(hub.WELL_KNOWN)


def test_published_configs_of_wavlm_and_data2vec_are_the_registered_ones():
    """transformers' default configs are the base checkpoints' architectures."""
    from speechssl.interop.huggingface import config_from_hf
    from speechssl.models import model_config

    for name, cls in [
        ("wavlm_base_plus", "WavLMConfig"),
        ("data2vec_audio_base", "Data2VecAudioConfig"),
        ("hubert_base", "HubertConfig"),
        ("wav2vec2_base", "Wav2Vec2Config"),
    ]:
        hub._check_architecture(config_from_hf(getattr(transformers, cls)().to_dict()), model_config(name), name)
    counts = {
        n: sum(p.numel() for p in speechssl.build_model(n).parameters())
        for n in ("wavlm_base_plus", "data2vec_audio_base")
    }
    # WavLM Base+: 94.70M (HF WavLMModel, microsoft/wavlm-base-plus); data2vec Base: 93.16M (Data2VecAudioModel)
    assert abs(counts["wavlm_base_plus"] - 94.70e6) / 94.70e6 < 0.01
    assert abs(counts["data2vec_audio_base"] - 93.16e6) / 93.16e6 < 0.01


def test_cli_converts_to_hf_and_onnx_and_refuses_bare_names(tmp_path, capsys):
    assert main(["convert", "hubert_small", str(tmp_path / "x")]) == 2
    assert "is an architecture name, not weights" in capsys.readouterr().err
    assert main(["convert", "hubert_small", str(tmp_path / "ours"), "--random-init"]) == 0
    assert main(["convert", str(tmp_path / "ours"), str(tmp_path / "hf"), "--to", "hf"]) == 0
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert cfg["model_type"] == "hubert" and cfg["speechssl"]["source"] == str(tmp_path / "ours")
    theirs = transformers.AutoModel.from_pretrained(tmp_path / "hf").eval()
    ours = load_model(tmp_path / "ours")
    wav = torch.randn(1, 8000)
    with torch.no_grad():
        assert float((theirs(wav).last_hidden_state - ours(wav).hidden_states[-1]).abs().max()) < 1e-4
    pytest.importorskip("onnxruntime")
    assert main(["convert", str(tmp_path / "ours"), str(tmp_path / "m.onnx"), "--to", "onnx", "--int8"]) == 0
    assert (tmp_path / "m.onnx").is_file() and (tmp_path / "m.int8.onnx").is_file()
    shutil.rmtree(tmp_path / "hf")


def test_names_mean_what_they_name_even_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    """A Kaldi fbank/ feature folder or a folder called hubert_small in the working directory never replaces the
    FBANK baseline or the named architecture (hubert_small); ./fbank reaches the folder."""
    from speechssl.errors import InputError
    from speechssl.hub import from_pretrained, load_upstream, source_record
    from speechssl.models.fbank_upstream import FbankUpstream

    monkeypatch.chdir(tmp_path)
    (tmp_path / "fbank").mkdir()
    (tmp_path / "fbank" / "feats.scp").write_text("")
    (tmp_path / "hubert_small").mkdir()
    assert isinstance(load_upstream("fbank"), FbankUpstream)
    assert source_record("fbank")["source"] == "fbank"
    with pytest.raises(InputError, match="architecture name, not weights"):
        from_pretrained("hubert_small")
    with pytest.raises(Exception, match="fbank"):  # the folder, asked for explicitly: not a model folder
        load_upstream("./fbank")
