"""A scikit-learn estimator over aekit's models and training loop."""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from aekit.data.arrays import ArrayBatches
from aekit.data.stats import RunningStats
from aekit.errors import AekitError
from aekit.models import ACTIVATIONS, KINDS, AutoencoderModule, build_model
from aekit.objectives import Noise, Objective, Sparsity
from aekit.training import Callback, EarlyStopping, TrainingState, train
from aekit.training.progress import Progress

# Rows per forward pass in transform/score: bounds memory whatever the number of samples.
_INFERENCE_BATCH = 4096


def _fail(name: str, requirement: str, value: Any) -> ValueError:
    return ValueError(
        f"The '{name}' parameter of Autoencoder must be {requirement}. Got {value!r} instead."
    )


def _check_int(name: str, value: Any, low: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise _fail(name, f"an int >= {low}", value)


def _check_real(
    name: str, value: Any, low: float, high: float, *, low_open: bool, high_open: bool
) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (low < v if low_open else low <= v) and (v < high if high_open else v <= high)
    if not ok:
        bounds = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise _fail(name, f"a float in the range {bounds}", value)


def _check_widths(name: str, value: Any, *, allow_empty: bool) -> None:
    ok = not isinstance(value, (str, bytes)) and isinstance(value, Sequence)
    ok = ok and (allow_empty or len(value) > 0)
    ok = ok and all(
        isinstance(w, numbers.Integral) and not isinstance(w, bool) and int(w) >= 1 for w in value
    )
    if not ok:
        empty = " (empty for none) or 'auto'" if allow_empty else ", at least one"
        raise _fail(name, f"a sequence of ints >= 1{empty}", value)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "The 'device' parameter of Autoencoder is 'cuda' but no CUDA device is available; "
            "use device='auto' or 'cpu'."
        )
    return torch.device(device)


