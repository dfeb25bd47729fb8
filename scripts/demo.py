"""The demo, end to end on this machine, everything in one temporary directory.

1. Install the speech model bundle from the packages and transcribe a real French clip with the
   kiosk's pipeline, then moderate the text (what a citizen's comment goes through).
2. Play simulated citizen sessions through the kiosk flow into the outbox.
3. Start a Mosquitto on loopback with its own CA, TLS and per-device ACL, and `borne ingest run`.
4. `borne sync --once`: the outbox drains, every record acknowledged by the platform.
5. Print the satisfaction indicators as the central store holds them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BORNE = str(Path(sys.executable).with_name("borne"))
CLIP = ROOT / "tests" / "fixtures" / "fr_speech" / "clips" / "fleurs_fr_000.wav"
SITE, DEVICE = "fs-23-gueret", "borne-demo-01"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def borne(*args: str, capture: bool = False) -> str:
    done = subprocess.run([BORNE, *args], check=True, text=True, capture_output=capture)
    return done.stdout if capture else ""


def main() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path.insert(0, str(ROOT))
    from provisioning.broker import FleetDevice
    from provisioning.local_broker import LocalBroker, LocalPKI

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
        f'[device]\nsite_id = "{SITE}"\ndevice_id = "{DEVICE}"\ndepartment = "23"\n\n'
        f'[outbox]\npath = "{work}/outbox.db"\n\n'
        f'[sync]\nbroker_host = "127.0.0.1"\nbroker_port = {broker.port}\ntls_ca = "{pki.ca_file}"\n'
        f'tls_cert = "{device_cert}"\ntls_key = "{device_key}"\n'
        f'device_config_path = "{work}/device-config.json"\nkiosk_state_path = "{work}/kiosk-state.json"\n\n'
        f'[ingest]\nbroker_host = "127.0.0.1"\nbroker_port = {broker.port}\ntls_ca = "{pki.ca_file}"\n'
        f'tls_cert = "{ingest_cert}"\ntls_key = "{ingest_key}"\ndb = "sqlite:///{work}/central.db"\n'
    )
    (work / "sites.csv").write_text(f"site_id,name,department\n{SITE},France services de Guéret,23\n")

    step("2. citizens at the terminal (simulated sessions through the kiosk flow)")
    borne("simulate", "--config", str(config), "--records", "200", "--seed", "1")
    borne("outbox", "stats", "--config", str(config))

    step("3. central side: mosquitto (TLS, client certificates, ACL) and borne ingest")
    broker.start()
    borne("ingest", "sites", "import", "--config", str(config), str(work / "sites.csv"))
    ingest = subprocess.Popen([BORNE, "ingest", "run", "--config", str(config)])
    try:
        time.sleep(1.5)
        if ingest.poll() is not None:
            raise SystemExit("demo: borne ingest stopped at start")
        step("4. borne sync --once: the outbox drains, each record acknowledged by the platform")
        borne("sync", "--once", "--timeout", "120", "--config", str(config))
        borne("outbox", "stats", "--config", str(config))
    finally:
        ingest.terminate()
        ingest.wait(timeout=30)
        broker.stop()

    step("5. indicators in the central store")
    borne("ingest", "stats", "--config", str(config), "--by", "site")
    borne("ingest", "stats", "--config", str(config), "--by", "region")
    print(f"\ndemo: done; files kept in {work}")


if __name__ == "__main__":
    main()
