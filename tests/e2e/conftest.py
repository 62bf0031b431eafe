"""The browser tests' fixtures (``tests/e2e/browser.py``): a module's own ``demo`` wins."""

from tests.e2e.browser import browser, demo

__all__ = ["browser", "demo"]
