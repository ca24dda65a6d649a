"""Load every model and the atlas of each dataset once, with clear messages for what is missing."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models import Autoencoder, CheckpointError, read_metrics

from . import latent, scorecard
from .catalog import (APP_MODELS, REGENERATE, SHIPPED, checkpoint_root, default_pair, find_datasets, find_models,
                      read_atlas, read_info)
from .images import Format, InputError
from .plot import Scatter

__all__ = ["APP_MODELS", "REGENERATE", "DatasetBundle", "ModelView", "checkpoint_root",
           "default_device", "load_all", "load_dataset", "load_more"]
COLLAPSED_KL = 0.01  # nats: a VAE dimension with less average KL carries (almost) no information


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class ModelView:
    """One model with everything the app derives from its atlas codes and metrics.json."""

    name: str
    model: Autoencoder
    codes: np.ndarray  # (N, D) atlas posterior means / AE codes
    map_xy: np.ndarray  # (N, 2) UMAP (16-D models) or the codes themselves (2-D models)
    ranges: np.ndarray  # (D, 2) slider ranges: 0.5% and 99.5% quantiles of the atlas codes
    nn_scale: float  # median nearest-neighbour distance among atlas codes
    far: float  # 95% quantile of those distances: beyond it a code is far from every data code
    kl_per_dim: np.ndarray | None  # (D,) VAE only: KL of each dimension's marginals (diagnostics.dimension_kl)
    order: np.ndarray  # (D,) dimension order for the sliders: by KL, largest first (VAE); natural (AE)
    gmm: dict[str, np.ndarray] | None  # AE only: weights (K,), means (K, D), covariances (K, D, D)
    scatter: Scatter
    metrics: dict = field(default_factory=dict)

    @property
    def latent_dim(self) -> int:
        return self.codes.shape[1]

    @property
    def is_vae(self) -> bool:
        return self.model.config.is_variational

    def collapsed(self) -> np.ndarray:
        if self.kl_per_dim is None:
            return np.zeros(self.latent_dim, bool)
        return self.kl_per_dim < COLLAPSED_KL

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def title(self) -> str:
        """The model's human name (config `title`), else its folder name in capitals."""
        return self.model.config.title or self.name.upper()

    @property
    def description(self) -> str:
        return self.model.config.description

    @property
    def num_classes(self) -> int:
        return self.model.config.num_classes

    @property
    def format(self) -> Format:
        c = self.model.config
        return Format(c.image_size, c.image_channels)

    def to_tensor(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W) or (B, H, W, C) images -> float (B, C, H, W) in [0, 1] on the model's device; an image of
        another size or channel count than the model's gets a clear message."""
        a = np.asarray(images)
        want = self.format.shape
        if a.shape[1:] != want:
            raise InputError(f"{self.title} takes {self.format.describe()} images {want}, got {a.shape[1:]}.")
        x = torch.tensor(a, device=self.device).float().div(255.0)  # a copy: atlas arrays may be read-only
        return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)

    @torch.inference_mode()
    def posterior_samples(self, image: np.ndarray, n: int, seed: int, labels=None) -> np.ndarray:
        """n draws z ~ q(z|x) of one uint8 image (H, W[, C]), (n, D), from the model's own posterior (a flow's too)."""
        x = self.to_tensor(np.asarray(image)[None])
        posterior = self.model.encode(x, self._labels(labels, 1))
        g = torch.Generator(self.device).manual_seed(seed)
        return torch.cat([posterior.sample(g) for _ in range(n)]).float().cpu().numpy()

    @torch.inference_mode()
    def prior_samples(self, n: int, seed: int, temperature: float = 1.0) -> np.ndarray:
        """n codes z ~ p(z) with every component's spread times `temperature`, (n, D): the model's own prior
        (standard, MoG or VampPrior); an AE has none, so its codes are N(0, T^2 I), the naive guess."""
        g = torch.Generator(self.device).manual_seed(seed)
        if not self.is_vae:
            return (temperature * torch.randn((n, self.latent_dim), generator=g, device=self.device)).cpu().numpy()
        return self.model.sample_prior(n, generator=g, temperature=temperature).float().cpu().numpy()

    @property
    def conditional(self) -> bool:
        """A class-conditional model (CVAE): encode and decode need each image's class."""
        return self.model.config.conditional

    def _labels(self, labels, n: int) -> torch.Tensor | None:
        """(n,) class labels as a tensor for a conditional model (one label is repeated), None for the others."""
        if not self.conditional:
            return None
        if labels is None:
            raise InputError(f"{self.name} is class-conditional: choose the class it should use.")
        y = np.broadcast_to(np.asarray(labels, np.int64).reshape(-1), (n,)) if np.size(labels) == 1 else labels
        y = np.asarray(y, np.int64).reshape(-1)
        k = self.model.config.num_classes
        if len(y) != n or (len(y) and (y.min() < 0 or y.max() >= k)):
            raise InputError(f"{self.name} needs {n} class labels in 0..{k - 1}.")
        return torch.tensor(y, device=self.device)

    @property
    def semi_supervised(self) -> bool:
        """M2: a conditional model with a classifier q(y|x), which can label an image itself."""
        return self.model.config.semi_supervised

    @torch.inference_mode()
    def classify(self, images: np.ndarray) -> np.ndarray:
        """M2's q(y|x) of uint8 images: class probabilities (B, num_classes)."""
        return self.model.classify(self.to_tensor(images)).softmax(1).float().cpu().numpy()

    @torch.inference_mode()
    def encode(self, images: np.ndarray, labels=None) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (B, H, W) or (B, H, W, C) -> posterior mean (B, D), std (B, D) (std is 0 for the AE); `labels`: a
        conditional model's classes (one per image, or one for all)."""
        x = self.to_tensor(images)
        posterior = self.model.encode(x, self._labels(labels, len(x)))
        return posterior.mean.float().cpu().numpy(), posterior.std.float().cpu().numpy()

    @torch.inference_mode()
    def decode(self, z: np.ndarray, labels=None) -> np.ndarray:
        """(B, D) codes -> float images E[x|z] in [0, 1]: (B, H, W) grayscale or (B, H, W, C) RGB."""
        zt = torch.as_tensor(np.atleast_2d(np.asarray(z, np.float32)), device=self.device)
        x = self.model.decode_image(zt, self._labels(labels, len(zt))).float()
        return (x[:, 0] if x.shape[1] == 1 else x.permute(0, 2, 3, 1)).cpu().numpy()


