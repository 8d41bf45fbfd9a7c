"""``medcoding explain``: write the explorer page of one course."""

from __future__ import annotations

import argparse

from medcoding import runs
from medcoding.explain.attribution import METHODS
from medcoding.explain.case import build_case


def main(argv: list[str] | None = None) -> int:
    """``medcoding explain``: write the explorer page of one course."""
    import time

    parser = argparse.ArgumentParser(
        prog="medcoding explain",
        description="AttInGrad explanation page (self-contained HTML) for one course.")
    parser.add_argument("--model", required=True, help="model directory (medcoding train)")
    parser.add_argument("--case", required=True, help="course_id of the course to explain")
    parser.add_argument("--prepared", required=True, help="prepared split directory")
    parser.add_argument("--split", default="test", help="split holding the course (test)")
    parser.add_argument("--out", required=True, help="HTML file to write")
    parser.add_argument("--top-k", type=int, default=10, help="predicted codes to show (10)")
    parser.add_argument("--method", default="attingrad", choices=METHODS)
    parser.add_argument("--include-text", action="store_true",
                        help="write the note text into the page even for a non-synthetic cohort")
    args = parser.parse_args(argv)

    from medcoding.explorer import build_page
    from medcoding.predict import Coder

    started = time.perf_counter()
    row = runs.load_course(args.prepared, args.split, args.case)
    synthetic = runs.is_synthetic(args.prepared)
    coder = Coder.from_pretrained(args.model)
    case = build_case(coder, row, top_k=args.top_k, method=args.method, synthetic=synthetic)
    path = build_page(case, args.out, include_text=args.include_text)
    withheld = "" if synthetic or args.include_text else " (note text withheld: real cohort)"
    print(f"wrote {path}{withheld} in {time.perf_counter() - started:.1f} s")
    return 0
