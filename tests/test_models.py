"""Every model family x bottleneck x likelihood, tiny configs, checked against torch.distributions."""
from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from models import Autoencoder, CheckpointError, DiagonalGaussian, ModelConfig, PointMass

torch.set_num_threads(1)
B, D, SIZE = 5, 3, 8
# The last field names the variant (config fields on the one Autoencoder): a prior, a flow, or conditional.
EXTRAS = {"standard": {}, "mog": {"prior": "mog"}, "vamp": {"prior": "vamp"}, "iaf": {"flow": "iaf"},
          "cvae": {"conditional": True}, "cvae-iaf-mog": {"conditional": True, "flow": "iaf", "prior": "mog"},
          "cae": {"conditional": True}}
VARIANTS = [
    (family, bottleneck, likelihood, "standard")
    for family in ("conv", "mlp")
    for bottleneck in ("ae", "vae")
    for likelihood in ("bernoulli", "gaussian")
] + [("conv", "vae", "bernoulli", extra) for extra in ("mog", "vamp", "iaf", "cvae", "cvae-iaf-mog")] + [
    ("mlp", "vae", "gaussian", extra) for extra in ("mog", "vamp", "iaf", "cvae")] + [("conv", "ae", "bernoulli", "cae")]
N_CLASSES = 4


def tiny_config(family="conv", bottleneck="vae", likelihood="bernoulli", **kw) -> ModelConfig:
    return ModelConfig(family=family, bottleneck=bottleneck, likelihood=likelihood, latent_dim=D,
                       channels=4, hidden_dim=16, image_size=SIZE, gaussian_std=0.3, flow_hidden=12, flow_context=5,
                       num_classes=N_CLASSES, **kw)


def make_model(family, bottleneck, likelihood, prior="standard", seed=0) -> Autoencoder:
    torch.manual_seed(seed)
    extra = EXTRAS.get(prior, {"prior": prior})
    model = Autoencoder(tiny_config(family, bottleneck, likelihood, prior_components=4, **extra))
    with torch.no_grad():  # a wider posterior than at init, so KL terms differ per dimension
        model.to_latent.bias.normal_(0, 1.0)
        if model.flow is not None:  # and a flow far from the identity it starts near
            for p in model.flow.parameters():
                p.normal_(0, 0.5)
    return model.eval()


def make_labels(model: Autoencoder, seed: int = 2) -> torch.Tensor | None:
    """Class labels for a conditional model's batch, None for the others (which must ignore labels)."""
    return torch.randint(0, N_CLASSES, (B,), generator=gen(seed)) if model.config.conditional else None


