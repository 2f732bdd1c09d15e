"""torch.hub entry points: ``torch.hub.load(<this repository or its clone>, "upstream", ckpt=FOLDER)``.

speechssl itself must be installed (``pip install speechssl``); ``ckpt`` is anything
``speechssl.from_pretrained`` opens (our exported folder, a transformers folder or hub id, a fairseq or
LightHuBERT ``.pt``, a well-known name).
"""

dependencies = ["torch", "speechssl"]


def upstream(ckpt, **kwargs):
    """An s3prl-style upstream: a list of waveforms in, ``{"hidden_states": [...]}`` out."""
    from speechssl.s3prl import UpstreamExpert

    return UpstreamExpert(ckpt, **kwargs)


def encoder(ckpt, **kwargs):
    """The :class:`speechssl.models.SpeechEncoder` itself: ``model(wavs [B, T], lengths [B])``."""
    from speechssl.hub import from_pretrained

    return from_pretrained(ckpt, **kwargs)
