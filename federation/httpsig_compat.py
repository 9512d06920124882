"""Import `httpsig` quietly.

httpsig 1.3 imports `pkg_resources` just to read its own version. setuptools
81+ no longer ships that module (pyproject pins `setuptools<81` for it), and the
releases before warn on import; the warning means nothing to our operators.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    import httpsig
    from httpsig.utils import HttpSigException

__all__ = ["HttpSigException", "httpsig"]