@dataclass
class DatasetBundle:
    """The atlas of one dataset and whichever of its models loaded (every model folder: explorer.catalog.find_models)."""

    key: str
    root: Path
    images: np.ndarray | None = None  # (N, H, W) or (N, H, W, 3) uint8
    info: dict = field(default_factory=dict)  # dataset.json: title, classes, image format, upload preprocessing
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    models: dict[str, ModelView] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    scorecard: dict | None = None  # scorecard.json (training/scorecard.py), read by the Scorecard and Anomaly tabs
    sweep: dict | None = None  # sweep.json (training/sweep.py): the Scorecard tab's latent-size section
    semisupervised: dict | None = None  # semisupervised.json (training/semisupervised.py): the few-label section
    factors: np.ndarray | None = None  # (N, K) int64: the atlas images' known factors of variation, if any
    factor_names: list[str] = field(default_factory=list)
    _atlas: dict | None = field(default=None, repr=False)  # every array of atlas.npz

    @property
    def mean_image(self) -> np.ndarray:
        """The mean atlas image, float (H, W[, C]) in [0, 1]: where the imputation chains start."""
        return self.images.astype(np.float64).mean(0) / 255.0

    @property
    def pair(self) -> tuple[str, str]:
        """The Model A and Model B this dataset opens with (explorer.catalog.default_pair)."""
        return default_pair(self.info)

    @property
    def title(self) -> str:
        title = self.info.get("title")
        return title if isinstance(title, str) and title else SHIPPED.get(self.key, self.key)

    @property
    def format(self) -> Format:
        """The dataset's image format: the atlas images' shape, and dataset.json's upload preprocessing (else digit
        for grayscale, photo for colour)."""
        if self.images is not None:
            size = self.images.shape[1]
            channels = 1 if self.images.ndim == 3 else self.images.shape[3]
        else:
            size, channels = int(self.info.get("image_size", 28)), int(self.info.get("image_channels", 1))
        pre = self.info.get("preprocess")
        return Format(size, channels, pre if pre in ("digit", "photo") else ("digit" if channels == 1 else "photo"))

    def atlas_array(self, key: str) -> np.ndarray | None:
        """An array of atlas.npz by its key (e.g. "vae-16__std"), None where the atlas has none."""
        return None if self._atlas is None else self._atlas.get(key)

    def require(self, *names: str) -> list[ModelView]:
        """The named models, or a LookupError whose message says what is missing and how to fix it."""
        missing = [n for n in names if n not in self.models]
        if missing or self.images is None:
            what = ", ".join(missing) if missing else "atlas.npz"
            raise LookupError(
                f"{self.title}: {what} not available ({'; '.join(self.problems) or 'missing'}). "
                f"Regenerate the checkpoints with `{REGENERATE}`."
            )
        return [self.models[n] for n in names]

    def status(self) -> str:
        if not self.problems:
            return f"{self.title}: {len(self.models)} models and the atlas loaded ({len(self.images)} test images)."
        return f"**{self.title}: missing or unusable** — " + "; ".join(self.problems) + f". Run `{REGENERATE}`."


