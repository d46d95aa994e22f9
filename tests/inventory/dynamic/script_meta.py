#!/usr/bin/env python3
"""An inventory script that prints _meta.hostvars: run once, with --list (as Ansible runs it)."""

import json
import sys

INVENTORY = {
    "web": {
        "hosts": ["web1.example.com", "web2.example.com"],
        "vars": {"http_port": 8080, "tier": "front", "proxy": {"__ansible_unsafe": "{{ not_a_template }}"}},
        "children": ["canary"],
    },
    "canary": {"hosts": ["web2.example.com"], "vars": {"tier": "canary"}},
    "db": ["db1.example.com", "db2.example.com"],  # a bare list: the group's hosts
    "prod": {"children": ["web", "db"], "vars": {"env": "prod"}},
    "all": {"vars": {"ntp": "pool.ntp.org"}},
    "lonely": {"hosts": ["solo.example.com"]},
    "_meta": {
        "hostvars": {
            "web1.example.com": {"ansible_host": "192.0.2.11", "rack": 1},
            "db2.example.com": {"ansible_port": 2222, "replica": True, "tags": ["a", "b"]},
            "not-in-any-group": {"ignored": "as in Ansible"},
        }
    },
}

if sys.argv[1:] == ["--list"]:
    print(json.dumps(INVENTORY, indent=2))
elif sys.argv[1:2] == ["--host"]:
    print(json.dumps({}))
else:
    sys.exit("usage: script_meta.py --list | --host NAME")