def make_batch(likelihood: str, seed: int = 1) -> torch.Tensor:
    """(B, 1, SIZE, SIZE): binary pixels for the Bernoulli decoder (its support), intensities otherwise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((B, 1, SIZE, SIZE), generator=g)
    return torch.bernoulli(x, generator=g) if likelihood == "bernoulli" else x


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(params=VARIANTS, ids=["-".join(v) for v in VARIANTS])
def variant(request):
    family, bottleneck, likelihood, prior = request.param
    model = make_model(family, bottleneck, likelihood, prior)
    return model, make_batch(likelihood), make_labels(model)


# ---- shapes and the shared interface ------------------------------------------------------------
def test_shapes(variant):
    model, x, y = variant
    posterior = model.encode(x, y)
    assert posterior.mean.shape == (B, D)
    assert posterior.std.shape == (B, D)
    z = posterior.sample(gen(0))
    assert z.shape == (B, D)
    assert model.kl(posterior, z).shape == (B,)
    marginal = model.marginal_kl_per_dim(posterior, gen(1))
    assert marginal.shape == (B, D) and torch.isfinite(marginal).all()
    assert model.decode(posterior.mode(), y).shape == (B, 1, SIZE, SIZE)
    out = model(x, labels=y)
    assert out.shape == (B, 1, SIZE, SIZE)
    assert out.min() >= 0 and out.max() <= 1


def test_loss_terms_finite_and_combined(variant):
    model, x, y = variant
    terms = model.loss(x, beta=0.7, generator=gen(3), labels=y)
    assert set(terms) == {"loss", "recon", "kl"}
    for name, value in terms.items():
        assert value.shape == () and torch.isfinite(value), name
    torch.testing.assert_close(terms["loss"], terms["recon"] + 0.7 * terms["kl"])
    if model.closed_form_kl:  # a learned prior's or a flow's one-sample estimate can be negative
        assert terms["kl"] >= 0


def test_recon_matches_torch_distributions(variant):
    """recon = -log p(x|z), summed over pixels, averaged over the batch, z ~ q(z|x) with the same seed."""
    model, x, y = variant
    z = model.encode(x, y).sample(gen(4))
    params = model.decode(z, y)
    if model.config.likelihood == "bernoulli":
        log_px = Bernoulli(logits=params).log_prob(x)
    else:
        log_px = Normal(params, model.config.gaussian_std).log_prob(x)
    expected = -log_px.sum(dim=(1, 2, 3)).mean()
    torch.testing.assert_close(model.loss(x, generator=gen(4), labels=y)["recon"], expected)


def test_forward_is_deterministic_by_default(variant):
    model, x, y = variant
    assert torch.equal(model(x, labels=y), model(x, labels=y))
    torch.testing.assert_close(model(x, labels=y), model.decode_image(model.encode(x, y).mean, y))


def test_save_load_gives_identical_outputs(variant, tmp_path):
    model, x, y = variant
    model.save_pretrained(tmp_path / "ckpt")
    loaded = Autoencoder.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config
    assert not loaded.training
    assert torch.equal(loaded(x, labels=y), model(x, labels=y))
    assert torch.equal(loaded.encode(x, y).std, model.encode(x, y).std)
    z = torch.randn(B, D, generator=gen(5))
    assert torch.equal(loaded.decode(z, y), model.decode(z, y))
    assert torch.equal(loaded.prior_log_prob(z), model.prior_log_prob(z))  # the learned prior is saved too
    if model.config.is_variational:  # the flow too: the same log q(z|x) of the same draw
        torch.testing.assert_close(loaded.importance_log_weights(x, 3, gen(6), y),
                                   model.importance_log_weights(x, 3, gen(6), y))


VAE_VARIANTS = [v for v in VARIANTS if v[1] == "vae"]  # an AE has no density (test_ae_posterior_is_a_point_mass)


@pytest.mark.parametrize("family, bottleneck, likelihood, extra", VAE_VARIANTS, ids=["-".join(v) for v in VAE_VARIANTS])
def test_iwae_bound_is_at_least_the_elbo(family, bottleneck, likelihood, extra):
    """log p(x) >= IWAE_k >= ELBO (Burda et al. 2015, Theorem 1): with many samples the IS estimate of -log p(x)
    lies below the -ELBO estimate, for every prior, flow and conditional variant."""
    model = make_model(family, bottleneck, likelihood, extra)
    x, y = make_batch(likelihood), make_labels(model)
    with torch.no_grad():
        log_w = model.importance_log_weights(x, 4000, gen(12), y)  # (k, B)
        # The ELBO as the training loss computes it (its own draws; closed-form or Monte-Carlo KL), over many seeds.
        elbo = -torch.stack([model.loss(x, generator=gen(100 + i), labels=y)["loss"] for i in range(200)]).mean()
    iwae = torch.logsumexp(log_w, 0) - torch.log(torch.tensor(4000.0))
    assert torch.isfinite(iwae).all()
    assert iwae.mean() >= elbo - 0.05 * elbo.abs()  # the loss's ELBO can not beat the bound on log p(x)
    assert log_w.mean() == pytest.approx(float(elbo), rel=0.05)  # and both estimate the same ELBO


# ---- mlp depth: hidden_layers=1 is pytorch/examples vae/main.py's architecture --------------------
def linear_shapes(model: torch.nn.Module) -> list[tuple[int, int]]:
    return [tuple(m.weight.shape) for m in model.modules() if isinstance(m, torch.nn.Linear)]


def test_mlp_with_one_hidden_layer_is_the_reference_vae():
    """pytorch/examples vae/main.py: fc1 784-400, fc21/fc22 400-20 (here one 400-40 head), fc3 20-400, fc4 400-784."""
    model = Autoencoder(ModelConfig(family="mlp", hidden_dim=400, latent_dim=20, hidden_layers=1))
    assert linear_shapes(model) == [(400, 784), (40, 400), (400, 20), (784, 400)]  # (out, in)
    reference = 784 * 400 + 400 + 400 * 40 + 40 + 20 * 400 + 400 + 400 * 784 + 784
    assert sum(p.numel() for p in model.parameters()) == reference


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_mlp_hidden_layers_per_side(layers):
    model = Autoencoder(tiny_config("mlp", hidden_layers=layers))
    n = SIZE * SIZE
    hidden = [(16, 16)] * (layers - 1)
    assert linear_shapes(model) == [(16, n), *hidden, (2 * D, 16), (16, D), *hidden, (n, 16)]


def test_config_json_without_hidden_layers_loads_as_two(tmp_path):
    """Checkpoints written before the field existed (all shipped ones) keep their architecture."""
    torch.manual_seed(0)
    model = Autoencoder(tiny_config("mlp"))
    assert model.config.hidden_layers == 2
    assert [k for k in model.state_dict() if k.endswith("weight")] == [  # the keys those files hold
        "encoder.net.1.weight", "encoder.net.3.weight", "to_latent.weight",
        "decoder.net.0.weight", "decoder.net.2.weight", "decoder.net.4.weight"]
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["hidden_layers"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = Autoencoder.from_pretrained(tmp_path)  # strict: every key and shape must match
    assert loaded.config == model.config
    x = make_batch("bernoulli")
    assert torch.equal(loaded(x), model.eval()(x))


@pytest.mark.parametrize("family", ["conv", "mlp"])
def test_activation_relu_swaps_every_elu(family):
    """--activation relu gives pytorch/examples' nonlinearity; the default (and configs without the field) stay ELU."""
    def kinds(cfg):
        return sorted({type(m).__name__ for m in Autoencoder(cfg).modules() if isinstance(m, (torch.nn.ELU, torch.nn.ReLU))})

    assert kinds(tiny_config(family)) == ["ELU"]
    assert kinds(tiny_config(family, activation="relu")) == ["ReLU"]
    config = dataclasses.asdict(tiny_config(family))
    del config["activation"]  # a config.json written before the field
    assert ModelConfig.from_dict(config).activation == "elu"
    x = make_batch("bernoulli")
    model = Autoencoder(tiny_config(family, activation="relu"))
    assert torch.isfinite(model.loss(x, generator=gen(0))["loss"])
    assert (model.encoder(x) >= 0).all()  # the encoder's output passed through a ReLU


