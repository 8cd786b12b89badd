"""A custom gate that writes through every side channel: print, stderr, stdlib logging, warnings."""

import logging
import sys
import warnings


def noisy(ctx) -> bool:
    print("plain print from a gate")
    sys.stderr.write("a raw stderr write\r50%\r100%\n")
    logging.getLogger("some.library").warning("stdlib logging from a library")
    warnings.warn("a python warning", UserWarning, stacklevel=1)
    return True
