"""The demo program's analytics dashboard in a real headless Chromium: every chart draws, with no console
error and no request leaving the machine; a screenshot is saved to .artifacts/admin-dashboard.png."""

import os
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from analytics.models import MemberAnalytics

ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / ".artifacts"))
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# As the machine's notes advise: no background networking (the network is closed), a fresh profile.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,2400",
]
# Whether each canvas has painted pixels (a chart drew something, not just an empty canvas).
PAINTED = """
return Array.from(document.querySelectorAll('canvas[data-chart]')).map(function (canvas) {
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) { painted++; } }
  return [canvas.dataset.chart, canvas.dataset.drawn === '1', painted];
});
"""


@pytest.fixture
def chromium(tmp_path):
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        message = "needs Chromium and ChromeDriver: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_demo_dashboard_draws_every_chart(live_server, chromium):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    call_command("seed_demo", "--members", "120", "--admin-password", "browser-test", stdout=open(os.devnull, "w"))
    chromium.get(f"{live_server.url}/admin/login/?next=/admin/analytics/dashboard/")
    chromium.find_element(By.NAME, "username").send_keys("admin")
    chromium.find_element(By.NAME, "password").send_keys("browser-test")
    chromium.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    WebDriverWait(chromium, 30).until(
        lambda driver: (
            driver.find_elements(By.CSS_SELECTOR, "canvas[data-chart]")
            and all(drawn for _, drawn, _ in driver.execute_script(PAINTED))
        )
    )
    charts = chromium.execute_script(PAINTED)
    ARTIFACTS.mkdir(exist_ok=True)
    chromium.save_screenshot(str(ARTIFACTS / "admin-dashboard.png"))

    assert "Analytics dashboard: Demo" in chromium.title or "Analytics dashboard" in chromium.page_source
    assert [name for name, _, _ in charts] == [
        "members-by-tier",
        "rfm-grid",
        "retention-cohorts",
        "nps-trend",
        "liability-expiries",
        "clv-distribution",
        "clv-cac",
        "reward-attainability",
    ]
    assert all(drawn and painted > 500 for _, drawn, painted in charts), charts
    clv_note = chromium.find_element(By.CSS_SELECTOR, "#panel-clv-distribution p.note").text
    # The panel shows what the demo's refresh predicted. Whether BG/NBD is identified on the demo's 120 members
    # depends on the moment the history is generated up to (some hours of the day it is not, before this change
    # too): the count is the refresh's, not a constant.
    predicted = MemberAnalytics.objects.filter(program__slug="demo", clv_predicted__isnull=False).count()
    assert clv_note.startswith(f"Predicted CLV of {predicted:,} members"), clv_note
    log = chromium.get_log("browser")
    errors = [entry for entry in log if entry["level"] == "SEVERE" and "/favicon.ico" not in entry["message"]]
    assert errors == []
    scripts = [element.get_attribute("src") for element in chromium.find_elements(By.CSS_SELECTOR, "script[src]")]
    assert scripts and all(src.startswith(live_server.url) for src in scripts)
