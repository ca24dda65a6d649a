"""The serving path under concurrency, seeds a person can type, and the decoder the browser runs.

Concurrent identical requests: gradio names each returned image's file by the hash of its bytes, so
identical answers share one file. It used to be rewritten in place while other responses streamed it
(ui.common.save_pil_to_cache_atomically fixes that); these tests fetch every returned file while the others run.
"""
from __future__ import annotations

import io
import json
import struct
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch
from gradio_client import Client
from PIL import Image
from safetensors.torch import load

from explorer.bundle import checkpoint_root
from explorer.service import as_seed, seeded_rng
from explorer.webdecoder import UnsupportedDecoder, decoder_spec, export_bytes
from models import Autoencoder, ModelConfig
from tests.test_app_api import unexpected_tracebacks

N_CONCURRENT = 50


def file_urls(value) -> list[str]:
    """Every file URL in an API answer (download_files=False: files come as dicts with a url)."""
    if isinstance(value, dict):
        if value.get("path") and value.get("url"):  # a FileData (the live decoder spec has urls, no paths)
            return [value["url"]]
        return [u for v in value.values() for u in file_urls(v)]
    if isinstance(value, (list, tuple)):
        return [u for v in value for u in file_urls(v)]
    return []


@pytest.fixture(scope="module")
def url_client(app):
    return Client(app.url, verbose=False, download_files=False)


@pytest.fixture(scope="module")
def visitors(app) -> list[Client]:
    """N_CONCURRENT clients, one session each, as many visitors are. (Many requests in flight on *one*
    gradio_client session can end in CancelledError: the server closes a session's event stream when its
    last pending event completes, and an event submitted in that instant waits on the closing stream.
    That race is between gradio and gradio_client, not in this app; see the README.)"""
    # httpx's default 5 s read timeout would fail a join that a 2-core machine answers in 6 s under this burst:
    # the test is about lost and truncated answers, not speed (bench/app_latency.py --load measures that).
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: Client(app.url, verbose=False, download_files=False,
                                              httpx_kwargs={"timeout": 120}), range(N_CONCURRENT)))