# ---- the bottleneck: VAE posterior vs references, AE point mass -----------------------------------
@pytest.mark.parametrize("family", ["conv", "mlp"])
def test_vae_kl_matches_torch_distributions(family):
    model, x = make_model(family, "vae", "bernoulli"), make_batch("bernoulli")
    posterior = model.encode(x)
    assert isinstance(posterior, DiagonalGaussian)
    reference = kl_divergence(Normal(posterior.mean, posterior.std), Normal(0.0, 1.0))  # (B, D)
    torch.testing.assert_close(posterior.kl_per_dim(), reference)
    torch.testing.assert_close(posterior.kl(), reference.sum(dim=1))
    terms = model.loss(x, generator=gen(0))
    torch.testing.assert_close(terms["kl"], reference.sum(dim=1).mean())


def test_diagonal_gaussian_against_normal_for_wide_parameters():
    g = gen(6)
    mean, logvar = 3 * torch.randn(4, 7, generator=g), 4 * torch.randn(4, 7, generator=g)
    q = DiagonalGaussian(mean, logvar)
    ref = Normal(mean, torch.exp(0.5 * logvar))
    torch.testing.assert_close(q.kl(), kl_divergence(ref, Normal(0.0, 1.0)).sum(1))
    z = torch.randn(3, 4, 7, generator=g) * 2  # (k, B, D): log_prob sums D and keeps (k, B)
    torch.testing.assert_close(q.log_prob(z), ref.log_prob(z).sum(-1))
    assert q.log_prob(z).shape == (3, 4)


def test_vae_sample_is_seeded():
    posterior = make_model("conv", "vae", "gaussian").encode(make_batch("gaussian"))
    a, b, c = posterior.sample(gen(1)), posterior.sample(gen(1)), posterior.sample(gen(2))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a, posterior.mode())
    model, x = make_model("mlp", "vae", "bernoulli"), make_batch("bernoulli")
    assert torch.equal(model(x, sample_posterior=True, generator=gen(1)), model(x, sample_posterior=True, generator=gen(1)))
    assert not torch.equal(model(x, sample_posterior=True, generator=gen(1)), model(x))


