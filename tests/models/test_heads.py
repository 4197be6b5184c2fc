import pytest
import torch

from deephash.codes import sign
from deephash.models.heads import (
    DivideEncodeHead,
    EmbeddingHead,
    HashHead,
    create_head,
    list_heads,
    sign_ste,
)

BITS = [8, 12, 24, 32, 48, 64, 256]


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("kind", ["tanh", "linear", "sign-ste", "divide-encode"])
def test_hash_heads_shapes_and_ranges(kind: str, bits: int) -> None:
    torch.manual_seed(bits)
    head = create_head(kind, 100, bits)
    out = head(torch.randn(5, 100) * 3)
    assert out.shape == (5, bits) and out.dtype == torch.float32
    if kind == "tanh":
        assert torch.all(out.abs() < 1)
    elif kind == "sign-ste":
        assert set(out.unique().tolist()) <= {-1.0, 1.0}
    elif kind == "divide-encode":
        assert torch.all(out.abs() <= 1)


def test_embedding_head_matches_hand_computation() -> None:
    torch.manual_seed(0)
    head = EmbeddingHead(6, 3)
    x = torch.randn(4, 6)
    ref = x @ head.fc.weight.T + head.fc.bias
    ref = ref / ref.norm(dim=1, keepdim=True)
    torch.testing.assert_close(head(x), ref)
    raw = EmbeddingHead(6, 3, normalize=False)
    torch.testing.assert_close(raw(x), x @ raw.fc.weight.T + raw.fc.bias)


def test_tanh_head_beta() -> None:
    torch.manual_seed(0)
    head = HashHead(5, 8, kind="tanh", beta=3.0)
    x = torch.randn(2, 5)
    torch.testing.assert_close(head(x), torch.tanh(3.0 * (x @ head.fc.weight.T + head.fc.bias)))


def test_sign_ste_forward_is_sign_and_gradient_is_identity() -> None:
    x = torch.tensor([-2.0, -0.1, 0.0, 0.3, 5.0], requires_grad=True)
    y = sign_ste(x)
    assert y.tolist() == sign(x.detach().numpy()).astype(float).tolist()  # 0 -> +1
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    y.backward(g)
    assert x.grad is not None
    torch.testing.assert_close(x.grad, g)


def test_sign_ste_head_gradient_equals_tanh_gradient() -> None:
    # STE: backward is the derivative of tanh, so the input gradient equals a tanh head's.
    torch.manual_seed(1)
    ste = HashHead(7, 12, kind="sign-ste")
    tanh = HashHead(7, 12, kind="tanh")
    tanh.load_state_dict(ste.state_dict())
    w = torch.randn(3, 12)
    grads = []
    for head in (ste, tanh):
        x = torch.randn(3, 7, generator=torch.Generator().manual_seed(2)).requires_grad_()
        (head(x) * w).sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])


def _threshold_ref(s: float, eps: float) -> float:
    return 0.0 if s < 0.5 - eps else (1.0 if s > 0.5 + eps else s)


@pytest.mark.parametrize(("in_features", "bits"), [(24, 8), (50, 12)])
def test_divide_encode_forward_by_hand(in_features: int, bits: int) -> None:
    torch.manual_seed(0)
    head = DivideEncodeHead(in_features, bits, eps=0.05)
    x = torch.randn(3, in_features)
    with torch.no_grad():
        out = head(x)
    slice_len = -(-in_features // bits)
    for b in range(3):
        for r in range(bits):
            lo, hi = r * slice_len, min((r + 1) * slice_len, in_features)
            act = sum(
                float(x[b, f]) * float(head.weight[r, f - lo].detach()) for f in range(lo, hi)
            )
            s = 1 / (1 + torch.exp(-torch.tensor(act + float(head.bias[r].detach())))).item()
            assert out[b, r].item() == pytest.approx(2 * _threshold_ref(s, 0.05) - 1, abs=1e-5)


@pytest.mark.parametrize(("in_features", "bits"), [(32, 8), (50, 12)])
def test_divide_encode_connects_slice_r_to_bit_r_only(in_features: int, bits: int) -> None:
    torch.manual_seed(0)
    head = DivideEncodeHead(in_features, bits)
    x = torch.randn(1, in_features)
    jac = torch.autograd.functional.jacobian(lambda v: head(v)[0], x)[:, 0, :]  # (bits, in)
    slice_len = -(-in_features // bits)
    for r in range(bits):
        for f in range(in_features):
            in_slice = r * slice_len <= f < (r + 1) * slice_len
            if not in_slice:
                assert jac[r, f] == 0
    # straight-through: every real feature of a slice gets gradient (weights are non-zero)
    covered = (jac != 0).any(dim=0)
    assert bool(covered.all())


def test_divide_encode_exact_threshold_blocks_saturated_gradient() -> None:
    head = DivideEncodeHead(4, 2, eps=0.1, straight_through=False)
    with torch.no_grad():
        head.weight.fill_(1.0)
        head.bias.zero_()
    # slice 0 sums to 0 -> s = 0.5 (inside the band); slice 1 sums to 8 -> saturated at 1
    x = torch.tensor([[1.0, -1.0, 4.0, 4.0]], requires_grad=True)
    out = head(x)
    assert out[0, 1].item() == 1.0 and out[0, 0].item() == pytest.approx(0.0)
    out.sum().backward()
    assert x.grad is not None
    # d/dx of 2*sigmoid(a) at a=0 is 2 * 0.25 for both slice-0 features; slice 1 gets nothing
    torch.testing.assert_close(x.grad, torch.tensor([[0.5, 0.5, 0.0, 0.0]]))


def test_factory_and_errors() -> None:
    assert list_heads() == [
        "divide-encode",
        "embedding",
        "linear",
        "projection",
        "sign-ste",
        "tanh",
    ]
    assert isinstance(create_head("embedding", 10, 4, normalize=False), EmbeddingHead)
    with pytest.raises(ValueError, match="unknown head"):
        create_head("conv", 10, 4)
    with pytest.raises(ValueError, match="bits must be a positive int"):
        HashHead(10, 0)
    with pytest.raises(ValueError, match="unknown hash head kind"):
        HashHead(10, 8, kind="relu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected features of shape \(B, 10\)"):
        DivideEncodeHead(10, 5)(torch.randn(2, 11))


def test_registry_builds_each_kind_with_its_class() -> None:
    expected = {
        "divide-encode": DivideEncodeHead,
        "embedding": EmbeddingHead,
        "linear": HashHead,
        "sign-ste": HashHead,
        "tanh": HashHead,
    }
    for kind, cls in expected.items():
        head = create_head(kind, 12, 4)
        assert type(head) is cls and head(torch.randn(3, 12)).shape == (3, 4), kind
        if cls is HashHead:
            assert isinstance(head, HashHead) and head.kind == kind
    assert type(create_head("projection", 12, 4)).__name__ == "ProjectionHead"
    with pytest.raises(
        ValueError,
        match="unknown head 'conv'; available: divide-encode, embedding, linear, projection, "
        "sign-ste, tanh",
    ):
        create_head("conv", 10, 4)
