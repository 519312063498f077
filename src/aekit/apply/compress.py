"""Lossy compression with a trained autoencoder: quantised, entropy-coded latents.

Each sample is stored as its code, each dimension rounded to a multiple of ``step`` times that
dimension's spread on held-out data (``latent_std_``). The integers are zigzag-coded to 16 bits,
laid out dimension by dimension in blocks of rows (so that the coder sees values of one
distribution in a row) and entropy-coded with LZMA (its range coder adapts to the symbols'
frequencies). Decoding runs the model's decoder on the dequantised codes.

File layout (``.aek``)::

    b"AEK\\x00"                 magic
    uint32 little-endian        length of the header
    header                      UTF-8 JSON: format version, run fingerprint, sample shape,
                                dtype, n, latent size, step, spreads, payload size and SHA-256
    uint32 little-endian        CRC-32 of the header
    payload                     the xz stream of symbols

The integers are exact on every machine; the decoded samples are the decoder's output for them
(rounded to the input's type for uint8 images), the same up to floating-point rounding across
machines.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import math
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from aekit.apply.batching import as_store
from aekit.apply.fitted import FittedModel
from aekit.atomic import published
from aekit.errors import AekitError

MAGIC = b"AEK\x00"
FORMAT_VERSION = 1
BLOCK_ROWS = 4096
_COPY = 1 << 20


def fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of a model's tensors (names, types, shapes and values), as hex."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _pack(symbols: np.ndarray) -> bytes:
    """(rows, L) int32 -> zigzag uint16, dimension-major, low bytes then high bytes."""
    u = ((symbols << 1) ^ (symbols >> 31)).astype(np.uint16).T  # (L, rows)
    return (u & 0xFF).astype(np.uint8).tobytes() + (u >> 8).astype(np.uint8).tobytes()


def _unpack(data: bytes, rows: int, latent_dim: int) -> np.ndarray:
    planes = np.frombuffer(data, dtype=np.uint8).reshape(2, latent_dim, rows).astype(np.int32)
    u = planes[0] | (planes[1] << 8)
    return ((u >> 1) ^ -(u & 1)).T  # (rows, L)


class _Codec:
    """Quantise and dequantise codes; decode them to samples of the input's type."""

    def __init__(self, ae: FittedModel, step: float, latent_std: Any, dtype: Any) -> None:
        self.ae = ae
        self.unit = torch.as_tensor(step * np.asarray(latent_std), dtype=torch.float32)
        self.dtype = np.dtype(dtype)

    def quantise(self, z: torch.Tensor) -> tuple[np.ndarray, int]:
        q = torch.round(z.float().cpu() / self.unit)
        clipped = int((q.abs() > 32767).sum())
        return q.clamp(-32767, 32767).to(torch.int32).numpy(), clipped

    def decode(self, symbols: np.ndarray) -> np.ndarray:
        z = torch.from_numpy(symbols.astype(np.float32)) * self.unit
        device = next(self.ae.model_.parameters()).device
        with torch.no_grad():
            x = self.ae.model_.decode(z.to(device)).float().cpu().numpy()
        if self.dtype == np.uint8:
            return np.clip(np.rint(x), 0, 255).astype(np.uint8)
        return x.astype(np.float32)