@pytest.mark.parametrize("family", ["conv", "mlp"])
def test_ae_posterior_is_a_point_mass(family):
    model, x = make_model(family, "ae", "bernoulli"), make_batch("bernoulli")
    posterior = model.encode(x)
    assert isinstance(posterior, PointMass)
    assert torch.equal(posterior.sample(gen(1)), posterior.mode())
    assert torch.equal(posterior.sample(gen(1)), posterior.sample(gen(2)))
    assert torch.equal(posterior.kl(), torch.zeros(B))
    assert torch.equal(posterior.std, torch.zeros(B, D))
    terms = model.loss(x, beta=3.0, generator=gen(0))
    assert terms["kl"].item() == 0.0
    assert torch.equal(terms["loss"], terms["recon"])
    with pytest.raises(ValueError, match="VAE"):
        model.importance_log_weights(x, k=2)


def test_free_bits_clamp_each_dimension_from_below():
    """Kingma et al. 2016 eq. 15: a dim whose batch-mean KL is below lambda contributes lambda."""
    model, x = make_model("conv", "vae", "bernoulli"), make_batch("bernoulli")
    kl_per_dim = model.encode(x).kl_per_dim().mean(dim=0)  # (D,)
    threshold = kl_per_dim.median().item()
    assert (kl_per_dim < threshold).any() and (kl_per_dim > threshold).any()  # both sides exercised
    beta = 0.5
    terms = model.loss(x, beta=beta, free_bits=threshold, generator=gen(7))
    plain = model.loss(x, beta=beta, generator=gen(7))
    expected_kl_term = sum(max(k, threshold) for k in kl_per_dim.tolist())
    torch.testing.assert_close(terms["loss"], terms["recon"] + beta * torch.tensor(expected_kl_term))
    torch.testing.assert_close(terms["kl"], plain["kl"])  # the reported KL is the true one
    torch.testing.assert_close(terms["recon"], plain["recon"])
    assert terms["loss"] > plain["loss"]


def test_importance_weights_shape_and_bound():
    model, x = make_model("mlp", "vae", "gaussian"), make_batch("gaussian")
    log_w = model.importance_log_weights(x, k=6, generator=gen(0))
    assert log_w.shape == (6, B) and torch.isfinite(log_w).all()
    # E[log w] is the ELBO; over 6 samples, compare with the analytic-KL ELBO loosely.
    elbo = -model.loss(x, generator=gen(0))["loss"]
    assert abs(log_w.mean() - elbo) < 0.5 * abs(elbo) + 20


# ---- config validation ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [
    {"family": "resnet"}, {"bottleneck": "flow"}, {"likelihood": "poisson"}, {"latent_dim": 0},
    {"latent_dim": -3}, {"latent_dim": 2.5}, {"latent_dim": "16"}, {"channels": 0}, {"hidden_dim": 0},
    {"hidden_layers": 0}, {"hidden_layers": 1.0}, {"activation": "gelu"},
    {"image_size": 30}, {"gaussian_std": 0.0}, {"gaussian_std": -1.0}, {"gaussian_std": float("nan")},
    {"prior": "cauchy"}, {"prior_components": 0}, {"bottleneck": "ae", "prior": "vamp"},
    {"flow": "maf"}, {"flow_steps": 0}, {"bottleneck": "ae", "flow": "iaf"}, {"conditional": "yes"},
    {"num_classes": 0}, {"conditional": True, "prior": "vamp"}, {"title": 3},
])
def test_model_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        ModelConfig(**bad)


def test_model_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({**dataclasses.asdict(ModelConfig()), "dropout": 0.1})
    assert ModelConfig.from_dict(json.loads(ModelConfig(latent_dim=2).to_json())) == ModelConfig(latent_dim=2)


# ---- checkpoint files: no pickle, and one clear error for every kind of damage ----------------------
@pytest.fixture
def saved(tmp_path) -> Path:
    folder = tmp_path / "ckpt"
    make_model("conv", "vae", "bernoulli").save_pretrained(folder, metrics={"note": "test"})
    return folder


