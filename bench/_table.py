"""Printing helpers shared by the benchmarks: a readable table, then one JSON line last."""

from __future__ import annotations

import json
import platform

import torch


def machine() -> str:
    card = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}{card}"


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for r in cells[1:]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def print_json(obj: dict) -> None:
    print(json.dumps(obj, sort_keys=True))
