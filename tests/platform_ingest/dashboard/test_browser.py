"""The dashboard in a real browser: Debian's chromium, headless, driven by selenium through Debian's
chromedriver (no browser download). Logs in with the keyboard through the form, opens every page, checks the
contrast of every text and that a keyboard reaches the content, and saves a screenshot of each page.

Screenshots go to a temporary directory; to regenerate the ones in docs/screenshots:
    BORNE_DASHBOARD_SCREENSHOTS=docs/screenshots pytest tests/platform_ingest/dashboard/test_browser.py
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as expected
from selenium.webdriver.support.ui import WebDriverWait

from platform_ingest.dashboard.accounts import add_user, parse_role
from platform_ingest.store import Site, open_store
from sync_agent.contract import Record, Status
from tests.platform_ingest.dashboard.conftest import PASSWORD
from tests.platform_ingest.dashboard.server import ROOT, dashboard_server
from tests.platform_ingest.factories import PARIS_WINTER, make_record

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SITES = [
    Site("fs-35-01", "France services de Rennes", "35"),
    Site("fs-35-02", "France services de Vitré", "35"),
    Site("fs-29-01", "France services de Quimper", "29"),
    Site("fs-56-01", "France services de Pontivy", "56"),
    Site("fs-23-01", "France services de Guéret", "23"),
    Site("fs-87-01", "France services de Bellac", "87"),
    Site("fs-971-02", "France services des Abymes", "971"),
    Site("fs-75-01", "France services Paris 20e", "75"),
]
COMMENTS = [
    "Accueil très aimable, ma démarche de carte grise est réglée",
    "Un peu d'attente mais la conseillère a pris le temps",
    "Impossible d'avoir un rendez-vous avec la CAF",
    "Merci pour l'aide à la déclaration d'impôts",
    "Le guichet fermait à midi, je suis revenu l'après-midi",
]


def demo_records() -> list[Record]:
    """Eight months of ratings in eight sites, a few with too few ratings to show a rate."""
    chance = random.Random(14)  # reproducible figures
    records = []
    for index, site in enumerate(SITES):
        base = 0.55 + 0.05 * index % 0.4
        for month in range(4, 12):
            volume = 8 if site.site_id == "fs-35-02" else chance.randint(25, 70)
            period = datetime(2026, month, 10, 10, tzinfo=PARIS_WINTER)
            for number in range(volume):
                satisfied = chance.random() < base + 0.02 * (month - 4)
                rating = chance.choice((3, 4)) if satisfied else chance.choice((1, 2))
                comment = COMMENTS[(number + month) % len(COMMENTS)] if number % 11 == 0 else None
                records.append(
                    make_record(rating, site=site.site_id, device=f"{site.site_id}-a", period=period, comment=comment)
                )
    return records


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            pytest.fail(f"{path} is missing: apt-get install chromium chromium-driver (scripts/setup.sh does)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1700"):
        options.add_argument(argument)
    options.add_argument("--lang=fr-FR")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


CONTRAST_SCRIPT = """
function luminance(rgb) {
  const [r, g, b] = rgb.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function parse(color) { return color.match(/[\\d.]+/g).map(Number); }
function background(element) {
  for (let node = element; node && node.nodeType === 1; node = node.parentElement) {
    const value = parse(getComputedStyle(node).backgroundColor);
    if (value.length < 4 || value[3] > 0) return value.slice(0, 3);
  }
  return [255, 255, 255];
}
const problems = [];
for (const element of document.querySelectorAll('body *')) {
  const own = [...element.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  if (!own || !element.getClientRects().length) continue;
  const style = getComputedStyle(element);
  const colour = parse(element instanceof SVGElement ? style.fill : style.color).slice(0, 3);
  const [a, b] = [luminance(colour), luminance(background(element))].sort((x, y) => y - x);
  const ratio = (a + 0.05) / (b + 0.05);
  const text = element.textContent.trim().slice(0, 30);
  if (ratio < 4.5) problems.push(element.tagName + ' "' + text + '" ' + ratio.toFixed(2));
}
return problems;
"""


@pytest.mark.slow
def test_a_national_account_logs_in_with_the_keyboard_and_every_page_reads_well(
    browser: WebDriver, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'ingest.db'}"
    with open_store(db_url) as store:
        store.upsert_sites(SITES)
        store.store(demo_records())
        seen = datetime.now(UTC)
        for site, device, microphone in (("fs-35-01", "borne-a", "ok"), ("fs-35-02", "borne-a", "missing")):
            store.put_status(
                Status(site_id=site, device_id=device, state="online", microphone=microphone, model="ok", sent_at=seen)
            )
        add_user(store, "national", parse_role("national"), PASSWORD)
    shots = Path(os.environ.get("BORNE_DASHBOARD_SCREENSHOTS") or tmp_path / "screenshots")
    shots = shots if shots.is_absolute() else ROOT / shots
    shots.mkdir(parents=True, exist_ok=True)

    with dashboard_server(db_url, tmp_path) as base:
        browser.get(f"{base}/")
        assert browser.current_url.startswith(f"{base}/connexion")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
        for field in ("nom", "mot_de_passe"):  # every input has its label
            assert browser.find_element(By.CSS_SELECTOR, f"label[for={field}]").text
        browser.save_screenshot(str(shots / "dashboard-login.png"))

        # the keyboard alone: the form has the focus on its first field, Tab goes to the next, Enter sends
        assert browser.switch_to.active_element.get_attribute("id") == "nom"
        ActionChains(browser).send_keys("national", Keys.TAB).perform()
        assert browser.switch_to.active_element.get_attribute("id") == "mot_de_passe"
        browser.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)

        WebDriverWait(browser, 10).until(expected.url_to_be(f"{base}/"))
        assert browser.find_element(By.TAG_NAME, "h1").text == "France entière"
        assert browser.find_element(By.CSS_SELECTOR, "svg.chart title").get_attribute("textContent")
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")) == 8
        pages = {
            "national": "/",
            "region": "/region/53",
            "departement": "/departement/35",
            "site": "/site/fs-35-01",
            "site-few-ratings": "/site/fs-35-02?mois=2026-11",
            "commentaires": "/commentaires?q=attente",
            "parc": "/parc",
            "exports": "/exports",
        }
        for name, path in pages.items():
            browser.get(f"{base}{path}")
            assert browser.find_element(By.TAG_NAME, "h1").text, path
            assert browser.execute_script(CONTRAST_SCRIPT) == [], path
            browser.save_screenshot(str(shots / f"dashboard-{name}.png"))
        browser.get(f"{base}/site/fs-35-02?mois=2026-11")
        assert "moins de 30 avis" in browser.find_element(By.CSS_SELECTOR, ".headline").text

        # on a fresh page the first Tab reaches the skip link, which takes the focus to the content
        ActionChains(browser).send_keys(Keys.TAB).perform()
        assert browser.switch_to.active_element.text == "Aller au contenu"
        ActionChains(browser).send_keys(Keys.ENTER).perform()
        assert browser.switch_to.active_element.get_attribute("id") == "contenu"
        ActionChains(browser).send_keys(Keys.TAB).perform()  # and the next Tab goes on from there: the breadcrumb
        assert browser.switch_to.active_element.text == "France entière"
        assert browser.execute_script("return document.activeElement.closest('main') !== null")

        # the exports page by keyboard from the navigation, and each of its links answers with its file
        browser.get(f"{base}/")
        for _ in range(8):
            ActionChains(browser).send_keys(Keys.TAB).perform()
            if browser.switch_to.active_element.text == "Exports":
                break
        assert browser.switch_to.active_element.text == "Exports"
        ActionChains(browser).send_keys(Keys.ENTER).perform()
        WebDriverWait(browser, 10).until(expected.url_to_be(f"{base}/exports"))
        links = browser.find_elements(By.CSS_SELECTOR, "main a[href^='/export/']")
        assert len(links) == 1 + 2 * 8  # every period, then a CSV and a JSON for each of the eight months
        answers = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "Promise.all([...document.querySelectorAll(\"main a[href^='/export/']\")].map(a => fetch(a.href)"
            ".then(r => [a.getAttribute('href'), r.status, r.headers.get('content-disposition')])))"
            ".then(done);"
        )
        for href, status, disposition in answers:
            assert status == 200 and disposition.startswith("attachment; filename="), href
        for _ in range(15):  # and Tab goes on to the downloads
            ActionChains(browser).send_keys(Keys.TAB).perform()
            if browser.switch_to.active_element.get_attribute("href") == links[0].get_attribute("href"):
                break
        assert browser.switch_to.active_element.get_attribute("href") == f"{base}/export/indicateurs.csv"

        # logging out with the button
        browser.find_element(By.CSS_SELECTOR, ".logout button").click()
        WebDriverWait(browser, 10).until(expected.url_to_be(f"{base}/connexion"))
        browser.get(f"{base}/region/53")
        assert browser.current_url.startswith(f"{base}/connexion")
    assert sorted(path.name for path in shots.glob("dashboard-*.png")) == sorted(
        [f"dashboard-{name}.png" for name in pages] + ["dashboard-login.png"]
    )