def test_checkpoint_is_json_and_safetensors_without_pickle(saved, monkeypatch):
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "metrics.json", "model.safetensors"]
    assert json.loads((saved / "config.json").read_text())["latent_dim"] == D
    raw = (saved / "model.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])  # safetensors: u64 header size, JSON header, raw tensor bytes
    header = json.loads(raw[8 : 8 + header_len])
    assert all(v["dtype"] == "F32" for k, v in header.items() if k != "__metadata__")
    assert b"\x80\x04" not in raw[:2] and not raw.startswith(b"PK")  # neither a pickle nor a torch zip
    import pickle

    def refuse(*a, **k):
        raise AssertionError("checkpoint loading must not unpickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    Autoencoder.from_pretrained(saved)


def _config_edit(**changes):
    def edit(folder: Path) -> str:
        path = folder / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
        return "config.json"
    return edit


def _missing_folder(folder: Path) -> str:
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    return folder.name


def _delete(name):
    def edit(folder: Path) -> str:
        (folder / name).unlink()
        return name
    return edit


def _truncate(folder: Path) -> str:
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path.name


def _garbage(name):
    def edit(folder: Path) -> str:
        (folder / name).write_bytes(bytes(range(256)) * 8)
        return name
    return edit


DAMAGE = {
    "missing-folder": _missing_folder,
    "missing-config": _delete("config.json"),
    "missing-weights": _delete("model.safetensors"),
    "truncated-weights": _truncate,
    "garbage-weights": _garbage("model.safetensors"),
    "garbage-config": _garbage("config.json"),
    "config-latent-dim-mismatch": _config_edit(latent_dim=D + 1),
    "config-family-mismatch": _config_edit(family="mlp"),
    "config-bottleneck-mismatch": _config_edit(bottleneck="ae"),
    "config-invalid-latent-dim": _config_edit(latent_dim=-1),
    "config-invalid-type": _config_edit(latent_dim="3"),
    "config-invalid-choice": _config_edit(likelihood="poisson"),
    "config-unknown-key": _config_edit(dropout=0.5),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_bad_checkpoint_gives_one_clear_error(saved, damage):
    name = DAMAGE[damage](saved)
    with pytest.raises(CheckpointError) as info:
        Autoencoder.from_pretrained(saved)
    message = str(info.value)
    assert name in message, message
    assert "make checkpoints" in message, message
    assert "\n" not in message
    # One error, not a chain of tracebacks: the low-level cause is suppressed.
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)


def test_float16_weights_halve_the_file_and_load_as_float32(tmp_path):
    model, x = make_model("conv", "vae", "bernoulli"), make_batch("bernoulli")
    model.save_pretrained(tmp_path / "f32")
    model.save_pretrained(tmp_path / "f16", dtype=torch.float16)
    size = lambda name: (tmp_path / name / "model.safetensors").stat().st_size  # noqa: E731
    assert size("f16") < 0.6 * size("f32")
    loaded = Autoencoder.from_pretrained(tmp_path / "f16")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, model.state_dict()[k].half().float()), k  # exactly the rounded weights
    torch.testing.assert_close(loaded(x), model(x), rtol=1e-2, atol=1e-2)


# ---- priors (models/prior.py): one interface, checked against torch.distributions ----------------------
def mixture_reference(log_weights, means, logvars):
    from torch.distributions import Categorical, Independent, MixtureSameFamily

    return MixtureSameFamily(Categorical(logits=log_weights), Independent(Normal(means, (0.5 * logvars).exp()), 1))


@pytest.mark.parametrize("prior", ["standard", "mog", "vamp"])
def test_prior_log_prob_is_torch_distributions_mixture(prior):
    model = make_model("conv", "vae", "bernoulli", prior)
    with torch.no_grad():
        for p in model.prior.parameters():  # away from the initial values, so every parameter matters
            p.add_(0.3 * torch.randn(p.shape, generator=gen(7)))
        log_w, means, logvars = model.prior.components(model.encode, torch.zeros(1))
        z = 2 * torch.randn(4, B, D, generator=gen(8))
        torch.testing.assert_close(model.prior_log_prob(z), mixture_reference(log_w, means, logvars).log_prob(z))
        if prior == "standard":
            torch.testing.assert_close(model.prior_log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1))
        if prior == "vamp":  # the mixture of the encoder's posteriors of the pseudo-inputs, equally weighted
            q = model.encode(torch.sigmoid(model.prior.pseudo_inputs))
            torch.testing.assert_close(means, q.mean)
            torch.testing.assert_close(log_w.exp(), torch.full((4,), 0.25))


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_prior_samples_follow_the_prior(prior):
    model = make_model("mlp", "vae", "gaussian", prior)
    with torch.no_grad():
        z = model.sample_prior(20_000, generator=gen(9))
        log_w, means, logvars = model.prior.components(model.encode, torch.zeros(1))
        ref = mixture_reference(log_w, means, logvars)
        torch.testing.assert_close(z.mean(0), ref.mean, atol=0.05, rtol=0)
        torch.testing.assert_close(z.var(0), ref.variance, atol=0.05, rtol=0.05)


