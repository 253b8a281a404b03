"""Launch kit for member-owned co-operatives."""

import sys

# Plain syntax on purpose: this must run, and explain, on an older Python.
if sys.version_info < (3, 11):  # noqa: UP036
    sys.exit(
        "fundraiser needs Python 3.11 or newer (this is Python {}.{}): install a newer "
        "Python, then recreate the virtual environment with it".format(*sys.version_info[:2])
    )

__version__ = "0.1.0"