def load_dataset(key: str, root: Path, device: torch.device | None = None, names=None) -> DatasetBundle:
    """Load atlas + models of one dataset (`names`, default every model folder and the app's four); never raises
    for missing files, records them in .problems."""
    device = device or default_device()
    b = DatasetBundle(key=key, root=root / key, info=read_info(root / key))
    atlas = b._atlas = _read_atlas(b)  # kept: models named later load from it (load_more)
    b.scorecard = scorecard.load(b.root / "scorecard.json")
    b.sweep = scorecard.load(b.root / "sweep.json")
    b.semisupervised = scorecard.load(b.root / "semisupervised.json")
    if atlas is None:
        b.images = None
    names = sorted(set(APP_MODELS) | set(find_models(b.root))) if names is None else sorted(set(names) | set(b.pair))
    if key not in SHIPPED:  # a dataset of one's own may hold any models: the app's four are not expected of it
        names = [n for n in names if n in find_models(b.root)]
    _load_models(b, names, atlas, device)
    return b


def load_more(b: DatasetBundle, names=None, device: torch.device | None = None) -> list[str]:
    """Load model folders of the dataset that are not loaded yet (`names`, default every one): the app loads a
    model when a request first names it. Names that are not model folders, or failed before, are skipped (a
    request for them then gets require()'s message). Returns the names loaded."""
    found = set(find_models(b.root))
    wanted = [n for n in (sorted(found) if names is None else names)
              if n in found and n not in b.models and not any(p.startswith(f"{n}:") for p in b.problems)]
    if wanted and b.images is not None:
        atlas = b._atlas if b._atlas is not None else _read_atlas(b)
        _load_models(b, wanted, atlas, device or default_device())
    return wanted


def _read_atlas(b: DatasetBundle) -> dict | None:
    atlas_path = b.root / "atlas.npz"
    if not atlas_path.is_file():
        b.problems.append(f"{atlas_path} is missing")
        return None
    try:
        atlas = read_atlas(atlas_path)
        b.images, b.labels = atlas["images"], atlas["labels"].astype(np.int64)
        names = [str(c) for c in atlas["class_names"]]
        n_classes = int(b.labels.max()) + 1 if len(b.labels) else 0
        b.class_names = names + [str(c) for c in range(len(names), n_classes)]  # an atlas without every name
        if "factors" in atlas:  # known factors of variation (dSprites): (N, K) indices and their names
            b.factors = atlas["factors"].astype(np.int64)
            b.factor_names = [str(c) for c in atlas["factor_names"]]
        return atlas
    except Exception as e:  # corrupt or incomplete file
        b.problems.append(f"{atlas_path} is unreadable ({type(e).__name__}: {e})")
        return None


def _load_models(b: DatasetBundle, names, atlas: dict | None, device: torch.device) -> None:
    for name in names:
        folder = b.root / name
        try:
            model = Autoencoder.from_pretrained(folder, device=device)
        except CheckpointError as e:
            b.problems.append(f"{name}: {str(e).split(';')[0]}")
            continue
        if atlas is None:
            continue
        try:
            view = _view(name, model, atlas, read_metrics(folder), b.labels)
        except (KeyError, ValueError) as e:
            b.problems.append(f"{name}: atlas.npz does not match the model ({e})")
            continue
        # first-call costs (kernel set-up, the scatter's base picture) now, not in a request
        view.decode(view.encode(b.images[:1], b.labels[:1])[0], b.labels[:1])
        view.scatter.base()
        b.models[name] = view  # last: a request sees a model only once it is ready


