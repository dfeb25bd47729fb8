#!/usr/bin/env bash
# Prepare this machine for `make demo` and `make test`: system packages, the .venv, Python packages.
# Idempotent and quick when everything is already there. Installs system packages with apt-get when
# run as root on Debian; otherwise names what is missing and how to install it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
EXTRAS=${BORNE_EXTRAS:-dev,voice,kiosk,ingest-pg,dashboard}
# Debian 12 package names; see docs/development.md for what each is for.
SYSTEM_PACKAGES=(mosquitto libportaudio2 postgresql postgresql-common pulseaudio pulseaudio-utils libasound2-plugins
  libgl1 libegl1 libgl1-mesa-dri libxrender1 libmtdev1 espeak-ng systemd iproute2 util-linux
  asterisk-core-sounds-fr asterisk-core-sounds-fr-g722 ffmpeg chromium chromium-driver)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  "$PYTHON" -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
      echo "setup: installing system packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "setup: missing system packages: ${missing[*]}" >&2
      echo "setup: install them with: sudo apt-get install ${missing[*]}   (or run make as root)" >&2
      exit 1
    fi
  fi
else
  echo "setup: not a Debian system; make sure these (or their equivalents) are installed: ${SYSTEM_PACKAGES[*]}" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed"
wanted="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1) $EXTRAS"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "setup: installing Python packages (borne[$EXTRAS]) into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  # constraints.txt pins the versions tested together, so figures and behaviour do not drift between machines
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[$EXTRAS]"
  echo "$wanted" > "$stamp"
fi