@pytest.mark.parametrize("endpoint,args", [
    ("/slide", ("mnist", *[0.0] * 32)),  # both sliders at the origin: the same two images every time
    ("/sample", ("mnist", 0, 1.0)),  # a class that all samples with seed 0
    ("/init", ("mnist",)),  # many visitors opening the page at once: the same gallery of 40 images
])
def test_concurrent_identical_requests_all_succeed_with_identical_images(app, url_client, visitors, endpoint, args):
    reference_answer = url_client.predict(*args, api_name=endpoint)
    with httpx.Client(timeout=120) as http:  # a loaded 2-core machine can take seconds per file; failing is not slow
        reference = [http.get(u).raise_for_status().content for u in file_urls(reference_answer)]
        assert reference and all(Image.open(io.BytesIO(b)).size[0] > 0 for b in reference)

        def fetch_all(answer) -> list[bytes]:
            return [http.get(u).raise_for_status().content for u in file_urls(answer)]

        # all in flight at once; /init returns 40 gallery files per answer, so half the visitors already make
        # 1,000 file fetches (the whole suite stays under 10 minutes)
        crowd = visitors[: N_CONCURRENT // 2] if endpoint == "/init" else visitors
        jobs = [c.submit(*args, api_name=endpoint) for c in crowd]
        failures, got = [], []
        with ThreadPoolExecutor(16) as pool:  # fetch each answer's files as soon as it is in, others still running
            futures = []
            for job in jobs:
                try:
                    futures.append(pool.submit(fetch_all, job.result(timeout=300)))
                except Exception as e:
                    failures.append(repr(e))
            for f in futures:
                try:
                    got.append(f.result())
                except Exception as e:  # a truncated body: httpx.RemoteProtocolError
                    failures.append(repr(e))
    assert failures == [], failures[:3]
    assert len(got) == len(crowd)
    for files in got:
        assert files == reference  # byte-identical to a single request's images (so every one decodes)
    assert "Content-Length" not in app.log()
    assert unexpected_tracebacks(app.log()) == []


@pytest.mark.parametrize("seed", [-5, -1, 2**31, 10**30, -(10**30)])
def test_any_integer_seed_samples(client, seed):
    ae, vae, gmm, vae_extra, text = client.predict("mnist", seed, 1.0, api_name="/sample")
    again = client.predict("mnist", seed, 1.0, api_name="/sample")
    assert np.array_equal(np.asarray(Image.open(vae)), np.asarray(Image.open(again[1])))  # reproducible
    assert f"Seed {seed}" in text


def test_negative_seed_differs_from_its_absolute_value(client, tmp_path):
    minus, plus = (np.asarray(Image.open(client.predict("mnist", s, 1.0, api_name="/sample")[1])) for s in (-5, 5))
    assert not np.array_equal(minus, plus)


def test_reconstruct_with_any_integer_seed(client):
    from gradio_client import handle_file

    digit = client.predict("mnist", 7, api_name="/pick_test")
    for seed in (-5, 10**30):
        ae, vae, ae_samples, samples, text = client.predict("mnist", handle_file(digit), seed, api_name="/reconstruct")
        assert f"seed {seed}" in text


@pytest.mark.parametrize("value", [None, 2.5, float("inf"), float("nan"), "seven", True])
def test_as_seed_refuses_what_is_not_a_whole_number(value):
    with pytest.raises(ValueError, match="whole number"):
        as_seed(value)


def test_seeded_rng_keeps_non_negative_seeds_and_separates_negative_ones():
    assert seeded_rng(as_seed(7.0)).random() == np.random.default_rng(7).random()  # earlier seeds unchanged
    draws = {s: seeded_rng(s).random() for s in (-5, 5, 2**32 + 5, -(2**70), 2**70)}
    assert len(set(draws.values())) == len(draws)


# ---- the decoder the browser runs -----------------------------------------------------------------
def run_spec(spec: list[dict], tensors: dict, z: torch.Tensor) -> torch.Tensor:
    """An independent reading of the exported layer list with torch.nn.functional (what live_decoder.js
    does with TensorFlow.js): it must give the model's own decode."""
    x = z
    for layer in spec:
        op = layer["op"]
        if op == "linear":
            x = torch.nn.functional.linear(x, tensors[layer["weight"]].float(), tensors[layer["bias"]].float())
        elif op == "conv_transpose2d":
            x = torch.nn.functional.conv_transpose2d(x, tensors[layer["weight"]].float(), tensors[layer["bias"]].float(),
                                                     stride=layer["stride"], padding=layer["padding"])
        elif op == "unflatten":
            x = x.reshape(x.shape[0], *layer["shape"])
        else:
            x = {"elu": torch.nn.functional.elu, "relu": torch.relu, "sigmoid": torch.sigmoid,
                 "clip01": lambda t: t.clamp(0, 1)}[op](x)
    return x


@pytest.mark.parametrize("family,activation,likelihood", [("conv", "elu", "bernoulli"), ("mlp", "relu", "gaussian")])
def test_exported_decoder_reproduces_the_model(family, activation, likelihood):
    torch.manual_seed(0)
    model = Autoencoder(ModelConfig(family=family, activation=activation, likelihood=likelihood, latent_dim=3,
                                    hidden_dim=16, channels=4)).eval()
    data = export_bytes(model)
    tensors = load(data)
    n = struct.unpack("<Q", data[:8])[0]  # the safetensors header, read the way the browser reads it
    meta = json.loads(data[8: 8 + n])["__metadata__"]
    spec = json.loads(meta["layers"])
    assert spec == decoder_spec(model) and json.loads(meta["image_shape"]) == [1, 28, 28]
    z = torch.randn(5, 3)
    with torch.no_grad():
        torch.testing.assert_close(run_spec(spec, tensors, z), model.decode_image(z), atol=1e-6, rtol=0)


def test_shipped_decoder_export_is_exact_float16():
    model = Autoencoder.from_pretrained(checkpoint_root() / "mnist" / "vae-16")
    tensors = load(export_bytes(model))
    assert {k for k in tensors} == set(model.decoder.state_dict())
    for k, v in model.decoder.state_dict().items():
        assert torch.equal(tensors[k].float(), v.float()), k  # float16 only where that loses nothing


def test_a_decoder_with_an_unknown_layer_is_not_exported():
    model = Autoencoder(ModelConfig(family="mlp", latent_dim=2, hidden_dim=8))
    model.decoder.net.insert(1, torch.nn.Dropout(0.1))
    with pytest.raises(UnsupportedDecoder, match="Dropout"):
        decoder_spec(model)
