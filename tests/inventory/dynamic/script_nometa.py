#!/usr/bin/env python3
"""An old-style inventory script without _meta: Ansible asks it for each host with --host NAME."""

import json
import sys

GROUPS = {
    "app": {"hosts": ["app1", "app2", "app3"], "vars": {"role": "app"}},
    "cache": ["cache1"],
    "backend": {"children": ["app", "cache"]},
}
HOSTVARS = {
    "app1": {"ansible_host": "198.51.100.1", "weight": 10},
    "app2": {"ansible_user": "deploy"},
    "cache1": {"maxmemory": "2gb"},
}

if sys.argv[1:] == ["--list"]:
    print(json.dumps(GROUPS))
elif len(sys.argv) == 3 and sys.argv[1] == "--host":
    if sys.argv[2] != "app3":  # app3: prints nothing at all, which Ansible reads as no variables
        print(json.dumps(HOSTVARS.get(sys.argv[2], {})))
else:
    sys.exit("usage: script_nometa.py --list | --host NAME")
