"""A headless Chromium (Debian's, driven by Selenium) for the HTML report's browser tests.

Where Chromium, its driver or Selenium is missing the browser tests skip, naming what to install;
with ``$CI`` true they fail instead, so a CI run never passes without having opened the page.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from kibertas_async.testing import ci_requires_sandbox

INSTALL_HINT = "apt-get install chromium chromium-driver (scripts/install does it) and pip install -e '.[test]'"


def _unavailable(what: str) -> None:
    message = f"{what}: the HTML report's browser tests need it ({INSTALL_HINT})"
    if ci_requires_sandbox():
        pytest.fail(f"CI is set: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium WebDriver, 1280x900, for the whole session."""
    try:
        from selenium import webdriver
    except ImportError:
        _unavailable("selenium is not installed")
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        _unavailable("Chromium is not installed (no chromium or chromedriver on PATH)")
    assert chromium is not None and driver_path is not None
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # --no-sandbox: tests may run as root (containers), where Chromium's own sandbox refuses to start.
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()
