#!/bin/sh
# A demo fleet: bring N real hosts up (network namespaces + sshd), cause resets on two of them, sweep
# the fleet with fleetrst, and take everything down again. Run as root from the repository root:
#
#     sudo examples/demo-fleet/demo.sh            # 5 hosts; HOSTS=50 for more
#
# Needs: Linux, root, iproute2, openssh-server (sshd), and fleetrst installed (pip install -e .).
set -eu

HOSTS=${HOSTS:-5}
PYTHON=${PYTHON:-python3}
if [ -z "${FLEETRST:-}" ]; then        # the fleetrst command, or the module when it is not on PATH
    if command -v fleetrst >/dev/null 2>&1; then FLEETRST=fleetrst; else FLEETRST="$PYTHON -m fleetrst"; fi
fi
WORK=$(mktemp -d /tmp/fleetrst-demo.XXXXXX)
DIR=$WORK/fleet          # the fleet writes its inventory, known_hosts and client key here
OUT=$WORK/up.out

# Up, in the background: prints the inventory path, then stays up until SIGTERM (or --for runs out).
"$PYTHON" -m fleetrst.testing up --hosts "$HOSTS" --dir "$DIR" \
    --group web=h001,h002 --group db=h003 \
    --storm h002:200 --abort h003:9400 \
    --for 300 >"$OUT" &
UP=$!
down() {
    kill -TERM "$UP" 2>/dev/null || true   # SIGTERM: the fleet tears itself down
    wait "$UP" 2>/dev/null || true
    rm -rf "$WORK"
}
trap down EXIT
trap 'exit 130' INT TERM

while [ ! -s "$OUT" ]; do             # wait for the inventory path (the first line of stdout)
    kill -0 "$UP" 2>/dev/null || { echo "the fleet did not come up" >&2; exit 1; }
    sleep 0.1
done
INVENTORY=$(head -n 1 "$OUT")
echo "inventory: $INVENTORY"
cat "$INVENTORY"

# Any host, by hand, with strict host key checking (the key and known_hosts come with the fleet).
ssh -F /dev/null -i "$DIR/id_ed25519" -o UserKnownHostsFile="$DIR/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes fleetrst-test@"$(awk 'NR==1{print $1}' "$DIR/known_hosts")" \
    'grep "^Tcp:" /proc/net/snmp'

# The sweep: h002 (closed-port storm, 200/s) and h003 (aborting server on port 9400) should trip.
status=0
$FLEETRST sweep -i "$INVENTORY" --window 5s || status=$?
echo "fleetrst sweep exit status: $status (0 ok, 1 warning, 2 critical, 3 unknown)"