def test_monte_carlo_kl_with_the_standard_prior_converges_to_the_closed_form():
    """The estimator the learned priors use, log q(z|x) - log p(z) at z ~ q, on the standard prior: its mean over
    many draws is the closed-form KL (Kingma & Welling 2014, Appendix B)."""
    model = make_model("conv", "vae", "bernoulli")
    x = make_batch("bernoulli")
    with torch.no_grad():
        posterior = model.encode(x)
        z = posterior.mean + posterior.std * torch.randn(20_000, B, D, generator=gen(10))  # (20000, B, D)
        estimate = (posterior.log_prob(z) - model.prior_log_prob(z)).mean(0)
    torch.testing.assert_close(estimate, posterior.kl(), atol=0.05, rtol=0.02)


def test_learned_priors_use_the_monte_carlo_kl_and_refuse_free_bits():
    model = make_model("conv", "vae", "bernoulli", "mog")
    x = make_batch("bernoulli")
    terms = model.loss(x, generator=gen(11))
    posterior = model.encode(x)
    z = posterior.sample(gen(11))
    torch.testing.assert_close(terms["kl"], (posterior.log_prob(z) - model.prior_log_prob(z)).mean())
    with pytest.raises(ValueError, match="free bits"):
        model.loss(x, free_bits=0.1, generator=gen(11))
    model.train()  # the learned prior gets gradients from the loss
    model.loss(x, generator=gen(11))["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prior.parameters())


# ---- KL per dimension: the posterior's and the prior's marginals, the same figure for every variant --------------
@pytest.mark.parametrize("family", ["conv", "mlp"])
def test_marginal_kl_with_the_standard_prior_is_the_closed_form(family):
    model, x = make_model(family, "vae", "bernoulli"), make_batch("bernoulli")
    posterior = model.encode(x)
    reference = kl_divergence(Normal(posterior.mean, posterior.std), Normal(0.0, 1.0))  # (B, D)
    torch.testing.assert_close(model.marginal_kl_per_dim(posterior), reference)
    assert model.marginal_kl_per_dim(make_model(family, "ae", "bernoulli").encode(x)).abs().max() == 0


def marginal_kl_reference(z: torch.Tensor, log_q: torch.Tensor, log_w, means, logvars) -> torch.Tensor:
    """Monte-Carlo E_q[log q(z_d) - log p(z_d)] over draws z (N, B, D) with their 1-D log densities log_q (N, B, D),
    p(z_d) the d-th marginal of the prior as torch.distributions' 1-D MixtureSameFamily."""
    from torch.distributions import Categorical, MixtureSameFamily

    out = torch.empty(z.shape[1:])
    for d in range(z.shape[-1]):
        p = MixtureSameFamily(Categorical(logits=log_w), Normal(means[:, d], (0.5 * logvars[:, d]).exp()))
        out[:, d] = (log_q[..., d] - p.log_prob(z[..., d])).mean(0)
    return out


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_marginal_kl_with_a_learned_prior_matches_monte_carlo(prior):
    """Gauss-Hermite quadrature of the cross-entropy against 100,000 draws of q scored by torch.distributions."""
    model, x = make_model("conv", "vae", "bernoulli", prior), make_batch("bernoulli")
    with torch.no_grad():
        for p in model.prior.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen(12)))
        posterior = model.encode(x)
        log_w, means, logvars = model.prior.components(model.encode, x)
        q = Normal(posterior.mean, posterior.std)
        z = q.sample((100_000,))
        reference = marginal_kl_reference(z, q.log_prob(z), log_w, means, logvars)
        estimate = model.marginal_kl_per_dim(posterior)
    torch.testing.assert_close(estimate, reference, atol=0.02, rtol=0.01)
    assert (estimate > -1e-5).all()  # a KL


