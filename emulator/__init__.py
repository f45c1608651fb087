"""bandwidth-emulator: a local emulator of the Bandwidth Messaging v2 API."""

from importlib.metadata import PackageNotFoundError, version

try:
    # One source of truth: the package metadata (pyproject.toml), shown by --version,
    # /_emulator/health and the control API's OpenAPI document.
    __version__ = version("bandwidth-emulator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
