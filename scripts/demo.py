"""The demo, end to end on this machine, everything in one temporary directory.

1. Install the speech model bundle from the packages and transcribe a real French clip with the
   kiosk's pipeline, then moderate the text (what a citizen's comment goes through).
2. Play simulated citizen sessions through the kiosk flow into the outbox.
3. `borne kiosk --demo`: the touch screen itself, hearing a French WAV file instead of a microphone,
   into the same outbox. With a display, a window to use by hand (close it to go on); without one,
   offscreen, one scripted session by synthesised touches, a screenshot of each screen.
4. Start a Mosquitto on loopback with its own CA, TLS and per-device rights, and `borne ingest run`.
5. `borne sync --once`: the outbox drains, every record acknowledged by the platform.
6. Print the satisfaction indicators, and the kiosk's own record, as the central store holds them.
7. `borne fleet status`: the terminal as the platform sees it (from its Status).
8. `borne dashboard run` on the demo's store, with a national account printed. In a terminal it runs until
   Ctrl-C; in a non-interactive run (CI, no TTY) it logs in with Debian's headless Chromium, saves a
   screenshot of each page, and stops.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BORNE = str(Path(sys.executable).with_name("borne"))
CLIP = ROOT / "tests" / "fixtures" / "fr_speech" / "clips" / "fleurs_fr_000.wav"
SITE, DEVICE = "fs-23-gueret", "borne-demo-01"
TECHNICIAN_PIN = "2468"
KIOSK_TIMEOUT_S = 900  # the scripted session hears the clip at real-time pace, then transcribes it


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def borne(*args: str, capture: bool = False) -> str:
    done = subprocess.run([BORNE, *args], check=True, text=True, capture_output=capture)
    return done.stdout if capture else ""


def main() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path.insert(0, str(ROOT))
    from provisioning.broker import FleetDevice
    from provisioning.local_broker import LocalBroker, LocalPKI, free_port

    work = Path(os.environ.get("BORNE_DEMO_DIR") or tempfile.mkdtemp(prefix="borne-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"demo: everything in {work}")

    step("1. speech on the device: model bundle, transcription, moderation")
    models = work / "models"
    borne("models", "install", "--models-dir", str(models))
    result = json.loads(borne("transcribe", "--models-dir", str(models), "--json", str(CLIP), capture=True))
    print(f"heard ({result['duration_s']:.1f} s of audio, {result['processing_s']:.2f} s): {result['text']}")
    spoken = "Je m'appelle Martine Dupont, rappelez-moi au 06 12 34 56 78, l'accueil était parfait."
    moderated = json.loads(
        subprocess.run([BORNE, "moderate", "--json"], input=spoken, text=True, capture_output=True, check=True).stdout
    )
    print(f"a comment as said:  {spoken}\na comment as kept:  {moderated['text']}")

    pki = LocalPKI(work / "pki")
    broker = LocalBroker(work / "broker", pki, [FleetDevice(SITE, DEVICE)])
    device_cert, device_key = pki.client(DEVICE)
    ingest_cert, ingest_key = pki.client("ingest")
    config = work / "borne.toml"
    config.write_text(
        f'[device]\nsite_id = "{SITE}"\ndevice_id = "{DEVICE}"\ndepartment = "23"\n'
        f'kiosk_state_path = "{work}/kiosk-state.json"\n\n'
        f'[outbox]\npath = "{work}/outbox.db"\n\n'
        f'[kiosk]\ntechnician_pin = "{TECHNICIAN_PIN}"\n\n'
        f'[voice]\nmodels_dir = "{models}"\n\n'
        f'[sync]\nbroker_host = "127.0.0.1"\nbroker_port = {broker.port}\ntls_ca = "{pki.ca_file}"\n'
        f'tls_cert = "{device_cert}"\ntls_key = "{device_key}"\n'
        f'device_config_path = "{work}/device-config.json"\n\n'
        f'[ingest]\nbroker_host = "127.0.0.1"\nbroker_port = {broker.platform_port}\ntls_ca = "{pki.ca_file}"\n'
        f'tls_cert = "{ingest_cert}"\ntls_key = "{ingest_key}"\nclient_id = "ingest-{secrets.token_hex(6)}"\n'
        f'db = "sqlite:///{work}/central.db"\n\n'
        f'[dashboard]\nport = {free_port()}\ncookie_secret_file = "{work}/dashboard-secret"\n'
    )
    (work / "sites.csv").write_text(f"site_id,name,department\n{SITE},France services de Guéret,23\n")

    step("2. citizens at the terminal (simulated sessions through the kiosk flow)")
    borne("simulate", "--config", str(config), "--records", "200", "--seed", "1")
    borne("outbox", "stats", "--config", str(config))

    step("3. the touch screen: borne kiosk --demo (a French WAV file stands in for the microphone)")
    kiosk_records = run_kiosk(config, work / "screenshots")

    step("4. central side: mosquitto (TLS, client certificates, per-device rights) and borne ingest")
    broker.start()
    borne("ingest", "sites", "import", "--config", str(config), str(work / "sites.csv"))
    ingest = subprocess.Popen([BORNE, "ingest", "run", "--config", str(config)])
    try:
        time.sleep(1.5)
        if ingest.poll() is not None:
            raise SystemExit("demo: borne ingest stopped at start")
        step("5. borne sync --once: the outbox drains, each record acknowledged by the platform")
        borne("sync", "--once", "--timeout", "120", "--config", str(config))
        borne("outbox", "stats", "--config", str(config))
    finally:
        ingest.terminate()
        ingest.wait(timeout=30)
        broker.stop()

    step("6. indicators in the central store, and the kiosk's record as the platform holds it")
    borne("ingest", "stats", "--config", str(config), "--by", "site")
    borne("ingest", "stats", "--config", str(config), "--by", "region")
    print_central_records(work / "central.db", kiosk_records)

    step("7. the fleet as the platform sees it: borne fleet status (from each terminal's Status)")
    borne("fleet", "status", "--config", str(config))

    step("8. the web dashboard on the central store: borne dashboard run")
    run_dashboard(config, work / "screenshots")
    print(f"\ndemo: done; files kept in {work}")


def run_dashboard(config: Path, screenshots: Path) -> None:
    """An account, the dashboard served; until Ctrl-C in a terminal, else screenshots of its pages."""
    from platform_ingest.dashboard.settings import DashboardSettings

    port = DashboardSettings.load(config).dashboard.port
    password = secrets.token_urlsafe(12)
    add = [BORNE, "dashboard", "user", "add", "demo", "--role", "national", "--password-stdin", "--config", str(config)]
    subprocess.run(add, input=password + "\n", text=True, check=True)
    server = subprocess.Popen([BORNE, "dashboard", "run", "--config", str(config)])
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/connexion", server)
        print(f"dashboard: {base}/   account: demo   password: {password}")
        if sys.stdin.isatty() and not os.environ.get("CI"):
            print("open it in a browser; Ctrl-C stops it")
            try:
                server.wait()
            except KeyboardInterrupt:
                print()
        else:
            shots = dashboard_screenshots(base, password, screenshots)
            print(f"no terminal: screenshots of the dashboard in {screenshots}: {', '.join(shots)}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(url: str, server: subprocess.Popen[bytes]) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("demo: borne dashboard stopped at start")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 — our own loopback server
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise SystemExit(f"demo: the dashboard did not answer at {url}")


def dashboard_screenshots(base: str, password: str, screenshots: Path) -> list[str]:
    """Log in through the form with Debian's headless Chromium and save each page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
    screenshots.mkdir(parents=True, exist_ok=True)
    names = []
    try:
        driver.get(f"{base}/connexion")
        driver.find_element(By.ID, "nom").send_keys("demo")
        driver.find_element(By.ID, "mot_de_passe").send_keys(password + "\n")
        for name, path in (("national", "/"), ("site", f"/site/{SITE}"), ("commentaires", "/commentaires")):
            driver.get(f"{base}{path}")
            if not driver.find_elements(By.TAG_NAME, "h1"):
                raise SystemExit(f"demo: the dashboard page {path} has no title")
            driver.save_screenshot(str(screenshots / f"dashboard-{name}.png"))
            names.append(f"dashboard-{name}.png")
    finally:
        driver.quit()
    return names


