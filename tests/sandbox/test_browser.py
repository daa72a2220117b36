"""The done-when test: headless Chromium drives the sandbox page like a workshop trainer would.

Type in the Chinese officer's pane, see the message arrive in the Vietnamese and Lao panes, press a
button, download a document the bot sent; the screenshot is saved to artifacts/sandbox.png.
Needs Debian's chromium and chromium-driver (`scripts/ensure-chromium`); skipped with the reason when
they are absent. Selenium never downloads anything: the driver path is given and SE_OFFLINE is set.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest

from bot.sandbox.demo import CASE_TAG
from bot.sandbox.runner import Sandbox, SandboxOptions
from tests.sandbox.conftest import MISSING, base_settings
from tests.support.translators import TagTranslator

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHINESE = "我们在凭祥查获了三百公斤穿山甲鳞片，请越方核查收货人。"
ANSWER = "Đã nhận, chúng tôi đang kiểm tra người nhận ở Lạng Sơn."
WAIT = 20


class ThreadedSandbox:
    """A sandbox running in its own event loop on a thread, so the test can block on the browser."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def run(self, coro: Any, timeout: float = 60) -> Any:
        """Run a coroutine in the sandbox's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> Self:
        self.thread.start()
        self.run(self.box.start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.box.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Start headless Chromium through Debian's chromedriver (skip when they are not installed)."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("needs Debian's chromium and chromium-driver: run scripts/ensure-chromium (as root)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1900,1000",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def _texts(driver: Any, pane: str) -> list[str]:
    """Return the text of every message in a pane."""
    from selenium.webdriver.common.by import By

    return [el.text for el in driver.find_elements(By.CSS_SELECTOR, f"#pane-{pane} .messages .msg")]


def _type(driver: Any, pane: str, text: str) -> None:
    """Type a message into a pane and press Enter."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, f"#pane-{pane} textarea")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def _attach(browser: Any, pane: str, name: str, data: bytes) -> None:
    """Send a file from a pane through its file picker."""
    from selenium.webdriver.common.by import By

    path = browser.downloads.parent / "uploads" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    browser.find_element(By.CSS_SELECTOR, f"#pane-{pane} .file-input").send_keys(str(path))


def _area_handles(module: str) -> bool:
    """Tell whether an area's handler module registers handlers in this build."""
    import importlib
    import inspect

    return "add_handler" in inspect.getsource(importlib.import_module(module))