class Autoencoder(TransformerMixin, BaseEstimator):
    """Autoencoder for dimensionality reduction, with the scikit-learn API.

    The model standardises its inputs with statistics of the training data and returns
    reconstructions in raw units, so it takes data as they are: no scaler in front is needed.
    Its code layer and output layer are linear.

    Parameters
    ----------
    latent_dim : int, default=2
        Size of the code (the dimensionality of ``transform``'s output).
    kind : {'dense', 'conv', 'vae'}, default='dense'
        ``conv`` needs images, shape (n, height, width[, channels]); ``vae`` is variational,
        convolutional for images and dense for tables.
    hidden : sequence of int or 'auto', default='auto'
        Widths of the encoder's dense hidden layers (after the convolutions for conv bodies);
        the decoder mirrors them. ``()`` for none (a dense one is then a linear autoencoder).
        ``auto``: (64,) for inputs of at most 32 features, (512, 256) for larger ones, (128,)
        after convolutions.
    conv_channels : sequence of int, default=(32, 64)
        Channels of the strided convolutions (conv bodies), each halving height and width.
    loss : {'auto', 'mse', 'bce'}, default='auto'
        ``mse`` in standardised units; ``bce`` for intensities in [0, 1] (sigmoid output);
        ``auto`` takes ``bce`` when the training data lie in [0, 1] and ``mse`` otherwise.
    noise : str or None, default=None
        Denoising: corrupt inputs while training, against clean targets. ``gaussian:S`` (S times
        each feature's range), ``mask:P`` or ``saltpepper:P`` (a share P of the values).
    sparsity : str or None, default=None
        A penalty on the code: ``l1:WEIGHT`` or ``kl:TARGET:WEIGHT``.
    beta : float, default=1.0
        Weight of the KL term of a variational model (beta-VAE).
    kl_warmup : int, default=10
        Epochs over which the KL weight ramps from 0 to ``beta``.
    activation : {'auto', 'gelu', 'tanh', 'relu', 'elu', 'silu', 'leaky_relu'}, default='auto'
        Nonlinearity between hidden layers. ``auto``: tanh for inputs of at most 32 features
        (small tables, where its smoothness gave steadier codes), GELU otherwise.
    epochs : int, default=300
        Maximum number of passes over the training data.
    batch_size : int, default=32
    learning_rate : float, default=1e-3
        Learning rate of the AdamW optimiser.
    weight_decay : float, default=1e-2
        Decoupled weight decay of AdamW.
    validation_fraction : float, default=0.1
        Fraction of the training samples held out to monitor the loss; 0 monitors the training
        loss instead.
    patience : int, default=30
        Epochs without improvement of the monitored loss before training stops; the weights of
        the best epoch are restored.
    random_state : int, RandomState instance or None, default=None
        Fixes weight initialisation, the validation split and the batch order. With an int, the
        same data give bitwise the same model on the same CPU.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
    verbose : int, default=0
        1 prints one line per epoch.

    Attributes
    ----------
    model_ : torch.nn.Module
    history_ : list of dict
        Per-epoch ``train_loss``, ``val_loss``, ``lr``, ``seconds``, ``samples_per_s``.
    stop_reason_ : str
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.

    Notes
    -----
    Memory: the training data are held once as float32; inference runs in batches of 4096 rows.

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
        hidden: Sequence[int] | str = "auto",
        conv_channels: Sequence[int] = (32, 64),
        activation: str = "auto",
        epochs: int = 300,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-2,
        validation_fraction: float = 0.1,
        patience: int = 30,
        random_state: int | np.random.RandomState | None = None,
        device: str = "auto",
        verbose: int = 0,
        loss: str = "auto",
        noise: str | None = None,
        sparsity: str | None = None,
        beta: float = 1.0,
        kl_warmup: int = 10,
        contamination: float = 0.01,
    ) -> None:
        self.latent_dim = latent_dim
        self.kind = kind
        self.hidden = hidden
        self.conv_channels = conv_channels
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.loss = loss
        self.noise = noise
        self.sparsity = sparsity
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.contamination = contamination

    def _validate_params(self) -> None:
        _check_int("latent_dim", self.latent_dim, 1)
        if self.kind not in KINDS:
            raise _fail("kind", f"one of {list(KINDS)}", self.kind)
        if self.hidden != "auto":
            _check_widths("hidden", self.hidden, allow_empty=True)
        _check_widths("conv_channels", self.conv_channels, allow_empty=False)
        if self.activation != "auto" and self.activation not in ACTIVATIONS:
            raise _fail("activation", f"'auto' or one of {sorted(ACTIVATIONS)}", self.activation)
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_real("learning_rate", self.learning_rate, 0, np.inf, low_open=True, high_open=True)
        _check_real("weight_decay", self.weight_decay, 0, np.inf, low_open=False, high_open=True)
        _check_real(
            "validation_fraction", self.validation_fraction, 0, 1, low_open=False, high_open=True
        )
        _check_int("patience", self.patience, 1)
        if self.device not in ("auto", "cpu", "cuda"):
            raise _fail("device", "one of 'auto', 'cpu', 'cuda'", self.device)
        _check_int("verbose", self.verbose, 0)
        if self.loss not in ("auto", "mse", "bce"):
            raise _fail("loss", "one of 'auto', 'mse', 'bce'", self.loss)
        self._settings()
        _check_real("beta", self.beta, 0, np.inf, low_open=False, high_open=True)
        _check_int("kl_warmup", self.kl_warmup, 0)
        _check_real("contamination", self.contamination, 0, 0.5, low_open=True, high_open=False)

    def _settings(self) -> tuple[Noise | None, Sparsity | None]:
        parsed = []
        for name, parse in (("noise", Noise.parse), ("sparsity", Sparsity.parse)):
            value = getattr(self, name)
            try:
                parsed.append(None if value is None else parse(str(value)))
            except ValueError as exc:
                raise _fail(name, f"None or a string ({exc})", value) from None
        return parsed[0], parsed[1]  # type: ignore[return-value]

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
        fit = self._prepare(X)
        monitor = "val_loss" if fit.val_data.n_samples > 0 else "train_loss"
        state = train(
            fit.model,
            fit.optimizer,
            fit.objective,
            fit.train_data,
            fit.val_data,
            epochs=self.epochs,
            device=fit.device,
            callbacks=[
                *fit.callbacks,
                EarlyStopping(monitor=monitor, patience=self.patience),
                *([Progress("auto")] if self.verbose else []),
                *callbacks,
            ],
        )
        self._finish(state)
        self.calibrate_threshold(fit.held_out())
        split = "validation" if fit.val_data.n_samples > 0 else "training"
        self.threshold_info_["data"] = f"the {split} split"
        return self

    def _prepare(self, X: Any, rank: int = 0, world_size: int = 1) -> _Fit:
        """Validate, pick the device, build the batch sources, the model, the objective and the
        optimiser."""
        self._validate_params()
        noise, sparsity = self._settings()
        device = _resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        if _is_store(X):
            train_data, val_data, stats, sample_shape = self._store_sources(
                X, seed, device, rank, world_size
            )
        else:
            train_data, val_data, stats, sample_shape = self._array_sources(X, seed)
        self.sample_shape_ = tuple(sample_shape)
        self.loss_ = self._pick_loss(stats)
        self.model_ = self._build_model(sample_shape, stats, seed).to(device)
        objective = Objective(noise, sparsity, self.beta)
        callbacks: list[Callback] = []
        if self.kind == "vae" and self.kl_warmup:
            callbacks.append(KLWarmup(objective, self.kl_warmup))
        optimizer = torch.optim.AdamW(
            self.model_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        return _Fit(self.model_, optimizer, objective, train_data, val_data, device, callbacks)

    def _pick_loss(self, stats: dict[str, Any]) -> str:
        bounded = float(np.min(stats["min"])) >= 0 and float(np.max(stats["max"])) <= 1
        if self.loss == "bce" and not bounded:
            raise ValueError(
                "The 'loss' parameter of Autoencoder is 'bce', which needs data in [0, 1]; the "
                f"training data range over [{np.min(stats['min']):g}, {np.max(stats['max']):g}]."
                " Scale them to [0, 1] or use loss='mse'."
            )
        if self.loss == "auto":
            return "bce" if bounded else "mse"
        return str(self.loss)

    def _finish(self, state: TrainingState) -> Autoencoder:
        self.model_.eval()
        self.history_ = state.history
        self.stop_reason_ = state.stop_reason
        self.n_iter_ = len(state.history)
        return self

    def _array_sources(self, X: Any, seed: int) -> tuple[Any, Any, dict[str, Any], tuple[int, ...]]:
        X = self._check_X(X, reset=True)
        # Hold out a validation split; the order of both is fixed by the seed
        rows = np.random.default_rng(seed).permutation(len(X))
        n_val = min(round(self.validation_fraction * len(X)), len(X) - 1)
        val_rows, train_rows = rows[:n_val], rows[n_val:]
        stats = RunningStats(X.shape[-1])
        stats.update(X[train_rows])
        train_data = ArrayBatches(X, train_rows, self.batch_size, seed)
        val_data = ArrayBatches(X, val_rows, _INFERENCE_BATCH, seed, shuffle=False)
        return train_data, val_data, stats.to_dict(), tuple(X.shape[1:])

    def _check_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """Tables through scikit-learn's checks; images (3-D or 4-D arrays) as (n, H, W, C)."""
        if getattr(X, "ndim", 2) in (3, 4):
            X = check_array(
                X, dtype=np.float32, allow_nd=True, ensure_min_samples=2 if reset else 1
            )
            X = X[..., None] if X.ndim == 3 else X
            if reset:
                self.n_features_in_ = int(np.prod(X.shape[1:]))
            elif X.shape[1:] != getattr(self, "sample_shape_", X.shape[1:]):
                raise ValueError(
                    f"X has samples of shape {X.shape[1:]}, but Autoencoder was fitted on "
                    f"samples of shape {self.sample_shape_}."
                )
            return X
        return validate_data(
            self, X, dtype=np.float32, reset=reset, ensure_min_samples=2 if reset else 1
        )

    def _store_sources(
        self, X: Any, seed: int, device: torch.device, rank: int = 0, world_size: int = 1
    ) -> tuple[Any, Any, dict[str, Any], tuple[int, ...]]:
        from aekit.data.store import Store, open_store
        from aekit.data.stream import StoreBatches

        store = X if isinstance(X, Store) else open_store(X)
        self.n_features_in_ = int(np.prod(store.sample_shape))
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        from aekit.training.distributed import per_rank_batch

        pin = device.type == "cuda"
        # batch_size is the global batch: each rank takes its share of every global batch
        batch = per_rank_batch(self.batch_size, world_size)
        train_data = StoreBatches(
            store,
            store.train_index,
            batch,
            seed,
            rank=rank,
            world_size=world_size,
            pin_memory=pin,
        )
        # Validation batches as large as training ones keep the memory bound of the stream
        val_data = StoreBatches(
            store,
            store.val_index,
            batch,
            seed,
            shuffle=False,
            rank=rank,
            world_size=world_size,
            pin_memory=pin,
        )
        return train_data, val_data, store.stats, tuple(store.sample_shape)

    def _build_model(
        self, sample_shape: tuple[int, ...], stats: dict[str, Any], seed: int
    ) -> AutoencoderModule:
        # fork_rng keeps the caller's global torch RNG untouched while seeding the init
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                return build_model(
                    self.kind,
                    sample_shape,
                    self.latent_dim,
                    hidden=self._hidden_widths(sample_shape),
                    conv_channels=tuple(self.conv_channels),
                    activation=self._activation(sample_shape),
                    mean=np.asarray(stats["mean"]),
                    std=np.asarray(stats["std"]),
                    low=np.asarray(stats["min"]),
                    high=np.asarray(stats["max"]),
                    output="bernoulli" if self.loss_ == "bce" else "standardized",
                )
            except AekitError as exc:
                raise ValueError(str(exc)) from None

    def _hidden_widths(self, sample_shape: Sequence[int]) -> tuple[int, ...]:
        """The dense widths ``hidden`` stands for, given the shape of the samples."""
        if self.hidden != "auto":
            return tuple(int(w) for w in self.hidden)
        if self.kind == "conv" or (self.kind == "vae" and len(sample_shape) == 3):
            return (128,)
        return (64,) if int(np.prod(sample_shape)) <= 32 else (512, 256)

    def _activation(self, sample_shape: Sequence[int]) -> str:
        if self.activation != "auto":
            return str(self.activation)
        small_table = len(sample_shape) == 1 and int(np.prod(sample_shape)) <= 32
        return "tanh" if small_table else "gelu"

    def batches(self, X: Any, batch_size: int = _INFERENCE_BATCH) -> Iterator[torch.Tensor]:
        """``X`` in consecutive batches of raw samples, in order, on the model's device.

        ``X`` is an array (checked as in ``transform``) or a store, read ``batch_size`` rows at
        a time: memory stays bounded whatever the store's size.
        """
        check_is_fitted(self, "model_")
        device = next(self.model_.parameters()).device
        if hasattr(X, "batches") and hasattr(X, "n_samples"):  # a batch source, e.g. a split
            source: Any = X.batches(0)
        elif _is_store(X):
            from aekit.data.store import Store, open_store
            from aekit.data.stream import StoreBatches

            store = X if isinstance(X, Store) else open_store(X)
            if tuple(store.sample_shape) != tuple(self.sample_shape_):
                raise AekitError(
                    f"{store.path} holds samples of shape {tuple(store.sample_shape)}, but the "
                    f"model was trained on samples of shape {tuple(self.sample_shape_)}."
                )
            rows = np.arange(store.n, dtype=np.int64)
            source = StoreBatches(store, rows, batch_size, 0, shuffle=False).batches(0)
        else:
            source = _chunks(self._check_X(X, reset=False), batch_size)
        for batch in source:
            yield batch.to(device, non_blocking=True)

    def _map(self, X: Any, fn: Any, *, check_features: bool = True) -> np.ndarray:
        """Apply ``fn`` to ``X`` in bounded batches without gradients; return a float32 array."""
        check_is_fitted(self, "model_")
        if check_features:
            batches = self.batches(X)
        else:
            device = next(self.model_.parameters()).device
            chunks = _chunks(np.asarray(X, dtype=np.float32), _INFERENCE_BATCH)
            batches = (batch.to(device) for batch in chunks)
        with torch.no_grad():
            out = [fn(batch).float().cpu().numpy() for batch in batches]
        if not out:
            return np.zeros((0,), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def transform(self, X: Any) -> np.ndarray:
        """Encode ``X`` (raw units, or a store) to the latent space (the mean code for a VAE)."""
        return self._map(X, self.model_.encode)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Decode latents (n_samples, latent_dim) to the input space, in raw units."""
        check_is_fitted(self, "model_")
        Z = np.asarray(X, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.latent_dim:
            raise ValueError(
                f"inverse_transform expects latents of shape (n_samples, {self.latent_dim}); "
                f"got {Z.shape}."
            )
        return self._map(Z, self.model_.decode, check_features=False)

    def reconstruct(self, X: Any) -> np.ndarray:
        """Encode and decode ``X``: reconstructions in raw units, shaped like the samples."""
        return self._map(X, self.model_)

    def denoise(self, X: Any) -> np.ndarray:
        """Clean versions of noisy samples: the reconstructions of a model fitted with
        ``noise`` (any other model only reconstructs)."""
        return self.reconstruct(X)

    def reconstruction_error(self, X: Any) -> np.ndarray:
        """Per-sample training objective without corruption: mean squared error in standardised
        units (or binary cross-entropy), the negative ELBO for a VAE. The anomaly score."""
        objective = Objective(None, None, self.beta)
        return self._map(X, lambda x: objective.per_sample(self.model_, x))

    def feature_errors(self, X: Any) -> np.ndarray:
        """Each feature's part of the reconstruction error, (n_samples, n_features): the parts
        sum to ``reconstruction_error`` (to its reconstruction term for a VAE)."""
        objective = Objective(None, None, self.beta)
        return self._map(X, lambda x: objective.terms(self.model_, x)[0])

    def score_samples(self, X: Any) -> np.ndarray:
        """Normality score, higher means more normal: the negative reconstruction error."""
        return -self.reconstruction_error(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``threshold_`` minus the reconstruction error: negative for anomalies."""
        check_is_fitted(self, "threshold_")
        return self.threshold_ - self.reconstruction_error(X)

    def predict(self, X: Any) -> np.ndarray:
        """1 for normal samples, -1 for anomalies (error above ``threshold_``), as scikit-learn's
        outlier detectors answer."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    def calibrate_threshold(
        self, X: Any, *, fpr: float | None = None, contamination: float | None = None
    ) -> Autoencoder:
        """Set ``threshold_`` from held-out normal data ``X`` (an array or a store).

        ``fpr``: the share of these normal samples to flag (the false-positive rate the
        threshold aims at). ``contamination``: the share of anomalies ``X`` is believed to hold.
        Both set the threshold at that upper quantile of ``X``'s errors; the default is the
        ``contamination`` parameter. ``threshold_info_`` records how it was chosen.
        """
        if fpr is not None and contamination is not None:
            raise ValueError("give fpr or contamination, not both.")
        method, share = ("fpr", fpr) if fpr is not None else ("contamination", contamination)
        if share is None:
            share = self.contamination
        _check_real(method, share, 0, 0.5, low_open=True, high_open=False)
        objective = Objective(None, None, self.beta)

        def code_and_error(x: torch.Tensor) -> torch.Tensor:
            error = objective.per_sample(self.model_, x)[:, None]
            return torch.cat([self.model_.encode(x), error], dim=1)

        both = self._map(X, code_and_error)
        if len(both) == 0:
            raise ValueError("calibrate_threshold needs at least one sample.")
        errors = both[:, -1].astype(np.float64)
        # 'higher' keeps the flagged share of the calibration data at most the asked share
        self.threshold_ = float(np.quantile(errors, 1 - float(share), method="higher"))
        self.threshold_info_ = {
            "method": method,
            "share": float(share),
            "samples": len(errors),
            "score": "negative ELBO" if self.model_.variational else "reconstruction error",
        }
        # The spread of each code dimension: the unit of the quantiser of compress
        self.latent_std_ = np.maximum(both[:, :-1].std(axis=0), 1e-8).astype(np.float32)
        return self

    def compress(self, X: Any, step: float = 0.05) -> bytes:
        """``X`` (an array or a store) compressed to bytes: each code dimension quantised to
        ``step`` times its spread, entropy-coded (see :mod:`aekit.apply.compress`).
        ``compression_report_`` holds the bits per sample and the distortion."""
        import io

        from aekit.apply.compress import write_compressed

        check_is_fitted(self, "latent_std_")
        dtype = X.dtype if _is_store(X) and hasattr(X, "dtype") else np.float32
        buffer = io.BytesIO()
        self.compression_report_ = write_compressed(self, X, dtype, buffer, step=step)
        return buffer.getvalue()

    def decompress(self, data: bytes) -> np.ndarray:
        """Samples decoded from the output of :meth:`compress` (refused if another model made
        it, or if it is corrupted)."""
        import io

        from aekit.apply.compress import read_compressed

        check_is_fitted(self, "model_")
        header, blocks = read_compressed(self, io.BytesIO(data), "data")
        decoded = list(blocks)
        if not decoded:
            return np.zeros((0, *header["sample_shape"]), dtype=header["dtype"])
        return np.concatenate(decoded)

    def sample(self, n_samples: int = 1, random_state: int | None = None) -> np.ndarray:
        """Draw samples from a variational model: codes from N(0, I), decoded to raw units."""
        check_is_fitted(self, "model_")
        if not self.model_.variational:
            raise ValueError("sample needs a generative model: fit with kind='vae'.")
        _check_int("n_samples", n_samples, 1)
        generator = torch.Generator().manual_seed(0 if random_state is None else random_state)
        z = torch.randn(n_samples, self.latent_dim, generator=generator)
        return self._map(z.numpy(), self.model_.decode, check_features=False)

    def interpolate(self, a: Any, b: Any, steps: int = 8) -> np.ndarray:
        """``steps`` samples decoded along the straight line between the codes of samples ``a``
        and ``b`` (each one sample, raw units); the first and last are their reconstructions."""
        _check_int("steps", steps, 2)
        ends = self.transform(np.stack([np.asarray(a), np.asarray(b)]))
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        return self.inverse_transform((1 - t) * ends[0] + t * ends[1])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # Training runs in float32 whatever the input's dtype, and so do the latents
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = self.random_state is None
        return tags


@dataclass
class _Fit:
    model: AutoencoderModule
    optimizer: torch.optim.Optimizer
    objective: Objective
    train_data: Any
    val_data: Any
    device: torch.device
    callbacks: list[Callback]

    def held_out(self) -> Any:
        """Data the model did not learn from, to calibrate the anomaly threshold on: the
        validation split, or the training data when there is none."""
        return self.val_data if self.val_data.n_samples > 0 else self.train_data


class KLWarmup(Callback):
    """Ramps a variational model's KL weight from 0 to 1 over the first ``epochs`` epochs.

    The weight is a function of the step alone, so a resumed run ramps exactly as before.
    """

    def __init__(self, objective: Objective, epochs: int) -> None:
        self.objective = objective
        self.epochs = epochs

    def _set(self, state: TrainingState) -> None:
        total = max(1, self.epochs * state.steps_per_epoch)
        self.objective.kl_weight = min(1.0, state.step / total)

    def on_epoch_begin(self, state: TrainingState) -> None:
        self._set(state)

    def on_batch_end(self, state: TrainingState, loss: float) -> None:
        self._set(state)


def _chunks(X: np.ndarray, size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices of ``size`` rows of an array, as tensors sharing its memory."""
    for start in range(0, len(X), size):
        yield torch.from_numpy(X[start : start + size])


def _is_store(X: Any) -> bool:
    from aekit.data.store import Store

    if isinstance(X, Store):
        return True
    return isinstance(X, (str, Path)) and (Path(X) / "zarr.json").is_file()
