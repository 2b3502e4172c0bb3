"""Optional OpenMMLab libraries: a clear error with the install command when one is missing."""
from __future__ import annotations


def require(package: str, what: str, extra: str) -> None:
    """Fail with the install command when an optional OpenMMLab library is missing."""
    from importlib.util import find_spec
    if find_spec(package) is None:
        raise ImportError(f'{what} needs {package}, which is not installed: '
                          f'pip install "parc_mm[{extra}]" (or bash tools/setup_env.sh for '
                          'the whole pinned stack).')
