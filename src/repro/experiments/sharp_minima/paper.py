"""The papers' numbers this chapter compares with: references only, never our results."""

from __future__ import annotations

import math

# Keskar et al. 2017, Table 2 (accuracy, %, mean +- std over 5 runs) and Table 3 (Metric 2.1, full space), as
# quoted by the course report (section 2.2.3) and recalled in refs/papers.md section 2b, where they
# are marked UNVERIFIED against the paper's PDF. References only, never our results.
PAPER_SOURCE = "Keskar et al. 2017, Tables 2-3, as quoted in the course report §2.2.3 (UNVERIFIED against the PDF)"
PAPER_ACCURACY = {  # net: (SB train, LB train, SB test, LB test), each (mean, std)
    "F1": ((99.66, 0.05), (99.92, 0.01), (98.03, 0.07), (97.81, 0.07)),
    "F2": ((99.99, 0.03), (98.35, 2.08), (64.02, 0.2), (59.45, 1.05)),
    "C1": ((99.89, 0.02), (99.66, 0.2), (80.04, 0.12), (77.26, 0.42)),
    "C2": ((99.99, 0.04), (99.99, 0.01), (89.24, 0.12), (87.26, 0.07)),
    "C3": ((99.56, 0.44), (99.88, 0.30), (49.58, 0.39), (46.45, 0.43)),
    "C4": ((99.10, 1.23), (99.57, 1.84), (63.08, 0.5), (57.81, 0.17)),
}
PAPER_SHARPNESS = {  # net: (SB eps 1e-3, LB eps 1e-3, SB eps 5e-4, LB eps 5e-4), each (mean, std)
    "F1": ((1.23, 0.83), (205.14, 69.52), (0.61, 0.27), (42.90, 17.14)),
    "F2": ((1.39, 0.02), (310.64, 38.46), (0.90, 0.05), (93.15, 6.81)),
    "C1": ((28.58, 3.13), (707.23, 43.04), (7.08, 0.88), (227.31, 23.23)),
    "C2": ((8.68, 1.32), (925.32, 38.29), (2.07, 0.86), (175.31, 18.28)),
    "C3": ((29.85, 5.98), (258.75, 8.96), (8.56, 0.99), (105.11, 13.22)),
    "C4": ((12.83, 3.84), (421.84, 36.97), (4.07, 0.87), (109.35, 16.57)),
}
# Course report (section 3.2): F1 test accuracy with other optimizers (one run each).
REPORT_OPTIMIZERS = {"adam": (98.03, 97.81), "sgd": (97.82, 96.97), "adagrad": (97.95, math.nan)}
REPORT_SOURCE = "course report, section 3.2"
