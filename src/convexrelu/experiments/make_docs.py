"""Assemble ``docs/experiments.md`` from a real run of ``convexrelu reproduce`` and ``bench``.

Usage (the commands the page says regenerate it)::

    convexrelu reproduce all --quick --out docs/figures
    convexrelu bench --quick --out docs/bench
    python -m convexrelu.experiments.make_docs [--figures docs/figures] [--bench docs/bench]

The hand-written summary lives in ``docs/experiments_summary.md`` and is included as is;
everything else (figures, findings, tables, machine) is copied from the run's files.
"""

from __future__ import annotations

import argparse
import json
import os
import re

from convexrelu.experiments._common import write_text

FIGS = ("fig1", "fig2", "fig3", "fig4", "fig5", "fig6")


def shift(md, levels=2):
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + levels) + " ", md, flags=re.M)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--figures", default="docs/figures")
    p.add_argument("--bench", default="docs/bench")
    p.add_argument("--out", default="docs/experiments.md")
    args = p.parse_args(argv)
    docs = os.path.dirname(os.path.abspath(args.out))
    rel = lambda path: os.path.relpath(os.path.abspath(path), docs)  # noqa: E731
    parts = ["# Experiments and benchmarks", ""]
    summary = os.path.join(docs, "experiments_summary.md")
    if os.path.exists(summary):
        parts += [open(summary, encoding="utf-8").read().strip(), ""]
    machine = None
    parts += ["## The paper's experiments", ""]
    for fig in FIGS:
        js = os.path.join(args.figures, f"{fig}.json")
        if not os.path.exists(js):
            parts += [f"*{fig}: not run.*", ""]
            continue
        with open(js) as fh:
            data = json.load(fh)
        machine = machine or data["machine"]
        md = open(os.path.join(args.figures, f"{fig}.md"), encoding="utf-8").read()
        parts += [shift(md, 1).strip(), "", f"![{fig}]({rel(os.path.join(args.figures, fig + '.png'))})", ""]
        if data.get("deviations"):
            parts += ["Differences from the paper: " + "; ".join(data["deviations"]) + ".", ""]
    bj = os.path.join(args.bench, "bench.json")
    if os.path.exists(bj):
        with open(bj) as fh:
            bench = json.load(fh)
        machine = machine or bench.get("machine")
        parts += ["## Benchmark", "", shift(open(os.path.join(args.bench, "bench.md"),
                                                 encoding="utf-8").read(), 1).strip(), "",
                  f"![bench]({rel(os.path.join(args.bench, 'bench.png'))})", ""]
    if machine:
        parts += ["## Machine", "", "```", json.dumps(machine, indent=2), "```", ""]
    text = "\n".join(parts)
    write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
