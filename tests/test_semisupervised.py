"""The semi-supervised VAE (M2, Kingma et al. 2014): its loss against an independent computation with
torch.distributions, the seeded labelled draw, and training on a few labels end to end."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Normal, kl_divergence

from models import Autoencoder, ModelConfig
from tests.fake_data import write_fake_mnist
from training.train import TrainConfig, labelled_subset, train

K = 10


def tiny_m2(seed: int = 0) -> Autoencoder:
    torch.manual_seed(seed)
    cfg = ModelConfig(family="mlp", hidden_dim=16, hidden_layers=1, latent_dim=3, image_size=4, conditional=True,
                      semi_supervised=True, num_classes=K)
    return Autoencoder(cfg).eval()


def batch(n: int, seed: int) -> torch.Tensor:
    return torch.bernoulli(torch.rand((n, 1, 4, 4), generator=torch.Generator().manual_seed(seed)))


def neg_elbo_by_hand(model: Autoencoder, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """-log p(x|y, z) + KL(q(z|x, y) || N(0, I)) - log p(y) per image, z = mean + std * eps, by torch.distributions."""
    post = model.encode(x, y)
    q = Normal(post.mean, post.std)
    z = post.mean + post.std * eps
    log_px = Bernoulli(logits=model.decode(z, y)).log_prob(x).flatten(1).sum(1)
    kl = kl_divergence(q, Normal(torch.zeros_like(z), torch.ones_like(z))).sum(1)
    return -log_px + kl + math.log(K)


@torch.no_grad()
def test_m2_loss_equals_the_sum_over_classes_by_hand():
    model = tiny_m2()
    x_l, y_l, x_u = batch(5, 1), torch.tensor([0, 3, 3, 7, 9]), batch(6, 2)
    alpha = 2.5
    terms = model.semi_supervised_loss(x_l, y_l, x_u, class_weight=alpha, generator=torch.Generator().manual_seed(7))
    # The same noise, drawn in the loss's order: the labelled batch's, then the unlabelled one's for y = 0..K-1.
    g = torch.Generator().manual_seed(7)
    eps_l = torch.randn((5, 3), generator=g)
    eps_u = torch.randn((K * 6, 3), generator=g).view(K, 6, 3)
    labelled = neg_elbo_by_hand(model, x_l, y_l, eps_l).mean()
    q = Categorical(logits=model.classify(x_u))
    per_class = torch.stack([neg_elbo_by_hand(model, x_u, torch.full((6,), c), eps_u[c]) for c in range(K)], 1)
    unlabelled = ((q.probs * per_class).sum(1) - q.entropy()).mean()
    class_loss = -Categorical(logits=model.classify(x_l)).log_prob(y_l).mean()
    torch.testing.assert_close(terms["labelled"], labelled)
    torch.testing.assert_close(terms["unlabelled"], unlabelled)
    torch.testing.assert_close(terms["entropy"], q.entropy().mean())
    torch.testing.assert_close(terms["class_loss"], class_loss)
    torch.testing.assert_close(terms["loss"], labelled + unlabelled + alpha * class_loss)
    # U(x) is -ELBO of log p(x): never below the labelled bound of the class q(y|x) favours, minus log q of it
    assert (q.entropy() <= math.log(K) + 1e-6).all()


@torch.no_grad()
def test_m2_labelled_term_is_the_cvae_loss_plus_log_k_and_the_classifier_term():
    model = tiny_m2(seed=3)
    x_l, y_l, x_u = batch(8, 4), torch.arange(8) % K, batch(4, 5)
    cvae = model.loss(x_l, labels=y_l, generator=torch.Generator().manual_seed(11))["loss"]
    terms = model.semi_supervised_loss(x_l, y_l, x_u, class_weight=4.0, generator=torch.Generator().manual_seed(11))
    torch.testing.assert_close(terms["labelled"], cvae + math.log(K))
    ce = torch.nn.functional.cross_entropy(model.classify(x_l), y_l)
    torch.testing.assert_close(terms["loss"] - terms["unlabelled"], cvae + math.log(K) + 4.0 * ce)


def test_m2_entropy_term_is_minus_the_sum_of_q_log_q():
    """A uniform q(y|x) has entropy log K, and the unlabelled bound is then the mean of L(x, y) minus log K."""
    model = tiny_m2()
    with torch.no_grad():
        model.classifier[-1].weight.zero_()
        model.classifier[-1].bias.zero_()
        x_u = batch(3, 6)
        terms = model.semi_supervised_loss(batch(2, 7), torch.tensor([1, 2]), x_u, class_weight=1.0,
                                           generator=torch.Generator().manual_seed(0))
        g = torch.Generator().manual_seed(0)
        torch.randn((2, 3), generator=g)
        eps_u = torch.randn((K * 3, 3), generator=g).view(K, 3, 3)
        per_class = torch.stack([neg_elbo_by_hand(model, x_u, torch.full((3,), c), eps_u[c]) for c in range(K)], 1)
    torch.testing.assert_close(terms["entropy"], torch.tensor(math.log(K)))
    torch.testing.assert_close(terms["unlabelled"], (per_class.mean(1) - math.log(K)).mean())


@torch.no_grad()
def test_m2_encodes_an_unlabelled_image_with_its_own_likeliest_class():
    """Where no label is given (the app's maps, the atlas), M2 encodes x with the argmax of its q(y|x)."""
    model, x = tiny_m2(), batch(12, 5)
    y = model.classify(x).argmax(1)
    own, given = model.encode(x), model.encode(x, y)
    torch.testing.assert_close(own.mean, given.mean)
    torch.testing.assert_close(own.std, given.std)
    other = model.encode(x, (y + 1) % K)
    assert not torch.allclose(own.mean, other.mean)


def test_m2_config_is_refused_without_a_conditional_vae():
    with pytest.raises(ValueError, match="semi_supervised"):
        ModelConfig(semi_supervised=True)
    with pytest.raises(ValueError, match="semi_supervised"):
        ModelConfig(semi_supervised=True, conditional=True, bottleneck="ae")
    with pytest.raises(ValueError, match="only a semi-supervised"):
        Autoencoder(ModelConfig(family="mlp", hidden_dim=8, latent_dim=2)).classify(batch(1, 0).repeat(1, 1, 7, 7))


def test_labelled_subset_draws_n_per_class_and_the_same_for_the_same_seed():
    labels = torch.arange(1000) % 10
    labels = labels[torch.randperm(1000, generator=torch.Generator().manual_seed(0))]
    a, b, c = labelled_subset(labels, 7, seed=0), labelled_subset(labels, 7, seed=0), labelled_subset(labels, 7, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len(a) == 70 and len(set(a.tolist())) == 70
    assert torch.bincount(labels[a], minlength=10).tolist() == [7] * 10
    with pytest.raises(ValueError, match="class 0 has only 3"):
        labelled_subset(torch.tensor([0, 0, 0, 1, 1, 1, 1]), 4, seed=0)


def test_m2_trains_on_a_few_labels_and_records_them(tmp_path):
    root = write_fake_mnist(tmp_path / "data", n_train=400, n_test=50)
    cfg = TrainConfig(dataset="mnist", data_root=str(root), out=str(tmp_path / "m2"), epochs=6, batch_size=32,
                      lr=3e-3, labels_per_class=3, class_weight=10.0, val_size=100, seed=0)
    model_cfg = ModelConfig(family="mlp", hidden_dim=64, hidden_layers=1, latent_dim=4, conditional=True,
                            semi_supervised=True)
    model, history = train(cfg, model_cfg, progress=False)
    metrics = json.loads((tmp_path / "m2" / "metrics.json").read_text())
    idx = torch.tensor(metrics["labelled_indices"])
    from training.data import load_split

    _, labels = load_split("mnist", root, train=True)
    assert torch.bincount(labels[100:][idx], minlength=10).tolist() == [3] * 10  # after the 100 validation images
    assert torch.equal(idx, labelled_subset(labels[100:], 3, seed=0))
    # 30 labels of 300 training images: q(y|x) calls most of the held-out images right (chance: 90 % error)
    assert history[-1]["val_class_error"] < 0.4, history[-1]
    reloaded = Autoencoder.from_pretrained(tmp_path / "m2")
    assert reloaded.config.semi_supervised and reloaded.classifier is not None
    with pytest.raises(ValueError, match="go together"):
        train(TrainConfig(dataset="mnist", data_root=str(root), out=str(tmp_path / "x"), epochs=1, labels_per_class=3),
              ModelConfig(family="mlp", hidden_dim=8, latent_dim=2), progress=False)


@pytest.mark.parametrize("flags, says", [
    (["--labels-per-class", "0"], "--labels-per-class must be >= 1"),
    (["--feature-std", "0"], "--feature-std and --lr must be > 0"),
    (["--dataset", "cifar"], "invalid choice"),
    (["--features", "median"], "invalid choice"),
])
def test_semisupervised_cli_refuses_bad_flags_in_one_line(flags, says):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "training.semisupervised", *flags], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and says in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_semisupervised_cli_says_what_is_missing(tmp_path):
    import subprocess
    import sys

    root = write_fake_mnist(tmp_path / "data", n_train=100, n_test=20)
    run = subprocess.run([sys.executable, "-m", "training.semisupervised", "--data-root", str(root), "--checkpoints",
                          str(tmp_path / "none")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "ae-16" in run.stderr and "does not exist" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_m1m2_reads_a_fresh_draw_of_q_z_given_x_each_batch(tmp_path):
    """Data.train_std: each batch is train + train_std * N(0, 1) with the trainer's generator, drawn anew (M1+M2
    reads z ~ q(z|x) of the M1 model, as the paper does); without it the batch is the rows themselves."""
    from training.train import Data

    g = torch.Generator().manual_seed(3)
    feats, std = torch.rand(40, 1, 4, 4, generator=g), torch.rand(40, 1, 4, 4, generator=g) * 0.5
    idx = torch.tensor([3, 0, 39, 3])
    plain = Data(feats, feats[:5])
    assert torch.equal(plain.draw(idx, feats[idx], torch.Generator()), feats[idx])
    noisy = Data(feats, feats[:5], train_std=std)
    a = noisy.draw(idx, feats[idx], torch.Generator().manual_seed(1))
    eps = torch.randn((4, 1, 4, 4), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, feats[idx] + std[idx] * eps)
    assert not torch.equal(a[0], a[3])  # the same row twice: two draws
    # end to end: an M2 on 16-D 'codes' trains on the draws, and they change what it learns
    labels = torch.arange(40) % K
    cfg = lambda out: TrainConfig(dataset="mnist", out=str(tmp_path / out), epochs=2, batch_size=8, lr=3e-3,  # noqa: E731
                                  binarize="none", labels_per_class=2, seed=0, device="cpu")
    model_cfg = ModelConfig(family="mlp", hidden_dim=16, hidden_layers=1, latent_dim=3, image_size=4,
                            likelihood="gaussian", gaussian_std=0.3, conditional=True, semi_supervised=True)
    with_noise, _ = train(cfg("a"), model_cfg, data=Data(feats, feats[:5], labels, labels[:5], std), progress=False)
    without, _ = train(cfg("b"), model_cfg, data=Data(feats, feats[:5], labels, labels[:5]), progress=False)
    w = [p for p in with_noise.state_dict().values()]
    assert any(not torch.equal(p, q) for p, q in zip(w, without.state_dict().values()))


@pytest.mark.parametrize("dim, shape", [(16, (1, 4, 4)), (50, (50, 1, 1)), (2, (2, 1, 1))])
def test_m1m2_reads_codes_of_any_size_and_its_mlp_sees_every_dimension(dim, shape):
    """--m1 may name a VAE of any latent size: its codes become an 'image' the MLP backbone flattens back to the
    same D numbers in the same order, and the M1+M2 config built for that size encodes them."""
    import argparse

    from training.semisupervised import as_images, m1m2_configs

    codes = torch.randn(5, dim, generator=torch.Generator().manual_seed(dim))
    images = as_images(codes)
    assert images.shape == (5, *shape) and torch.equal(images.flatten(1), codes)
    args = argparse.Namespace(dataset="mnist", epochs=1, lr=1e-3, labels_per_class=1, class_weight=1.0, seed=0,
                              threads=1, m2_latent=3, hidden=8, feature_std=0.3, m1="vae-x")
    _, model_cfg = m1m2_configs(args, "unused", dim)
    model = Autoencoder(model_cfg).eval()
    with torch.no_grad():
        assert model.classify(images).shape == (5, K) and model.encode(images, torch.zeros(5, dtype=torch.long)).mean.shape == (5, 3)
    assert "vae-x" in model_cfg.description