def test_trainer_drives_the_page(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT)
    options = SandboxOptions(data_dir=tmp_path / "sandbox", port=0, translator=TagTranslator(missing=MISSING))
    with ThreadedSandbox(Sandbox(base_settings(tmp_path / "home"), options)) as sandbox:
        demo = sandbox.box.demo
        browser.get(sandbox.box.url)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        panes = browser.find_elements(By.CSS_SELECTOR, "#panes .pane")
        assert [p.get_attribute("data-lang") for p in panes] == ["zh", "vi", "lo", "en", "en"]
        banner = browser.find_element(By.ID, "banner")
        assert (
            banner.is_displayed() and "liaison models install FILE" in banner.text and "zh→lo" in banner.text
        )
        # The officers registered through real invites: each pane shows the bot's welcome in its language.
        wait.until(lambda d: any("欢迎" in t for t in _texts(d, "zh-officer")))
        assert any("ຍິນດີ" in t for t in _texts(browser, "lo-officer")), _texts(browser, "lo-officer")

        # Press a button: the coordinator opens the language menu and picks English.
        _type(browser, "coordinator", "/language")
        button = wait.until(
            ec.element_to_be_clickable(
                (By.XPATH, "//*[@id='pane-coordinator']//div[@class='keyboard']//button[text()='English']")
            )
        )
        before = len(_texts(browser, "coordinator"))
        button.click()
        wait.until(
            lambda d: len(_texts(d, "coordinator")) > before and "English" in _texts(d, "coordinator")[-1]
        )

        # The Lao officer sends a report through the pane's file picker.
        _attach(browser, "lo-officer", "ລາຍງານ.txt", "ລາຍງານ ການກວດ\n".encode())
        wait.until(
            lambda d: d.find_elements(
                By.XPATH, "//*[@id='pane-lo-officer']//li[contains(@class,'me')]//a[@download='ລາຍງານ.txt']"
            )
        )
        # Download a document the bot sent: the auditor's export when the audit area has /export.
        downloaded_from = _download(browser, wait, sandbox)

        # Type in the Chinese officer's pane; the relay brings it to the Vietnamese and Lao panes.
        relay = _area_handles("handlers.relay") and "case room" not in demo.skipped
        _type(browser, "zh-officer", CHINESE)
        wait.until(lambda d: any(CHINESE in t for t in _texts(d, "zh-officer")))
        if relay:
            wait.until(lambda d: any(CHINESE in t for t in _texts(d, "vi-officer")))
            wait.until(lambda d: any(CHINESE in t for t in _texts(d, "lo-officer")))
            vi = [t for t in _texts(browser, "vi-officer") if CHINESE in t][-1]
            assert "[vi] " + CHINESE in vi  # translated for the Vietnamese officer, original quoted
            # No zh→lo model: the Lao officer gets the original as the bot sent it, with its note.
            lo = [t for t in _texts(browser, "lo-officer") if CHINESE in t][-1]
            assert "[lo]" not in lo and len(lo.split(CHINESE)[1].strip()) > 10, lo
            quote = browser.find_elements(By.CSS_SELECTOR, "#pane-vi-officer blockquote")
            assert quote and quote[-1].get_attribute("lang") == "zh"
            # The Vietnamese officer answers with Telegram's reply; the Chinese officer gets it as a reply.
            relayed = browser.find_elements(
                By.XPATH,
                f"//*[@id='pane-vi-officer']//li[contains(@class,'msg')][.//div[contains(.,'{CHINESE}')]]",
            )[-1]
            relayed.find_element(By.CSS_SELECTOR, ".reply").click()
            assert "Reply to:" in browser.find_element(By.CSS_SELECTOR, "#pane-vi-officer .replying").text
            _type(browser, "vi-officer", ANSWER)
            wait.until(lambda d: any(ANSWER in t for t in _texts(d, "zh-officer")))
            answer = browser.find_elements(
                By.XPATH,
                f"//*[@id='pane-zh-officer']//li[contains(@class,'msg')][.//div[contains(.,'{ANSWER}')]]",
            )[-1]
            assert CHINESE[:20] in answer.find_element(By.CSS_SELECTOR, ".reply-ref").text
        time.sleep(0.5)  # let the fonts settle before the picture
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "sandbox.png"))
        assert downloaded_from
        # On a phone-sized screen each pane fits the width and the others are a swipe away.
        browser.set_window_size(412, 900)
        time.sleep(0.3)
        viewport = browser.execute_script("return document.documentElement.clientWidth")
        widths = browser.execute_script(
            "return [...document.querySelectorAll('#panes .pane')].map(p => p.getBoundingClientRect().width)"
        )
        assert all(0 < w <= viewport for w in widths), (viewport, widths)
        browser.save_screenshot(str(ARTIFACTS / "sandbox-narrow.png"))
        if not relay:
            reason = demo.skipped.get("case room") or "handlers/relay.py registers no handler yet"
            pytest.skip(
                f"the relay is not in this build ({reason}): checked everything else, screenshot saved"
            )


def _download(browser: Any, wait: Any, sandbox: ThreadedSandbox) -> str:
    """Download a bot-sent document through the page; return what was downloaded."""
    from selenium.webdriver.common.by import By

    if _area_handles("handlers.audit"):
        _type(browser, "auditor", f"/export {CASE_TAG}")
        pane = "auditor"
    else:
        # No /export in this build: the relay brings the bot's copy of the Lao officer's report to the
        # Vietnamese officer (without a relay, the Lao officer's own copy is downloaded).
        pane = "vi-officer" if _area_handles("handlers.relay") else "lo-officer"
    selector = f"#pane-{pane} .msg.bot a.document" if pane != "lo-officer" else f"#pane-{pane} a.document"
    link = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))[-1]
    name = link.get_attribute("download")
    link.click()
    target = browser.downloads / name
    wait.until(
        lambda d: (
            target.exists() and target.stat().st_size > 0 and not list(browser.downloads.glob("*.crdownload"))
        )
    )
    if pane == "auditor":
        # The signed bundle itself: a ZIP with the manifest and the case's messages.
        with zipfile.ZipFile(target) as bundle:
            names = set(bundle.namelist())
        assert {"manifest.json", "messages.csv"} <= names, names
    assert target.read_bytes()
    return f"{pane}: {name}"
