# Sourced by scripts/test and scripts/demo: installs and starts the local AWS
# emulator (moto server) on a free loopback port, and stops it by its PID on exit.
#
# After `emulator_start`: EMULATOR_URL is the endpoint, EMULATOR_PID the process.
# EVAC_MOTO_VENV chooses where the emulator's virtualenv lives (default: .venv-moto
# in the repository, which git ignores). EMULATOR_RECORD=1 records every request.

MOTO_VERSION=5.2.5

emulator_install() {
  local venv=$1
  if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    return 0
  fi
  echo "emulator: installing moto[server]==$MOTO_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
}

emulator_start() {
  local root venv port log
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  venv=${EVAC_MOTO_VENV:-$root/.venv-moto}
  emulator_install "$venv"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # Files made here are removed when the emulator stops; files named by the caller
  # (EMULATOR_LOG, EMULATOR_RECORDING) are kept.
  EMULATOR_TEMP=()
  if [ -n "${EMULATOR_LOG:-}" ]; then
    log=$EMULATOR_LOG
  else
    log=$(mktemp -t evac-moto.XXXXXX)
    EMULATOR_TEMP+=("$log")
  fi
  # With EMULATOR_RECORD=1 the emulator records every request (tests count calls
  # with it); EMULATOR_RECORDING names the file.
  if [ "${EMULATOR_RECORD:-0}" = 1 ]; then
    if [ -z "${EMULATOR_RECORDING:-}" ]; then
      EMULATOR_RECORDING=$(mktemp -t evac-recording.XXXXXX)
      EMULATOR_TEMP+=("$EMULATOR_RECORDING")
    fi
    export MOTO_ENABLE_RECORDING=true MOTO_RECORDER_FILEPATH=$EMULATOR_RECORDING
  fi
  # moto_server, with the Route 53 rules for weighted sets that evac relies on
  # (scripts/moto_server.py).
  MOTO_EC2_LOAD_DEFAULT_AMIS=false "$venv/bin/python" "$root/scripts/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  EMULATOR_PID=$!
  EMULATOR_URL="http://127.0.0.1:$port"
  trap emulator_stop EXIT
  # Ready when the reset endpoint answers; give up after 30 s with the server's log.
  if ! python3 - "$EMULATOR_URL" <<'PY'
import sys, time, urllib.request
url = sys.argv[1] + "/moto-api/reset"
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=2)
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
  then
    echo "emulator: moto server did not start on $EMULATOR_URL; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  echo "emulator: moto server $MOTO_VERSION on $EMULATOR_URL (pid $EMULATOR_PID)" >&2
  # The emulator's venv has boto3, which benchmark scripts use to read state.
  EMULATOR_VENV_PYTHON="$venv/bin/python"
  export EMULATOR_URL EMULATOR_PID EMULATOR_VENV_PYTHON
}

emulator_stop() {
  if [ -n "${EMULATOR_PID:-}" ]; then
    kill "$EMULATOR_PID" 2>/dev/null || true
    wait "$EMULATOR_PID" 2>/dev/null || true
    EMULATOR_PID=
  fi
  if [ -n "${EMULATOR_TEMP+set}" ] && [ "${#EMULATOR_TEMP[@]}" -gt 0 ]; then
    rm -f "${EMULATOR_TEMP[@]}"
    EMULATOR_TEMP=()
  fi
}
