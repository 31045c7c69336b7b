"""Headless Chromium for the browser tests (Debian's chromium + chromium-driver, driven by selenium with the driver
path given explicitly). ``bash scripts/browser-deps.sh`` installs them; tests skip with a reason without them."""
import contextlib
import os
import shutil
import tempfile

CHROMIUM = next(filter(None, (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))), None)
DRIVER = shutil.which("chromedriver") or (os.path.exists("/usr/bin/chromedriver") and "/usr/bin/chromedriver") or None
MISSING = "no chromium/chromedriver found (bash scripts/browser-deps.sh installs them)"


@contextlib.contextmanager
def chromium():
    """A selenium Chrome driver on a fresh profile, closed on exit. Flags: root-safe headless, no network chatter,
    autoplay allowed (the tests play videos)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="partwise-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_script_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