def _view(name: str, model: Autoencoder, atlas: dict, metrics: dict, labels: np.ndarray) -> ModelView:
    codes = atlas[f"{name}__mean"].astype(np.float32)
    d = model.config.latent_dim
    if codes.ndim != 2 or codes.shape[1] != d:
        raise ValueError(f"{name}__mean has shape {codes.shape}, the model has latent_dim {d}")
    map_xy = atlas[f"{name}__umap"].astype(np.float32) if d > 2 else codes
    kl = None
    order = np.arange(d)
    if model.config.is_variational:
        from .diagnostics import dimension_kl

        kl = dimension_kl(dataclasses.asdict(model.config), metrics, codes, atlas.get(f"{name}__std"))
    if kl is not None:
        order = np.argsort(-kl, kind="stable")
    gmm = None
    if not model.config.is_variational:
        gmm = {k: atlas[f"{name}__gmm_{k}"].astype(np.float64) for k in ("weights", "means", "covariances")}
    nn_median, nn_q95 = latent.nn_distance_quantiles(codes, (0.5, 0.95))
    return ModelView(
        name=name, model=model, codes=codes, map_xy=map_xy, ranges=latent.quantile_ranges(codes),
        nn_scale=float(nn_median), far=float(nn_q95), kl_per_dim=kl, order=order, gmm=gmm,
        scatter=Scatter(map_xy, labels), metrics=metrics,
    )


def load_all(root: Path | None = None, device: torch.device | None = None, names=None) -> dict[str, DatasetBundle]:
    root = Path(root) if root is not None else checkpoint_root()
    return {key: load_dataset(key, root, device, names) for key in find_datasets(root)}


@torch.inference_mode()
def add_model(b: DatasetBundle, name: str, folder: Path, train_images: np.ndarray | None = None,
              device: torch.device | None = None) -> ModelView:
    """Load a model folder from outside the dataset folder (a Playground run) into the bundle under `name`, with
    what the atlas would hold for it: its codes of the atlas images, a 2-D map (its PCA where the model has more
    than 2 dimensions: UMAP is too slow for a click) and, for an AE, the GMM of its codes of `train_images`
    (uint8, the run's training data). Returns the view; CheckpointError or ValueError when it does not fit."""
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    if b.images is None:
        raise LookupError(f"{b.title}: atlas.npz is missing")
    model = Autoencoder.from_pretrained(folder, device=device or default_device())
    c = model.config
    if (c.image_size, c.image_channels) != (b.format.size, b.format.channels):
        raise ValueError(f"{folder} takes {c.image_size}x{c.image_size}x{c.image_channels} images; {b.title} has "
                         f"{b.format.describe()} images")
    dev = next(model.parameters()).device

    def encode(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        means, stds = [], []
        for start in range(0, len(images), 1000):
            x = torch.tensor(images[start:start + 1000], device=dev).float().div(255.0)
            x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
            post = model.encode(x)
            means.append(post.mean.float().cpu().numpy())
            stds.append(post.std.float().cpu().numpy())
        return np.concatenate(means), np.concatenate(stds)

    mean, std = encode(b.images)
    atlas = {f"{name}__mean": mean, f"{name}__std": std}
    if c.latent_dim > 2:
        atlas[f"{name}__umap"] = PCA(2, random_state=0).fit_transform(mean).astype(np.float32)
    if not c.is_variational:
        codes = encode(train_images)[0] if train_images is not None else mean
        gmm = GaussianMixture(10, covariance_type="full", random_state=0, reg_covar=1e-4).fit(codes)
        atlas.update({f"{name}__gmm_weights": gmm.weights_, f"{name}__gmm_means": gmm.means_,
                      f"{name}__gmm_covariances": gmm.covariances_})
    view = _view(name, model, atlas, read_metrics(folder), b.labels)
    view.decode(view.encode(b.images[:1], b.labels[:1])[0], b.labels[:1])
    view.scatter.base()
    b.models[name] = view
    return view