def write_compressed(
    ae: FittedModel,
    X: Any,
    dtype: Any,
    dest: IO[bytes],
    *,
    step: float = 0.05,
    scratch: Path | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Compress the samples of ``X`` (an array or a store) into ``dest``; return the report.

    The report has ``bits_per_sample``, ``bytes`` (the whole file), ``raw_bytes`` (the samples
    as ``dtype``), ``mse`` and ``psnr`` of the decompressed samples against the originals (raw
    units; the PSNR's peak, ``psnr_peak``, is the data's range: digits valued 0-16 have a peak
    of 16, not 255), ``mse_standardised`` (the units training and the report use), and
    ``mse_unquantised``, the autoencoder's own distortion without quantisation.
    """
    if not hasattr(ae, "latent_std_"):
        raise AekitError("the run has no latent statistics (trained by an older aekit); retrain.")
    if not (math.isfinite(step) and step > 0):
        raise AekitError(f"--step must be a finite number > 0; got {step}.")
    codec = _Codec(ae, step, ae.latent_std_, dtype)
    compressor = lzma.LZMACompressor(preset=9 | lzma.PRESET_EXTREME)
    digest = hashlib.sha256()
    squared = squared_model = squared_standardised = 0.0
    std = ae.model_.scaler.std.cpu().numpy().astype(np.float64)
    low, high = np.inf, -np.inf
    rows = clipped = 0
    with tempfile.TemporaryFile(dir=scratch) as payload:

        def put(data: bytes) -> None:
            digest.update(data)
            payload.write(data)

        for x in ae.batches(X, BLOCK_ROWS):  # blocks as read_compressed unpacks them
            with torch.no_grad():
                z = ae.model_.encode(x)
                plain = ae.model_.decode(z).float().cpu().numpy()
            symbols, k = codec.quantise(z)
            clipped += k
            put(compressor.compress(_pack(symbols)))
            original = x.float().cpu().numpy()
            decoded = codec.decode(symbols).astype(np.float32)
            error = (decoded - original).astype(np.float64)
            squared += float(np.sum(error**2))
            squared_standardised += float(np.sum((error / std) ** 2))
            squared_model += float(np.sum((plain - original).astype(np.float64) ** 2))
            low, high = min(low, float(original.min())), max(high, float(original.max()))
            rows += len(x)
            if on_rows is not None:
                on_rows(len(x))
        put(compressor.flush())
        n = rows
        head = _write_header(dest, ae, codec, step, n, payload.tell(), digest.hexdigest())
        payload.seek(0)
        while chunk := payload.read(_COPY):
            dest.write(chunk)
        payload_bytes = payload.tell()
    values = n * int(np.prod(ae.sample_shape_))
    total = len(MAGIC) + 8 + head + payload_bytes
    mse = squared / max(values, 1)
    peak = (high - low) or 1.0
    return {
        "samples": n,
        "bytes": total,
        "bits_per_sample": 8 * total / max(n, 1),
        "raw_bytes": values * codec.dtype.itemsize,
        "ratio": values * codec.dtype.itemsize / total,
        "mse": mse,
        "psnr": float(10 * np.log10(peak**2 / mse)) if mse > 0 else float("inf"),
        "psnr_peak": peak,
        "mse_standardised": squared_standardised / max(values, 1),
        "mse_unquantised": squared_model / max(values, 1),
        "clipped_values": clipped,
        "step": step,
    }


def _write_header(
    dest: IO[bytes], ae: FittedModel, codec: _Codec, step: float, n: int, size: int, sha: str
) -> int:
    """Write the file's magic, its JSON header and the header's CRC; return the header's
    length in bytes."""
    header = {
        "format_version": FORMAT_VERSION,
        "fingerprint": fingerprint(ae.model_),
        "sample_shape": list(ae.sample_shape_),
        "dtype": codec.dtype.name,
        "n": n,
        "latent_dim": int(ae.latent_dim),
        "step": float(step),
        "latent_std": [float(v) for v in ae.latent_std_],
        "block_rows": BLOCK_ROWS,
        "codec": "xz",
        "payload_bytes": size,
        "payload_sha256": sha,
    }
    head = json.dumps(header, sort_keys=True).encode()
    dest.write(MAGIC + struct.pack("<I", len(head)) + head + struct.pack("<I", zlib.crc32(head)))
    return len(head)


def read_header(src: IO[bytes], name: str) -> dict[str, Any]:
    """Check the magic and the header's CRC; leave ``src`` at the payload."""
    if src.read(len(MAGIC)) != MAGIC:
        raise AekitError(f"{name} is not an aekit compressed file (.aek); check the path.")
    raw = src.read(4)
    size = struct.unpack("<I", raw)[0] if len(raw) == 4 else -1
    head = src.read(size) if 0 < size < (64 << 20) else b""
    crc = src.read(4)
    if not head or len(crc) != 4 or zlib.crc32(head) != struct.unpack("<I", crc)[0]:
        raise AekitError(f"{name}: the header is corrupted (checksum mismatch); nothing decoded.")
    header: dict[str, Any] = json.loads(head)
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise AekitError(
            f"{name} was written by a newer aekit (format "
            f"{header['format_version']}); upgrade aekit."
        )
    return header


def read_compressed(
    ae: FittedModel, src: IO[bytes], name: str
) -> tuple[dict[str, Any], Iterator[np.ndarray]]:
    """The header of ``src`` and an iterator over its decoded samples, block by block.

    Refuses a file made by another model (fingerprint), or whose payload does not match its
    checksum, before decoding anything.
    """
    header = read_header(src, name)
    mine = fingerprint(ae.model_)
    if header["fingerprint"] != mine:
        raise AekitError(
            f"{name} was compressed by another model (fingerprint {header['fingerprint'][:12]}, "
            f"this run's is {mine[:12]}); decompress it with the run that compressed it."
        )
    start = src.tell()
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(_COPY):
        digest.update(chunk)
        size += len(chunk)
    if size != header["payload_bytes"] or digest.hexdigest() != header["payload_sha256"]:
        raise AekitError(
            f"{name} is corrupted or truncated (payload checksum mismatch); nothing decoded."
        )
    src.seek(start)
    _check_header(header, ae, name)
    codec = _Codec(ae, header["step"], header["latent_std"], header["dtype"])

    def blocks() -> Iterator[np.ndarray]:
        latent_dim, n, block = header["latent_dim"], header["n"], header["block_rows"]
        with lzma.LZMAFile(src) as stream:
            for first in range(0, n, block):
                rows = min(block, n - first)
                data = stream.read(2 * rows * latent_dim)
                if len(data) != 2 * rows * latent_dim:
                    raise AekitError(f"{name}: its header's n ({n}) is more than it holds.")
                yield codec.decode(_unpack(data, rows, latent_dim))
            if stream.read(1):
                raise AekitError(f"{name}: it holds more samples than its header's n ({n}).")

    return header, blocks()


def _check_header(header: dict[str, Any], ae: FittedModel, name: str) -> None:
    """Refuse header fields that cannot describe this model's output, naming the field: the
    header's checksum says it was not damaged, not that it was written by aekit."""
    latent_dim = int(ae.latent_dim)
    std = header.get("latent_std")
    problems = {
        "sample_shape": header.get("sample_shape") != list(ae.sample_shape_),
        "latent_dim": header.get("latent_dim") != latent_dim,
        "block_rows": header.get("block_rows") != BLOCK_ROWS,
        "dtype": header.get("dtype") not in ("uint8", "float16", "float32", "float64"),
        "n": not (isinstance(header.get("n"), int) and header["n"] >= 0),
        "step": not (_is_number(header.get("step")) and 0 < header["step"] < math.inf),
        "latent_std": not (
            isinstance(std, list) and len(std) == latent_dim
            and all(_is_number(v) and 0 < v < math.inf for v in std)
        ),
    }  # fmt: skip
    bad = [field for field, wrong in problems.items() if wrong]
    if bad:
        field = bad[0]
        raise AekitError(
            f"{name}: its header's {field} ({header.get(field)!r}) does not fit the model that "
            f"decodes it (sample_shape {list(ae.sample_shape_)}, latent_dim {latent_dim}, "
            f"block_rows {BLOCK_ROWS}); the file was edited: compress the data again."
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compress_bytes(ae: FittedModel, X: Any, step: float) -> tuple[bytes, dict[str, Any]]:
    """``X`` (an array or a store) compressed in memory, and the report."""
    buffer = io.BytesIO()
    dtype = getattr(as_store(X), "dtype", np.float32)
    report = write_compressed(ae, X, dtype, buffer, step=step)
    return buffer.getvalue(), report


def decompress_bytes(ae: FittedModel, data: bytes) -> np.ndarray:
    """The samples of :func:`compress_bytes`' output, all at once."""
    header, blocks = read_compressed(ae, io.BytesIO(data), "data")
    decoded = list(blocks)
    if not decoded:
        return np.zeros((0, *header["sample_shape"]), dtype=header["dtype"])
    return np.concatenate(decoded)


def compress_file(
    ae: FittedModel,
    store: Any,
    out: str | Path,
    *,
    step: float = 0.05,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Compress every sample of ``store`` into ``out`` (``.aek``), published when complete."""
    from aekit.apply.maps import progress_bar
    from aekit.apply.outputs import check_output

    out = check_output(out, (".aek",))
    with (
        published(out) as tmp,
        progress_bar(store.n, "compress", progress) as bar,
        open(tmp, "xb") as dest,
    ):
        report = write_compressed(
            ae, store, store.dtype, dest, step=step, scratch=out.parent, on_rows=bar.update
        )
    return {"out": str(out), **report}


def decompress_file(
    ae: FittedModel, path: str | Path, out: str | Path, *, progress: bool | None = None
) -> dict[str, Any]:
    """Decode ``path`` (``.aek``) into ``out`` (``.npy``, ``.parquet`` or ``.zarr``)."""
    from aekit.apply.maps import feature_names, progress_bar
    from aekit.apply.outputs import Output, check_output

    path = Path(path)
    if not path.is_file():
        raise AekitError(f"{path} does not exist; give the file 'aekit compress' wrote.")
    out = check_output(out)
    with open(path, "rb") as src:
        header, blocks = read_compressed(ae, src, str(path))
        names = feature_names(None, ae)
        output = Output(
            out, header["n"], tuple(header["sample_shape"]), has_labels=False, names=names
        )
        try:
            with progress_bar(header["n"], "decompress", progress) as bar:
                for block in blocks:
                    output.write(block)
                    bar.update(len(block))
            output.commit({"source": {"kind": "decompress", "path": str(path)}})
        except BaseException:
            output.abort()
            raise
    return {"out": str(out), "samples": header["n"], "sample_shape": header["sample_shape"]}
