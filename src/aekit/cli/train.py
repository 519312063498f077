"""``aekit train``: train an autoencoder on a store."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from aekit.errors import AekitError

if TYPE_CHECKING:
    from aekit.data.store import Store
    from aekit.estimator import Autoencoder

EXAMPLES = """examples:
  aekit train data/digits.zarr --out runs/digits --latent-dim 8 --hidden 256,64
  aekit train data/features.zarr --out runs/f --hidden none --epochs 50 --batch-size 512
"""


def parse_hidden(text: str) -> tuple[int, ...]:
    if text.lower() == "none":
        return ()
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(
            f"--hidden takes comma-separated widths such as 512,256, or none; not {text!r}"
        )
    return widths


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train an autoencoder on a store, streaming from disk",
        description=(
            "Train on the store's training split, validate on its validation split each epoch, "
            "and write RUN/metrics.csv, RUN/model.safetensors and RUN/model.json."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("store")
    parser.add_argument("--out", required=True, help="run folder to create")
    parser.add_argument("--kind", choices=("dense",), default="dense")
    parser.add_argument("--latent-dim", type=int, default=2)
    parser.add_argument("--hidden", type=parse_hidden, default=(64,), help="e.g. 512,256 or none")
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from aekit.data.store import open_store
    from aekit.estimator import Autoencoder
    from aekit.training import CSVLogger

    store = open_store(args.store)
    out = Path(args.out)
    if (out / "metrics.csv").exists():
        raise AekitError(f"{out} already holds a run; choose another --out or delete it.")
    ae = Autoencoder(
        latent_dim=args.latent_dim,
        hidden=args.hidden,
        activation=args.activation,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        random_state=args.seed,
        device=args.device,
        verbose=0 if args.quiet else 1,
    )
    try:
        ae._validate_params()
    except ValueError as exc:  # the estimator's message names the parameter; name the flag
        message = re.sub(
            r"The '(\w+)' parameter of Autoencoder",
            lambda m: "--" + m.group(1).replace("_", "-"),
            str(exc),
        )
        raise AekitError(message) from exc
    out.mkdir(parents=True, exist_ok=True)
    ae.fit(store, callbacks=[CSVLogger(out / "metrics.csv")])
    _save_model(ae, store, out)
    last = ae.history_[-1]
    print(
        f"trained {len(ae.history_)} epochs ({ae.stop_reason_}); "
        f"val_loss {last.get('val_loss', float('nan')):.4g}; wrote {out}"
    )
    return 0


def _save_model(ae: Autoencoder, store: Store, out: Path) -> None:
    """Weights as safetensors and the architecture as JSON: nothing a reader must unpickle."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in ae.model_.state_dict().items()}
    tmp = out / ".model.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(out / "model.safetensors")
    params = {k: v for k, v in ae.get_params().items() if k != "random_state"}
    description = {
        "kind": "dense",
        "sample_shape": list(ae.model_.sample_shape),
        "params": {**params, "hidden": list(params["hidden"])},
        "store": str(store.path),
    }
    tmp = out / ".model.json.tmp"
    tmp.write_text(json.dumps(description, indent=2) + "\n")
    tmp.replace(out / "model.json")