def outbox_record_ids(outbox: Path) -> set[str]:
    from sync_agent.outbox import Outbox

    with Outbox.open(outbox) as box:
        return {str(record.record_id) for record in box.records()}


def run_kiosk(config: Path, screenshots: Path) -> list[str]:
    """`borne kiosk --demo` on the demo's outbox; the ids of the records it added."""
    outbox = config.parent / "outbox.db"
    before = outbox_record_ids(outbox)
    command = [BORNE, "kiosk", "--demo", "--config", str(config)]
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        print("a kiosk window opens: touch (click) your way through a visit, then close the window to go on")
        subprocess.run(command, check=True)
    else:
        command += ["--offscreen", "--screenshots", str(screenshots)]
        print("no display: offscreen, one scripted visit driven by synthesised touches")
        subprocess.run(command, check=True, timeout=KIOSK_TIMEOUT_S)
        shots = sorted(path.name for path in screenshots.glob("*.png"))
        print(f"screenshots in {screenshots}: {', '.join(shots) or 'none'}")
    added = sorted(outbox_record_ids(outbox) - before)
    print(f"the kiosk stored {len(added)} record(s) in the outbox")
    return added


def print_central_records(store: Path, record_ids: list[str]) -> None:
    if not record_ids:
        print("\nthe kiosk stored no record this time (nothing to look up centrally)")
        return
    columns = (
        "record_id, site_id, period, rating, answers, comment_text, comment_language, comment_asr_model, "
        "comment_confidence, comment_redactions, flags, ui_language, app_version, received_hour"
    )
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        for record_id in record_ids:
            cursor = conn.execute(
                f"SELECT {columns} FROM records WHERE device_id = ? AND record_id = ?",  # noqa: S608 - fixed columns
                (DEVICE, record_id),
            )
            names = [description[0] for description in cursor.description]
            row = cursor.fetchone()
            if row is None:
                raise SystemExit(f"demo: the kiosk's record {record_id} did not reach the central store")
            print("\nthe kiosk's record, as the central store holds it:")
            for name, value in zip(names, row, strict=True):
                print(f"  {name:<20} {value}")
    finally:
        conn.close()


if __name__ == "__main__":
    main()