def test_marginal_kl_of_a_flow_matches_a_kernel_density_reference():
    """A flow's marginals have no density: the spacing entropy estimate on 256 draws against scipy's Gaussian KDE
    (an independent estimator: fit on 5,000 draws, scored on 2,000 others), with a mixture prior, so neither term
    is a closed form."""
    from scipy.stats import gaussian_kde

    model, x = make_model("conv", "vae", "bernoulli", "cvae-iaf-mog"), make_batch("bernoulli")
    y = make_labels(model)
    with torch.no_grad():
        posterior = model.encode(x, y)
        log_w, means, logvars = model.prior.components(model.encode, x)
        fit, z = posterior.transform(torch.randn(7_000, B, D, generator=gen(13)))[0].double().split([5_000, 2_000])
        log_q = torch.empty_like(z)
        for b in range(B):
            for d in range(D):
                log_q[:, b, d] = torch.as_tensor(gaussian_kde(fit[:, b, d].numpy()).logpdf(z[:, b, d].numpy()))
        reference = marginal_kl_reference(z.float(), log_q.float(), log_w, means, logvars)
        estimate = model.marginal_kl_per_dim(posterior, gen(14))
    torch.testing.assert_close(estimate, reference, atol=0.1, rtol=0.05)
    with pytest.raises(ValueError, match="marginal_kl_per_dim"):
        posterior.kl_per_dim()


# ---- the IAF posterior (models/flow.py) -------------------------------------------------------------
def test_iaf_log_det_equals_autograd_jacobian():
    """log q(z_T|x) = log N(z_0) - log|det dz_T/dz_0|: the flow's summed log gates against the log-determinant of
    the Jacobian that torch.autograd.functional.jacobian computes, on a tiny latent, for several x."""
    from torch.autograd.functional import jacobian

    model = make_model("conv", "vae", "bernoulli", "iaf")
    x = make_batch("bernoulli")
    with torch.no_grad():
        posterior = model.encode(x)
    z0 = torch.randn(B, D, generator=gen(13))
    for i in range(B):
        h = posterior.context[i]
        J = jacobian(lambda v: model.flow(v, h)[0], z0[i])  # (D, D)
        _, log_det = model.flow(z0[i], h)
        torch.testing.assert_close(log_det, torch.linalg.slogdet(J)[1], atol=1e-5, rtol=1e-5)


def test_iaf_steps_are_autoregressive_and_invertible():
    model = make_model("mlp", "vae", "gaussian", "iaf")
    from torch.autograd.functional import jacobian

    h = torch.randn(5, generator=gen(14))
    v = torch.randn(D, generator=gen(15))
    for t, made in enumerate(model.flow.steps):
        J = jacobian(lambda u: torch.cat(made(u, h)), v)  # (2D, D): d[m, s]/dz
        order = torch.arange(D) if t % 2 == 0 else torch.arange(D).flip(0)
        later_or_same = order[:, None] <= order[None, :]  # output i may only read inputs of an earlier order
        assert (J[:D][later_or_same] == 0).all() and (J[D:][later_or_same] == 0).all()
    with torch.no_grad():
        x = make_batch("gaussian")
        posterior = model.encode(x)
        z = posterior.sample(gen(16))
        cached = posterior.log_prob(z)  # the value computed while drawing z
        fresh = posterior.log_prob(z.clone())  # a different tensor: the flow is inverted
        z0, _ = model.flow.inverse(z, posterior.context)
        torch.testing.assert_close(model.flow(z0, posterior.context)[0], z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fresh, cached, atol=1e-4, rtol=1e-5)


