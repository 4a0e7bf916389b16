# Sourced by scripts/demo and scripts/test: make ./.venv with Python >= 3.11 and install digest.
# On a fresh Debian machine it installs python3-venv first (as root, or through sudo).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DIGEST_VENV:-$ROOT/.venv}"

apt_install() {
  # Install Debian packages, once per machine; quiet unless something goes wrong.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "digest: installing Debian packages: ${missing[*]}" >&2
  if [ ! -f /var/lib/apt/.digest-updated ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
    $sudo apt-get update -qq && $sudo touch /var/lib/apt/.digest-updated
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "digest needs Python 3.11 or newer (apt-get install python3)" >&2
  return 1
}

bootstrap() {
  # $1: pip extras, such as "dev". Re-installs only when pyproject.toml changed.
  local extras="${1:-}" python stamp spec
  python="$(find_python)"
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$python" -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      apt_install python3-venv python3-pip
      "$python" -m venv "$VENV"
    fi
  fi
  spec="$ROOT"
  [ -n "$extras" ] && spec="$ROOT[$extras]"
  stamp="$VENV/.digest-installed-$extras"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "digest: installing into $VENV (first run takes a minute)" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec" 2>&1 \
      | grep -v "^WARNING: Location" >&2 || true
    "$VENV/bin/python" -c "import digest" || { echo "digest: install failed" >&2; return 1; }
    touch "$stamp"
  fi
}
