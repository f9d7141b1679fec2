"""The test page in a real headless browser (Debian's chromium and chromium-driver, driven by
Selenium): a served function (`--reload`, a gunicorn worker) is sent a JSON event from the
page, which shows the answer and that request's log records; a broken save shows its error.

The screenshot the test takes is the one in docs/local.md: set SAVE_SCREENSHOTS=docs/images to
write it there (it always goes to the test's own folder)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.serve.conftest import ONE_PIXEL_PNG, Served

pytestmark = pytest.mark.slow

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

FUNCTION = """
import base64

DOT = base64.b64decode("ONE_PIXEL_PNG")

def handler(context, event):
    if event.path == "/dot.png":
        return context.Response(body=DOT, content_type="image/png")
    name = event.body["name"]
    context.logger.info_with("greeting", name=name)
    return {"greeting": f"hello {name}", "worker": context.worker_id}
""".replace("ONE_PIXEL_PNG", ONE_PIXEL_PNG)

BROKEN = """
def init_context(context):
    raise RuntimeError("the model file is missing")

def handler(context, event):
    return "never"
"""


@pytest.fixture
def browser() -> Iterator[Any]:
    missing = [path for path in (CHROMIUM, DRIVER) if not shutil.which(path)]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium")
    if missing:
        message = f"not installed: {', '.join(missing)} (apt install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)  # .ci/run installs them: a missing one is a broken gate
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1280,760"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(condition: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = condition()
        except Exception:  # the element is not there yet, or is being redrawn
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"the page never showed {what}"
        time.sleep(0.1)


def test_send_an_event_from_the_page_and_see_its_answer_and_logs(
    tmp_path: Path, start_server: Callable[..., Served], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    source = tmp_path / "greeter"
    source.mkdir()
    (source / "main.py").write_text(FUNCTION)
    served = start_server(
        "",
        "--reload",
        "--workers",
        "1",
        source=["--code-src", str(source), "--handler", "main:handler"],
    )

    def text(element_id: str) -> str:
        return str(browser.find_element(By.ID, element_id).text)

    browser.get(f"http://127.0.0.1:{served.admin_port}/")
    wait_until(lambda: text("fn-name") == "greeter", "the function's name")
    assert text("fn-handler") == "main:handler" and text("fn-source") == str(source)
    wait_until(lambda: text("ready") == "ready", "readiness")

    body = browser.find_element(By.ID, "body-text")
    body.clear()
    body.send_keys('{"name": "Ada"}')
    browser.find_element(By.ID, "send").click()
    wait_until(lambda: text("status") == "200 OK", "the status")
    assert '"greeting": "hello Ada"' in text("response-body")
    records = wait_until(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#logs .log-record"), "log records"
    )
    assert len(records) == 1
    record = records[0]
    assert record.find_element(By.CLASS_NAME, "message").text == "greeting"
    assert record.find_element(By.CLASS_NAME, "level").text.lower() == "info"
    assert "name=Ada" in record.text
    request_id = text("request-id")
    assert request_id in text("response-headers")  # the id the server echoed, the logs' id
    assert "requests" in browser.page_source
    wait_until(lambda: text("metric-requests") == "1", "the request count from /metrics")

    history = browser.find_elements(By.CSS_SELECTOR, "#history .history-item")
    assert len(history) == 1 and "POST / → 200" in history[0].text
    history[0].find_element(By.CLASS_NAME, "resend").click()
    wait_until(lambda: text("request-id") != request_id, "the resent request")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#history .history-item")) == 2
    wait_until(lambda: text("metric-requests") == "2", "the second request counted")
    save_screenshot(browser, tmp_path, "test-page.png")

    Select(browser.find_element(By.ID, "method")).select_by_visible_text("GET")
    path = browser.find_element(By.ID, "path")
    path.clear()
    path.send_keys("/dot.png")
    Select(browser.find_element(By.ID, "body-mode")).select_by_value("none")
    browser.find_element(By.ID, "send").click()
    image = wait_until(
        lambda: browser.find_element(By.CSS_SELECTOR, "#response-body img"), "the image"
    )
    wait_until(lambda: image.get_property("naturalWidth") == 1, "the image decoded")

    (source / "main.py").write_text(BROKEN)
    banner = browser.find_element(By.ID, "reload-error")
    wait_until(banner.is_displayed, "the reload error", seconds=30)
    assert "the model file is missing" in banner.text
    (source / "main.py").write_text(FUNCTION)
    wait_until(lambda: not banner.is_displayed(), "the error gone after a good save", seconds=30)


def save_screenshot(browser: Any, folder: Path, name: str) -> None:
    browser.save_screenshot(str(folder / name))
    wanted = os.environ.get("SAVE_SCREENSHOTS")
    if wanted:
        shutil.copy(folder / name, Path(wanted) / name)