def test_iaf_refuses_free_bits_and_trains_the_flow():
    model, x = make_model("conv", "vae", "bernoulli", "iaf"), make_batch("bernoulli")
    with pytest.raises(ValueError, match="free bits"):
        model.loss(x, free_bits=0.1, generator=gen(17))
    model.train()
    model.loss(x, generator=gen(17))["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.flow.parameters())


# ---- the conditional model (CVAE) -----------------------------------------------------------------------
def test_cvae_decode_changes_with_the_label_and_needs_it():
    model = make_model("conv", "vae", "bernoulli", "cvae")
    z = torch.randn(1, D, generator=gen(18)).expand(N_CLASSES, D)
    pictures = model.decode_image(z, torch.arange(N_CLASSES))  # the same z, every class
    for a in range(N_CLASSES):
        for b in range(a):
            assert not torch.allclose(pictures[a], pictures[b]), (a, b)
    x = make_batch("bernoulli")
    for call in (lambda: model.encode(x), lambda: model.decode(z), lambda: model.loss(x, generator=gen(0))):
        with pytest.raises(ValueError, match="class label"):
            call()
    with pytest.raises(ValueError, match="0..3"):
        model.decode(z, torch.full((N_CLASSES,), N_CLASSES))
    # the encoder reads the label too: the same image under two labels gets two posteriors
    assert not torch.allclose(model.encode(x, torch.zeros(B, dtype=torch.long)).mean,
                              model.encode(x, torch.ones(B, dtype=torch.long)).mean)
    # an unconditional model ignores labels
    plain = make_model("conv", "vae", "bernoulli")
    assert torch.equal(plain.decode(z, torch.arange(N_CLASSES)), plain.decode(z))


# ---- beta-TCVAE: the total-correlation penalty (Chen et al. 2018) ---------------------------------
def reference_tc(mean: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, n_data: int) -> float:
    """Minibatch-weighted sampling, written out with torch.distributions.Normal one pair (i, j) at a time."""
    m, d = mean.shape
    total = 0.0
    for i in range(m):
        joint, dims = [], [[] for _ in range(d)]
        for j in range(m):
            comp = Normal(mean[j], (0.5 * logvar[j]).exp()).log_prob(z[i])  # (D,) log q(z_id | x_j)
            joint.append(comp.sum())
            for k in range(d):
                dims[k].append(comp[k])
        log_nm = torch.log(torch.tensor(float(n_data * m)))
        log_qz = torch.logsumexp(torch.stack(joint), 0) - log_nm
        log_prod = sum(torch.logsumexp(torch.stack(dk), 0) - log_nm for dk in dims)
        total += float(log_qz - log_prod)
    return total / m


def test_total_correlation_is_the_minibatch_weighted_estimate():
    from models.autoencoder import total_correlation

    g = gen(3)
    mean, logvar = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g) * 0.3 - 1
    post = DiagonalGaussian(mean, logvar)
    z = post.sample(gen(4))
    assert abs(float(total_correlation(post, z, 1000)) - reference_tc(mean, logvar, z, 1000)) < 1e-4
    with pytest.raises(ValueError, match="training set"):
        total_correlation(post, z, 3)


def test_total_correlation_is_near_zero_for_independent_codes_and_large_for_copies():
    from models.autoencoder import total_correlation

    g = gen(5)
    mean = torch.randn(2000, 2, generator=g)
    logvar = torch.full_like(mean, 2 * torch.log(torch.tensor(0.1)).item())  # posterior std 0.1
    independent = DiagonalGaussian(mean, logvar)
    copied = DiagonalGaussian(torch.stack([mean[:, 0], mean[:, 0]], 1), logvar)
    # With the batch as the whole data set (N = M), the estimator's 1 / (N M) weights put it (D - 1) log M above the
    # TC of the batch's mixture q(z) = mean_j q(z|x_j); that offset is free of the parameters (no gradient).
    offset = (2 - 1) * torch.log(torch.tensor(2000.0)).item()
    tc_ind = float(total_correlation(independent, independent.sample(gen(6)), 2000)) - offset
    tc_copy = float(total_correlation(copied, copied.sample(gen(6)), 2000)) - offset
    # Two copies of one N(0, 1) code under noise of std 0.1 share I = 0.5 log(1 + 1 / 0.02) = 1.97 nats
    assert abs(tc_ind) < 0.25 and 1.5 < tc_copy < 2.3


def test_tc_beta_weights_the_total_correlation_alone():
    model, x = make_model("mlp", "vae", "bernoulli"), make_batch("bernoulli")
    plain = model.loss(x, beta=1.0, generator=gen(7))
    tc = model.loss(x, beta=1.0, tc_beta=6.0, dataset_size=100, generator=gen(7))
    torch.testing.assert_close(tc["kl"], plain["kl"])
    torch.testing.assert_close(tc["recon"], plain["recon"])
    torch.testing.assert_close(tc["loss"], plain["loss"] + 5.0 * tc["tc"])
    both = model.loss(x, beta=2.0, tc_beta=6.0, dataset_size=100, generator=gen(7))
    torch.testing.assert_close(both["loss"], both["recon"] + 2.0 * both["kl"] + 4.0 * both["tc"])
    for bad in (make_model("mlp", "ae", "bernoulli"), make_model("mlp", "vae", "bernoulli", "iaf")):
        with pytest.raises(ValueError, match="total-correlation"):
            bad.loss(x, tc_beta=6.0, dataset_size=100)
