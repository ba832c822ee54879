"""``lumbar-instability agreement READER READER…``: reader agreement on the same studies.

Each argument is one reader (or one repeat, or one method): a session,
landmarks or SR file, a batch ``results.csv``/``.parquet``, or a folder of
them.  Prints ICC(2,1)/ICC(3,1) with 95 % intervals, SEM, SDC, Bland–Altman
bias and limits, and kappa of the unstable verdict; ``--out DIR`` writes the
tables (CSV, JSON) and one Bland–Altman PNG per quantity.  See
``docs/agreement.md``.
"""

from __future__ import annotations

import argparse
import json

HELP = "reader agreement (ICC, Bland-Altman, SEM/SDC, kappa) of two or more readings of the same studies"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "readings",
        nargs="+",
        metavar="READER",
        help="one per reader: a session/landmarks JSON, an SR, a batch results table, or a folder of them",
    )
    parser.add_argument(
        "--reader",
        action="append",
        metavar="NAME",
        help="name of each reader, in the order of the arguments (repeat; default: file/folder names)",
    )
    parser.add_argument(
        "--criteria",
        default="default",
        metavar="NAME|FILE",
        help="criteria for the unstable verdict (default, white-panjabi, or a settings file)",
    )
    parser.add_argument(
        "--common",
        action="store_true",
        help="compare only the studies every reader read (default: refuse unmatched studies)",
    )
    parser.add_argument("--out", metavar="DIR", help="write the tables (CSV, JSON) and Bland-Altman PNGs here")
    parser.add_argument("--json", action="store_true", help="print agreement.json instead of a table")


def run(args: argparse.Namespace) -> int:
    from app.agreement import agreement, format_agreement, records, write_agreement

    result = agreement(args.readings, args.reader, criteria=args.criteria, common=args.common)
    if args.out:
        write_agreement(result, args.out)
    if args.json:
        doc = {
            "readers": result.readers,
            "studies": len(result.studies),
            "matched_by": result.matched_by,
            "criteria": result.criteria,
            "icc": records(result.icc),
            "bland_altman": records(result.bland_altman),
            "kappa": records(result.kappa),
        }
        print(json.dumps(doc, indent=2, allow_nan=False, ensure_ascii=False))
    else:
        print(format_agreement(result))
        if args.out:
            print(f"\nTables and plots written to {args.out}")
    return 0
