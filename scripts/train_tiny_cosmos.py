"""Trains cosmos-tiny on the synthetic world and writes its safetensors (see configs/train/pixel/tiny-cosmos.yaml)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from dfbench.adapters.cosmos_tiny import save_tiny
from dfbench.adapters.cosmos_train import train_tiny_cosmos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("configs/train/pixel/tiny-cosmos.yaml"))
    parser.add_argument("--export", type=Path, default=Path("adapters/assets/tiny-cosmos.safetensors"))
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    transformer, vae, configs, prompt = train_tiny_cosmos(config, log=lambda line: print(line, flush=True))
    save_tiny(args.export, transformer, vae, configs, prompt, extra={"recipe": str(args.config), "seed": config["seed"]})
    print(f"wrote {args.export} ({args.export.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
