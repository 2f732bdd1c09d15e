"""The unpacked BiLSTM (nn/rnn.py) is the packed nn.LSTM's function, values and gradients, and much faster on a
CPU (tools/bench_bilstm.py); the SUPERB heads that use it give what the packed call gives."""

import pytest
import torch
from torch import nn

from speechssl.downstream.heads import BiLSTMCTC, DiarizationHead
from speechssl.nn.rnn import padded_bilstm, reverse_within_lengths


def _packed(lstm, x, lengths):
    p = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    y, _ = lstm(p)
    return nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])[0]


def test_reversal_within_lengths_leaves_padding_and_undoes_itself():
    x = torch.arange(8.0).view(2, 4, 1)
    r = reverse_within_lengths(x, torch.tensor([4, 2]))
    assert r[:, :, 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]
    assert torch.equal(reverse_within_lengths(r, torch.tensor([4, 2])), x)


@pytest.mark.parametrize("layers", [1, 2])
def test_padded_bilstm_equals_the_packed_call_values_and_gradients(layers):
    torch.manual_seed(0)
    lstm = nn.LSTM(6, 5, layers, batch_first=True, bidirectional=True, dropout=0.3).eval()
    x = torch.randn(3, 40, 6)
    lengths = torch.tensor([40, 23, 7])
    a_in, b_in = x.clone().requires_grad_(), x.clone().requires_grad_()
    a, b = _packed(lstm, a_in, lengths), padded_bilstm(lstm, b_in, lengths)
    torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5)
    assert b[2, 7:].abs().max() == 0  # zero past the length, as pad_packed_sequence
    weights = torch.randn_like(a)
    ga = torch.autograd.grad((a * weights).sum(), [a_in, *lstm.parameters()])
    gb = torch.autograd.grad((b * weights).sum(), [b_in, *lstm.parameters()])
    for p, q in zip(ga, gb):
        torch.testing.assert_close(q, p, atol=1e-5, rtol=1e-4)


def test_heads_give_the_packed_result():
    torch.manual_seed(0)
    head = BiLSTMCTC(8, 5, hidden=16, num_layers=2, project=0).eval()
    x, lengths = torch.randn(2, 300, 8), torch.tensor([300, 220])
    logits, _ = head(x, lengths)
    packed = head.out(_packed(head.lstm, x, lengths))
    torch.testing.assert_close(logits, packed, atol=1e-5, rtol=1e-5)
    sd = DiarizationHead(8, 6, 1).eval()
    y, _ = sd(x, lengths)
    p = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ref = sd.out(nn.utils.rnn.pad_packed_sequence(sd.rnn(p)[0], batch_first=True, total_length=300)[0])
    torch.testing.assert_close(y, ref, atol=1e-6, rtol=1e-5)
