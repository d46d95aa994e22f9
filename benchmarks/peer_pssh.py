"""parallel-ssh (libssh2 in C) doing the same reads as the floor, for the side-by-side benchmark.

python benchmarks/peer_pssh.py --hosts-file F --user U --key K --window 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pssh.clients import ParallelSSHClient


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts-file", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--window", type=float, default=5.0)
    args = parser.parse_args()
    hosts = Path(args.hosts_file).read_text().split()
    reads = "cat /proc/net/snmp /proc/net/netstat /proc/uptime /proc/sys/kernel/random/boot_id"
    command = f"{reads}; sleep {args.window:g}; {reads}"
    client = ParallelSSHClient(hosts, user=args.user, pkey=args.key, pool_size=len(hosts), timeout=60)
    output = client.run_command(command, stop_on_errors=False)
    client.join(output)
    ok = 0
    for host_output in output:
        lines = list(host_output.stdout or [])
        ok += bool(host_output.exception is None and lines)
    print(f"parallel-ssh: {ok}/{len(hosts)} hosts answered")
    return 0 if ok == len(hosts) else 1


if __name__ == "__main__":
    sys.exit(main())
