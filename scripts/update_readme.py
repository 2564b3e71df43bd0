"""Copy the numbers and the picture of a demo run into the README.

Run the default demo first (``bash scripts/demo.sh``, which fixes the torch
thread count), then::

    .venv/bin/python scripts/update_readme.py [flowspectrum-demo]

This copies the run's ``results.json`` to ``docs/_static/demo_results.json``
(adding the checksum of the picture), its ``spectrum.png`` to
``docs/_static/flowspectrum.png``, and rewrites the README's caption between
the ``demo-results`` markers from those numbers.  ``tests/test_demo_results.py``
checks that the README and ``docs/_static/demo_results.json`` agree.
"""

# Authors: The sklearn_flowspectrum developers
# SPDX-License-Identifier: BSD-3-Clause

import argparse
import hashlib
import json
import sys
from pathlib import Path

from sklearn_flowspectrum._atomic import all_or_nothing, atomic_output

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
STATIC = ROOT / "docs" / "_static"
RESULTS = STATIC / "demo_results.json"
PICTURE = STATIC / "flowspectrum.png"
BEGIN = "<!-- demo-results: written by scripts/update_readme.py; do not edit -->"
END = "<!-- /demo-results -->"
# The README describes the default run; anything else is refused.
DEFAULT_RUN = {"representation": "AllLayers", "mask": "safe", "seed": 0}


def percent(x):
    """An accuracy as the demo prints it (``0.7833`` -> ``"78.3%"``)."""
    return f"{x:.1%}"


def render(results):
    """The README's caption of the demo picture, from a demo's results."""
    acc = results["accuracy"]
    minutes = results["total_seconds"] / 60
    threads = results["torch_threads"]
    return (
        f"*The FlowSpectrum of the {results['split']['n_test']:,} held-out sessions "
        "(`flowspectrum-demo/spectrum.png` of the\n"
        f"default run: masked {results['representation']} images, "
        f"{results['epochs']} epochs on a CPU with {threads} torch "
        f"thread{'s' * (threads != 1)}, {minutes:.1f} minutes in all): each\n"
        "line is one session at its spectrum value d(A), each row a class, in "
        "their order on the\nline: the embedder places classes it confuses side "
        "by side (`line_order_`). VPN and\nnon-VPN traffic occupy separate halves "
        "of the line; Chat and Email share a spot (many of\nthose sessions are DNS "
        "or NetBIOS lookups of the capturing host). This run reports "
        f"{percent(acc['per_session'])} "
        f"per-session and\n{percent(acc['group_of_10'])} group-of-10 accuracy; an "
        "ExtraTrees on the same masked bytes, printed beside them\nfor reference, "
        f"reaches {percent(acc['extra_trees_per_session'])} per session "
        f"(`{RESULTS.relative_to(ROOT).as_posix()}`).*"
    )


def caption(readme):
    """The text between the markers of ``readme``."""
    try:
        head, rest = readme.split(BEGIN + "\n", 1)
        body, tail = rest.split("\n" + END, 1)
    except ValueError:
        raise ValueError(f"README has no {BEGIN!r} ... {END!r} block") from None
    return body


def update(readme, results):
    """``readme`` with its caption rewritten from ``results``."""
    old = caption(readme)
    block = f"{BEGIN}\n{old}\n{END}"
    return readme.replace(block, f"{BEGIN}\n{render(results)}\n{END}")


def check_default_run(results):
    """Raise ValueError unless ``results`` come from the default demo run."""
    wrong = {k: results.get(k) for k, v in DEFAULT_RUN.items() if results.get(k) != v}
    if results["split"].get("n_per_class") is not None:
        wrong["n_per_class"] = results["split"]["n_per_class"]
    if results["device"] != "cpu":
        wrong["device"] = results["device"]
    if wrong:
        raise ValueError(
            f"the README shows the default CPU demo run; these results have {wrong}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "demo_folder",
        nargs="?",
        default="flowspectrum-demo",
        help="the --out folder of the demo run (default flowspectrum-demo)",
    )
    args = parser.parse_args(argv)
    folder = Path(args.demo_folder)
    try:
        results = json.loads((folder / "results.json").read_text())
        check_default_run(results)
        picture = (folder / "spectrum.png").read_bytes()
        text = update(README.read_text(), results)
    except (OSError, ValueError, KeyError) as exc:
        print(f"update_readme: error: {exc}", file=sys.stderr)
        return 1
    results["readme_picture"] = {
        "path": PICTURE.relative_to(ROOT).as_posix(),
        "sha256": hashlib.sha256(picture).hexdigest(),
    }
    # All three files change together or not at all.
    with all_or_nothing():
        with atomic_output(RESULTS) as temporary:
            temporary.write_text(json.dumps(results, indent=2) + "\n")
        with atomic_output(PICTURE) as temporary:
            temporary.write_bytes(picture)
        with atomic_output(README) as temporary:
            temporary.write_text(text)
    acc = results["accuracy"]
    print(
        f"README: {percent(acc['per_session'])} per-session, "
        f"{percent(acc['group_of_10'])} group-of-10, ExtraTrees "
        f"{percent(acc['extra_trees_per_session'])}; "
        f"wrote {RESULTS.name} and {PICTURE.name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
