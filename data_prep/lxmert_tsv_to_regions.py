"""Convert LXMERT / bottom-up-attention tsv files into ``regions.h5``.

    python data_prep/lxmert_tsv_to_regions.py vg_gqa_obj36.tsv gqa_testdev_obj36.tsv --out regions.h5

See data_prep/README.md. The work is done by :func:`rexlib.dataset.regions_tsv.convert_tsv`.
"""

from __future__ import annotations

import argparse
import sys

from rexlib.dataset.regions_tsv import convert_tsv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tsv", nargs="+", help="tsv files (img_id, img_h, img_w, ..., boxes, features)")
    parser.add_argument("--out", required=True, help="regions.h5 to write")
    args = parser.parse_args(argv)
    try:
        report = convert_tsv(args.tsv, args.out)
    except (OSError, ValueError) as error:
        print(f"lxmert_tsv_to_regions: {error}", file=sys.stderr)
        return 1
    return 0 if report.images else 1


if __name__ == "__main__":
    sys.exit(main())
