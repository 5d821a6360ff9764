"""load_weights: safe reading of local state dicts, with errors that name the keys."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from transferkit.core.errors import DataError
from transferkit.models.encoders.weights import (
    load_weights,
    read_state_dict,
    state_dict_sha256,
)


def _net(out: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, out))


def test_roundtrip_pt_copies_every_tensor(tmp_path):
    src, dst = _net(), _net()
    with torch.no_grad():
        for p in src.parameters():
            p.add_(1.0)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    rep = load_weights(dst, tmp_path / "w.pt")
    assert sorted(rep.loaded) == sorted(src.state_dict())
    assert state_dict_sha256(dst) == state_dict_sha256(src)


def test_roundtrip_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    src, dst = _net(), _net()
    with torch.no_grad():
        src[0].weight.mul_(-2.0)
    st.save_file(src.state_dict(), str(tmp_path / "w.safetensors"))
    load_weights(dst, tmp_path / "w.safetensors")
    assert torch.equal(dst[0].weight, src[0].weight)


def test_nested_checkpoint_and_prefix(tmp_path):
    src, dst = _net(), _net()
    with torch.no_grad():
        src[2].bias.fill_(7.0)
    torch.save({"bundle": {f"model.{k}": v for k, v in src.state_dict().items()}, "step": 3}, tmp_path / "c.pt")
    load_weights(dst, tmp_path / "c.pt", strip_prefix="model.")
    assert torch.equal(dst[2].bias, torch.full((3,), 7.0))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="weights file not found"):
        load_weights(_net(), tmp_path / "nope.pt")


def test_unknown_suffix(tmp_path):
    (tmp_path / "w.npz").write_bytes(b"PK")
    with pytest.raises(DataError, match="unknown weights format"):
        load_weights(_net(), tmp_path / "w.npz")


def test_missing_and_unexpected_keys_are_named(tmp_path):
    sd = _net().state_dict()
    sd["extra.weight"] = torch.zeros(2)
    del sd["2.bias"]
    torch.save(sd, tmp_path / "w.pt")
    with pytest.raises(DataError) as err:
        load_weights(_net(), tmp_path / "w.pt")
    msg = str(err.value)
    assert "'2.bias'" in msg and "missing" in msg
    assert "'extra.weight'" in msg and "unknown to the model" in msg
    rep = load_weights(_net(), tmp_path / "w.pt", strict=False)
    assert rep.missing == ["2.bias"] and rep.unexpected == ["extra.weight"]
    rep = load_weights(_net(), tmp_path / "w.pt", strict=False, ignore=("extra.",))
    assert rep.ignored == ["extra.weight"] and rep.unexpected == []


def test_shape_mismatch_is_named_even_when_not_strict(tmp_path):
    torch.save(_net(out=7).state_dict(), tmp_path / "w.pt")
    for strict in (True, False):
        with pytest.raises(DataError, match=r"2\.weight \(file \(7, 5\), model \(3, 5\)\)"):
            load_weights(_net(out=3), tmp_path / "w.pt", strict=strict)


class _Payload:
    """Unpickling this object would create a file (stands for arbitrary code execution)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_objects_are_refused_never_executed(tmp_path):
    marker = tmp_path / "EXECUTED"
    torch.save({"weight": torch.zeros(2), "evil": _Payload(str(marker))}, tmp_path / "evil.pt")
    assert not marker.exists()
    with pytest.raises(DataError, match="refused to load"):
        load_weights(_net(), tmp_path / "evil.pt")
    assert not marker.exists(), "load_weights executed pickled code"


def test_non_tensor_object_rejected(tmp_path):
    torch.save(nn.Linear(2, 2), tmp_path / "module.pt")  # a whole pickled module, not a state dict
    with pytest.raises(DataError, match="refused to load"):
        read_state_dict(tmp_path / "module.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(DataError, match="not a state dict"):
        read_state_dict(tmp_path / "list.pt")
    torch.save({"step": 1, "lr": 0.1}, tmp_path / "meta.pt")
    with pytest.raises(DataError, match="no state dict"):
        read_state_dict(tmp_path / "meta.pt")


def test_truncated_file(tmp_path):
    torch.save(_net().state_dict(), tmp_path / "w.pt")
    data = (tmp_path / "w.pt").read_bytes()
    (tmp_path / "t.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot read as a torch weights file"):
        load_weights(_net(), tmp_path / "t.pt")


def test_state_dict_hash_sees_one_changed_value():
    a, b = _net(), _net()
    assert state_dict_sha256(a) == state_dict_sha256(b)
    with torch.no_grad():
        b[0].weight[0, 0] += 1e-6
    assert state_dict_sha256(a) != state_dict_sha256(b)
