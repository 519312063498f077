"""A scikit-learn estimator over aekit's models and training loop: it checks its inputs and
parameters, calls the library, and holds the fitted attributes."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from aekit.anomaly import anomaly_score
from aekit.apply.batching import as_store, check_samples, code_batches, map_batches, sample_batches
from aekit.apply.compress import compress_bytes, decompress_bytes
from aekit.apply.generate import draw, interpolate
from aekit.apply.series import step_anomaly, step_reconstruction, window_batches
from aekit.config import config_from_params
from aekit.objectives import Objective
from aekit.params import PARAMS, check_param
from aekit.training import Callback
from aekit.training.calibrate import Calibration, calibrate
from aekit.training.fitting import (
    Result,
    array_sources,
    derive_seed,
    fit,
    resolve_device,
    series_sources,
    store_sources,
)
from aekit.training.progress import Progress


class Autoencoder(TransformerMixin, BaseEstimator):
    """Autoencoder for dimensionality reduction, with the scikit-learn API.

    The model standardises its inputs with statistics of the training data and returns
    reconstructions in raw units, so it takes data as they are: no scaler in front is needed.
    Its code layer and output layer are linear. Defaults and allowed values come from
    :data:`aekit.params.SETTINGS`, as ``aekit train``'s. Memory: the training data are held
    once as float32; inference runs in batches of 4096 rows.

    Parameters
    ----------
    latent_dim : int, default=2
        Size of the code (the dimensionality of ``transform``'s output).
    kind : {'dense', 'conv', 'vae'} or a registered family's name, default='dense'
        ``conv`` needs images, shape (n, height, width[, channels]); ``vae`` is the kind's usual
        body, variational: convolutional for images, dense for tables.
    network, network_kwargs : callable or str, dict, default=None, None
        Your own network: ``build(sample_shape, latent_dim, **network_kwargs)`` returning
        ``(features, decoder)``, or its path ``'package.module:function'`` (the contract:
        :mod:`aekit.families`).
    variational : bool, default=False
        Encode to a Gaussian and sample the code while training (a VAE), with any family.
    hidden : sequence of int or 'auto', default='auto'
        Encoder's dense widths (after any convolutions), mirrored by the decoder; ``()`` for
        none. ``auto``: (64,) up to 32 features, (512, 256) above, (128,) after convolutions.
    conv_channels : sequence of int, default=(32, 64)
        Channels of the strided convolutions (conv bodies), each halving height and width.
    loss : {'auto', 'mse', 'bce'}, default='auto'
        ``mse`` in standardised units; ``bce`` for intensities in [0, 1] (sigmoid output).
        ``auto``: ``bce`` when the training data lie in [0, 1], else ``mse``.
    scale : {'feature', 'shared'}, default='feature'
        Inputs standardised per feature (a table's column; an image's or series' channel), or by
        one mean and std over all values: for columns in one unit, such as pixels in a table.
    noise : str or None, default=None
        Denoising: corrupt inputs while training, against clean targets. ``gaussian:S`` (S times
        each feature's range), ``mask:P`` or ``saltpepper:P`` (a share P of the values).
    sparsity : str or None, default=None
        A penalty on the code: ``l1:WEIGHT`` or ``kl:TARGET:WEIGHT``.
    trim : 'early', 'auto' or float in [0, 1), default='early'
        Which samples of each batch training leaves out, robust to anomalies in the data: its
        outliers (log-loss above median + 2 robust deviations) until the anomaly score's early
        copy, then none (``early``), or throughout (``auto``); a share of its highest losses.
    beta, kl_warmup : float, int, default=1.0, 10
        A variational model's KL weight (beta-VAE), and the epochs over which it ramps up from 0.
    activation : {'auto', 'gelu', 'tanh', 'relu', 'elu', 'silu', 'leaky_relu'}, default='auto'
        Nonlinearity between hidden layers. ``auto``: tanh for inputs of at most 32 features
        (small tables, where its smoothness gave steadier codes), GELU otherwise.
    epochs : int or 'auto', default='auto'
        Maximum passes over the data; ``auto``: about 6,000 steps' worth, 5 to 300.
    batch_size : int or 'auto', default='auto'
        ``auto``: 32, doubled up to 512 while an epoch would take over 128 steps (the rules:
        :mod:`aekit.training.budget`).
    learning_rate, weight_decay : float, default=1e-3, 1e-2
        The AdamW optimiser's learning rate and decoupled weight decay.
    schedule : {'constant', 'cosine', 'onecycle', 'plateau'}, default='constant'
        Cosine decay or one-cycle over the fit's steps; plateau: halved after 5 idle epochs.
    window_length, window_stride : int, 'auto' or None, default=None, 'auto'
        Series: None reads a 2-D array as rows. ``'auto'`` (the dominant period of the
        training data, 16 to 256 steps) or a number reads ``X`` as series: one (T,) or (T, C)
        array, a list of them, or a series store. Training reads windows of that many steps,
        ``window_stride`` apart (``'auto'``: 1, or more where an epoch would pass 100,000
        windows), the last ``validation_fraction`` of each series held out. Then
        ``anomaly_score``, ``score_samples``, ``decision_function`` and ``predict`` give one
        value per step, (T,), each step's the mean over the windows that cover it;
        ``reconstruct`` gives (T, C); ``transform`` one code per window (n_windows, L), and
        ``inverse_transform`` one window per code (n_windows, W, C).
    validation_fraction, contamination : float, default=0.1, 0.01
        Share of the training samples held out to monitor the loss (0: the training loss), and
        the share of those that ``predict`` flags: it sets ``threshold_`` on the anomaly score.
    patience : int or 'auto', default='auto'
        Epochs without improvement of the monitored loss before training stops; the weights of
        the best epoch are restored. 0: no early stopping; ``auto``: a quarter of the epochs, 5-30.
    random_state : int, RandomState instance or None, default=None
        Fixes weight initialisation, the validation split and the batch order. With an int, the
        same data give bitwise the same model on the same CPU.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
    n_jobs : int or None, default=None
        CPU threads of the model's maths in ``fit`` (then torch's setting is restored). None:
        one for a small model, else one per core not busy with other work; -1: every core.
    verbose : int, default=0 (1 prints one line per epoch)

    Attributes
    ----------
    model_, stop_reason_, n_features_in_, threshold_ : torch.nn.Module, str, int, float
    history_ : list of dict
        Per-epoch ``train_loss``, ``val_loss``, ``lr``, ``seconds``, ``samples_per_s``.
    feature_names_in_ : ndarray of str
        Fitted on a DataFrame with string column names, or on a store of a named table.
    window_length_, window_stride_ : int
        Fitted on series: the windows' length and stride.
    channel_weights_ : ndarray of shape (n_channels,)
        Fitted on series: each channel's weight in a step's score, one over its mean error on
        the training steps (see :mod:`aekit.training.series`).

    Examples
    --------
    >>> from sklearn.datasets import load_wine
    >>> from aekit import Autoencoder
    >>> X, _ = load_wine(return_X_y=True)
    >>> ae = Autoencoder(latent_dim=3, random_state=0).fit(X)
    >>> ae.transform(X).shape
    (178, 3)
    """

    def __init__(
        self,
        latent_dim: int = 2,
        kind: str = "dense",
        network: Callable[..., Any] | str | None = None,
        network_kwargs: dict[str, Any] | None = None,
        variational: bool = False,
        hidden: Sequence[int] | str = "auto",
        conv_channels: Sequence[int] = (32, 64),
        activation: str = "auto",
        epochs: int | str = "auto",
        batch_size: int | str = "auto",
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-2,
        schedule: str = "constant",
        validation_fraction: float = 0.1,
        patience: int | str = "auto",
        random_state: int | np.random.RandomState | None = None,
        device: str = "auto",
        n_jobs: int | None = None,
        verbose: int = 0,
        loss: str = "auto",
        scale: str = "feature",
        noise: str | None = None,
        sparsity: str | None = None,
        trim: float | str = "early",
        beta: float = 1.0,
        kl_warmup: int = 10,
        contamination: float = 0.01,
        window_length: int | str | None = None,
        window_stride: int | str = "auto",
    ) -> None:
        self.latent_dim = latent_dim
        self.kind = kind
        self.network = network
        self.network_kwargs = network_kwargs
        self.variational = variational
        self.hidden = hidden
        self.conv_channels = conv_channels
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.loss = loss
        self.scale = scale
        self.noise = noise
        self.sparsity = sparsity
        self.trim = trim
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.contamination = contamination
        self.window_length = window_length
        self.window_stride = window_stride

    def fit(self, X: Any, y: Any = None, *, callbacks: Sequence[Callback] = ()) -> Autoencoder:
        """Fit the autoencoder; ``y`` is ignored.

        Parameters
        ----------
        X : array-like, DataFrame, or Store
            Raw units: (n_samples, n_features) for tables, (n, height, width[, channels]) for
            images. An in-memory array is split by ``validation_fraction``; a store (or the
            path of one) streams from disk with its own split and statistics, in memory bounded
            by ``batch_size``, whatever its size.
        callbacks : sequence of Callback
            Extra callbacks for the training loop (e.g. a ``CSVLogger``).
        """
        for name in PARAMS:
            check_param(name, getattr(self, name))
        config = config_from_params(self.get_params())
        seed = derive_seed(self.random_state)
        device = resolve_device(self.device)
        store, window = as_store(X), (self.window_length, self.window_stride)
        if store is None and self.window_length is not None:
            sources = series_sources(X, self.validation_fraction, window, self.batch_size, seed)
        elif store is None:
            sources = array_sources(
                check_samples(self, X, reset=True), self.validation_fraction, self.batch_size, seed
            )
        else:
            self.__dict__.pop("feature_names_in_", None)  # a store's names come with the result
            cuda = device.type == "cuda"
            sources = store_sources(
                store, self.batch_size, seed, pin_memory=cuda, window=window,
                device=device if cuda else None,
            )  # fmt: skip
        progress = [Progress("auto")] if self.verbose else []
        result = fit(
            config, sources, seed=seed, device=device, callbacks=[*progress, *callbacks],
            contamination=self.contamination, announce=bool(self.verbose),
        )  # fmt: skip
        return self._set_fitted(result)

    @classmethod
    def from_result(cls, result: Result, params: dict[str, Any]) -> Autoencoder:
        """The fitted estimator of ``params`` whose fit gave ``result`` (a run's, a saved one's)."""
        return cls(**params)._set_fitted(result)

    def _set_fitted(self, result: Result) -> Autoencoder:
        self.model_ = result.model.eval()
        self.sample_shape_ = tuple(result.sample_shape)
        self.n_features_in_ = int(np.prod(self.sample_shape_))
        self.loss_ = result.loss
        self.history_ = result.history
        self.stop_reason_ = result.stop_reason
        self.n_iter_ = len(result.history)
        if result.feature_names is not None:
            self.feature_names_in_ = np.asarray(result.feature_names, dtype=object)
        for name in ("window_length_", "window_stride_", "channel_weights_"):
            self.__dict__.pop(name, None)
        if result.windows is not None:
            self.window_length_, self.window_stride_ = result.windows
            self.channel_weights_ = result.channel_weights
        if result.calibration is not None:
            self._set_calibration(result.calibration)
        return self

    def _set_calibration(self, calibration: Calibration) -> None:
        self.threshold_, self.threshold_info_ = calibration.threshold, calibration.info
        self.latent_std_ = calibration.latent_std

    def batches(self, X: Any, batch_size: int | None = None) -> Iterator[torch.Tensor]:
        """``X`` (an array checked as in ``transform``, a store, or a split's batch source) in
        consecutive batches of raw samples on the model's device (default: about 1 MiB each)."""
        check_is_fitted(self, "model_")
        device = next(self.model_.parameters()).device
        series = hasattr(self, "window_length_") and not hasattr(X, "batches")
        for batch in window_batches(self, X) if series else sample_batches(self, X, batch_size):
            yield batch.to(device, non_blocking=True)

    def _map(
        self, X: Any, fn: Callable[[Any, torch.Tensor], torch.Tensor], *, raw: bool = False
    ) -> np.ndarray:
        """``fn(model_, batch)`` over ``X`` in bounded batches, no grad, float32; raw: codes."""
        check_is_fitted(self, "model_")
        device = next(self.model_.parameters()).device
        shape = self.sample_shape_  # codes decode to samples: batches of as many rows
        batches = code_batches(X, self.latent_dim, device, shape) if raw else self.batches(X)
        return map_batches(lambda x: fn(self.model_, x), batches)

    def transform(self, X: Any) -> np.ndarray:
        """Encode ``X`` (raw units, or a store) to the latent space (the mean code for a VAE)."""
        return self._map(X, lambda model, x: model.encode(x))

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Decode latents (n_samples, latent_dim) to the input space, in raw units."""
        return self._map(X, lambda model, z: model.decode(z), raw=True)

    def reconstruct(self, X: Any) -> np.ndarray:
        """Encode and decode ``X``: reconstructions in raw units, shaped like the samples (a
        series: (T, C), each step the mean over its windows)."""
        if hasattr(self, "window_length_"):
            return step_reconstruction(self, X)
        return self._map(X, lambda model, x: model(x))

    def denoise(self, X: Any) -> np.ndarray:
        """Clean versions of noisy samples, from a model fitted with ``noise``."""
        return self.reconstruct(X)

    def reconstruction_error(self, X: Any) -> np.ndarray:
        """Per-sample training objective of the final model, without corruption: mean squared
        error in standardised units (or binary cross-entropy), the negative ELBO for a VAE."""
        return self._map(X, Objective(beta=self.beta).per_sample)

    def anomaly_score(self, X: Any) -> np.ndarray:
        """Per-sample anomaly score, higher for more anomalous (see :mod:`aekit.anomaly`); per
        time step for a series."""
        if hasattr(self, "window_length_"):
            check_is_fitted(self, "model_")
            return step_anomaly(self, X)[:, 0]
        return self._map(X, lambda model, x: anomaly_score(Objective(beta=self.beta), model, x))

    def feature_errors(self, X: Any) -> np.ndarray:
        """``reconstruction_error`` split by feature (its reconstruction term, for a VAE)."""
        return self._map(X, lambda model, x: Objective(beta=self.beta).terms(model, x)[0])

    def score_samples(self, X: Any) -> np.ndarray:
        """Normality score, higher means more normal: the negative anomaly score."""
        return -self.anomaly_score(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``threshold_`` minus the anomaly score: negative for anomalies."""
        check_is_fitted(self, "threshold_")
        return self.threshold_ - self.anomaly_score(X)

    def predict(self, X: Any) -> np.ndarray:
        """1 for normal samples, -1 for anomalies (score above ``threshold_``), as sklearn's."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    def calibrate_threshold(
        self, X: Any, *, fpr: float | None = None, contamination: float | None = None
    ) -> Autoencoder:
        """Set ``threshold_`` from held-out normal data ``X`` (an array or a store).

        ``fpr``: the share of these normal samples to flag (the false-positive rate the
        threshold aims at). ``contamination``: the share of anomalies ``X`` is believed to hold.
        Both set the threshold at that upper quantile of ``X``'s anomaly scores; the default is
        the ``contamination`` parameter. ``threshold_info_`` records how it was chosen.
        """
        if fpr is None and contamination is None:
            contamination = self.contamination
        check_is_fitted(self, "model_")
        calibration = calibrate(
            self.model_, self.beta, self.batches(X), fpr=fpr, contamination=contamination
        )
        self._set_calibration(calibration)
        return self

    def compress(self, X: Any, step: float = 0.05) -> bytes:
        """``X`` (an array or a store) compressed to bytes: each code dimension quantised to
        ``step`` times its spread, entropy-coded (see :mod:`aekit.apply.compress`).
        ``compression_report_`` holds the bits per sample and the distortion."""
        check_is_fitted(self, "latent_std_")
        data, self.compression_report_ = compress_bytes(self, X, step)
        return data

    def decompress(self, data: bytes) -> np.ndarray:
        """Samples decoded from :meth:`compress`'s bytes (another model's are refused)."""
        check_is_fitted(self, "model_")
        return decompress_bytes(self, data)

    def sample(self, n_samples: int = 1, random_state: int | None = None) -> np.ndarray:
        """Draw samples from a variational model: codes from N(0, I), decoded to raw units."""
        return draw(self, n_samples, random_state)

    def interpolate(self, a: Any, b: Any, steps: int = 8) -> np.ndarray:
        """``steps`` samples decoded along the straight line between the codes of samples ``a``
        and ``b`` (each one sample, raw units); the first and last are their reconstructions."""
        return interpolate(self, a, b, steps)

    def to(self, device: str) -> Autoencoder:
        """Move the fitted model to ``device`` ('cpu', 'cuda', 'auto'); methods compute there."""
        check_is_fitted(self, "model_")
        self.model_.to(resolve_device(device))
        return self

    def __getstate__(self) -> dict[str, Any]:
        # From the CPU: a model fitted on a GPU unpickles where there is none (.to() moves it)
        fitted = {"model_": copy.deepcopy(self.model_).cpu()} if hasattr(self, "model_") else {}
        return {**super().__getstate__(), **fitted}

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # Training runs in float32 whatever the input's dtype, and so do the latents
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = self.random_state is None
        return tags
