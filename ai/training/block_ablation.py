"""Ablation of U-Net blocks: plain / CBAM / CMA / plain + edge head variants of one segmentation config, trained
with the same data, budget and seed, in one table (Dice per label, mean Dice, mean HD95, parameters, CPU s).

``python -m ai.training.block_ablation CONFIG --out DIR [--smoke] [--threads N]`` trains DIR/<variant> for each
VARIANTS entry (radview train's loop; the config's network becomes ai.nets.unet_variants.AttentionBlocksUNet
with the config network's in / out channels and ``channels``), and writes DIR/ablation.json and DIR/ablation.md.
Every number comes from that run: the validation metrics of each variant's best epoch (its card) and the CPU
seconds of its training (validation included). ``--smoke``: 1 epoch of 2 iterations, to check the pipeline.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from ai.model import ModelCard
from ai.training.config import TrainConfig
from viewer.core.errors import ConfigError, RadviewError

#: variant -> AttentionBlocksUNet arguments (block in encoder and decoder; the edge head on the plain U-Net, so
#: its effect is measured alone)
VARIANTS = {"plain": {"block": "plain"}, "cbam": {"block": "cbam"}, "cma": {"block": "cma"},
            "plain+edge": {"block": "plain", "edge_head": True}}
#: the boundary loss weight of the edge variant when the config sets none
EDGE_WEIGHT = 0.5
SMOKE = {"epochs": 1, "iterations_per_epoch": 2}


def variant_config(config: TrainConfig, name: str) -> TrainConfig:
    """``config`` with the network of VARIANTS[``name``] (and edge_weight for an edge head), id suffixed."""
    if config.task != "segmentation" or config.adversarial is not None:
        raise ConfigError("the block ablation takes a plain segmentation config (task segmentation, no "
                          "adversarial section)", config.path)
    args = config.network.get("args", {})
    missing = [k for k in ("in_channels", "out_channels", "channels") if k not in args]
    if missing:
        raise ConfigError(f"network.args lacks {', '.join(missing)}: the variants take them from it", config.path)
    network = {"class": "AttentionBlocksUNet",
               "args": {"spatial_dims": 3, "in_channels": args["in_channels"], "out_channels": args["out_channels"],
                        "channels": list(args["channels"]), "where": "both", **VARIANTS[name]}}
    edge = (config.edge_weight or EDGE_WEIGHT) if VARIANTS[name].get("edge_head") else 0.0
    return config.replace(network=network, edge_weight=edge, id=f"{config.id}-ablation-{name}")


def parameter_count(network: dict) -> int:
    """Weights of the network ``network`` describes (the edge head included)."""
    from ai.formats.builtin import build_network

    return sum(p.numel() for p in build_network(network).parameters())


def run_ablation(config: TrainConfig, out: str | Path, *, smoke: bool = False, device: str = "cpu",
                 threads: int | None = 1) -> dict:
    """Train every variant into ``out``/<variant> and return the record written as ablation.json."""
    from ai.training.loop import train

    if smoke:
        config = config.replace(**SMOKE)
    out = Path(out)
    rows = []
    for name in VARIANTS:
        run_config = variant_config(config, name)
        cpu = time.process_time()
        folder = train(run_config, out / name, device=device, threads=threads)
        card = ModelCard.from_file(folder / "model.json")
        rows.append({"variant": name, "network": run_config.network, "edge_weight": run_config.edge_weight,
                     "params": parameter_count(run_config.network), "cpu_s": round(time.process_time() - cpu, 1),
                     "best_epoch": card.training["best_epoch"],
                     "metrics": {m["name"]: m["value"] for m in card.metrics}})
    return {"name": "U-Net block ablation (plain / CBAM / CMA / +edge)", "date": time.strftime("%Y-%m-%d"),
            "config": str(config.path) if config.path else config.id, "smoke": smoke,
            "budget": {"epochs": config.epochs, "iterations_per_epoch": config.iterations_per_epoch,
                       "batch_size": config.batch_size, "seed": config.seed},
            "data": f"validation: {card.training['data']['validation']['described']}", "rows": rows}


def markdown(record: dict, labels: dict[int, str]) -> str:
    """The record as a Markdown table with a heading that names the config, the budget and the data."""
    names = [labels[k] for k in sorted(labels) if k]
    columns = [*(f"dice_{n}" for n in names), "mean_dice", "mean_hd95_mm"]
    budget = record["budget"]
    smoke = " (SMOKE run: checks the pipeline, measures nothing)" if record["smoke"] else ""
    lines = [f"# {record['name']}", "",
             f"Config {record['config']}; {budget['epochs']} epoch(s) x {budget['iterations_per_epoch']} iterations x "
             f"{budget['batch_size']} patches, seed {budget['seed']}{smoke}; "
             f"measured on {record['data']} (best epoch of each run); CPU s = training + validation of that run. "
             f"python -m ai.training.block_ablation, {record['date']}.", "",
             "| variant | " + " | ".join(columns) + " | params | CPU s |",
             "| --- |" + " --- |" * (len(columns) + 2)]
    for row in record["rows"]:
        values = [row["metrics"].get(c) for c in columns]
        shown = ["-" if v is None else f"{v:g}" for v in values]
        lines.append(f"| {row['variant']} | " + " | ".join(shown) + f" | {row['params']:,} | {row['cpu_s']:g} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ai.training.block_ablation", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="a segmentation training config (its data, labels, budget and seed)")
    parser.add_argument("--out", required=True, help="folder for the runs and ablation.json / ablation.md")
    parser.add_argument("--smoke", action="store_true", help="1 epoch of 2 iterations per variant")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        config = TrainConfig.from_yaml(args.config)
        record = run_ablation(config, args.out, smoke=args.smoke, device=args.device, threads=args.threads)
    except RadviewError as err:
        print(f"block_ablation: error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    (out / "ablation.json").write_text(json.dumps(record, indent=1))
    table = markdown(record, config.labels)
    (out / "ablation.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
