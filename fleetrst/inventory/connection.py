"""From a host's variables and the command line to one ``ConnectionSettings``.

``HONOURED`` is the single declaration of the ``ansible_*`` variables fleetrst reads: their type,
what they set, and — by their order — which spelling wins when several are given (a later row beats
an earlier one for the same setting, so ``ansible_ssh_user`` beats ``ansible_user`` wherever each was
defined, as in Ansible). Error messages and the documentation come from it.

Precedence follows Ansible's ssh connection: inventory variables beat command-line values
(``ansible_user`` beats ``-u``); both beat what ``ansible_ssh_common_args`` and
``ansible_ssh_extra_args`` say (Ansible passes its own ``-o`` options to ssh first, and ssh keeps
the first value it sees). In those args we understand ``-o Key=Value`` / ``-o "Key Value"`` for
``UserKnownHostsFile``, ``StrictHostKeyChecking``, ``ProxyJump``, ``ProxyCommand``,
``ConnectTimeout``, ``Port``, ``User`` and ``IdentityFile`` (``HONOURED_SSH_OPTIONS``), and the flags
``-J``, ``-p``, ``-i``, ``-l``. Every other option or flag is not honoured: ``parse_ssh_args`` names
it in ``ignored`` (an ssh flag that takes an argument has its argument skipped, so it cannot be
misread), and the command layer says so once.

``ProxyCommand`` (as in OpenSSH, the first of it and ``ProxyJump`` wins) becomes an argument list:
split like a shell line, ``%h``/``%n`` (the address), ``%p`` (the port), ``%r`` (the user) and ``%%``
replaced in each argument, a leading ``~`` expanded; it is run without a shell. A value substituted
for a token must look like a host name, address, port or user name, so that nothing from an
inventory can become an option or shell syntax of the proxy program.
"""

from __future__ import annotations

import functools
import getpass
import os
import re
import shlex
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from ..model import ConnectionKind, ConnectionSettings, HostKeyChecking
from ..units import ascii_digits

VarType = Literal["text", "int", "port", "bool", "number", "args"]


@dataclass(frozen=True)
class HonouredVariable:
    name: str
    type: VarType
    setting: str
    meaning: str


HONOURED: tuple[HonouredVariable, ...] = (
    HonouredVariable(
        "ansible_host", "text", "address", "address to connect to (default: the inventory name)"
    ),
    HonouredVariable("ansible_ssh_host", "text", "address", "address to connect to; beats ansible_host"),
    HonouredVariable("ansible_port", "port", "port", "SSH port"),
    HonouredVariable("ansible_ssh_port", "port", "port", "SSH port; beats ansible_port"),
    HonouredVariable("ansible_user", "text", "user", "login user (beats -u)"),
    HonouredVariable("ansible_ssh_user", "text", "user", "login user; beats ansible_user"),
    HonouredVariable(
        "ansible_private_key_file", "text", "private_key", "private key file (beats --private-key)"
    ),
    HonouredVariable(
        "ansible_ssh_private_key_file",
        "text",
        "private_key",
        "private key file; beats ansible_private_key_file",
    ),
    HonouredVariable("ansible_password", "text", "password", "SSH password"),
    HonouredVariable("ansible_ssh_pass", "text", "password", "SSH password; beats ansible_password"),
    HonouredVariable("ansible_ssh_password", "text", "password", "SSH password; beats ansible_ssh_pass"),
    HonouredVariable("ansible_connection", "text", "connection", "ssh, paramiko or local (beats -c)"),
    HonouredVariable("ansible_ssh_common_args", "args", "common_args", "extra ssh options (see above)"),
    HonouredVariable(
        "ansible_ssh_extra_args", "args", "extra_args", "more ssh options, read after the common ones"
    ),
    HonouredVariable(
        "ansible_host_key_checking", "bool", "host_key_checking", "false: do not check host keys"
    ),
    HonouredVariable(
        "ansible_ssh_host_key_checking", "bool", "host_key_checking", "beats ansible_host_key_checking"
    ),
    HonouredVariable("ansible_timeout", "number", "connect_timeout", "connect timeout in seconds"),
    HonouredVariable(
        "ansible_ssh_timeout", "number", "connect_timeout", "connect timeout; beats ansible_timeout"
    ),
    HonouredVariable("ansible_become", "bool", "become", "run the probe through sudo (beats -b)"),
    HonouredVariable("ansible_become_user", "text", "become_user", "user to become (default root)"),
    HonouredVariable("ansible_become_method", "text", "become_method", "only sudo is supported"),
    HonouredVariable("ansible_become_password", "text", "become_password", "sudo password"),
    HonouredVariable(
        "ansible_become_pass", "text", "become_password", "sudo password; beats ansible_become_password"
    ),
)
HONOURED_NAMES = frozenset(v.name for v in HONOURED)

_CONNECTIONS: Mapping[str, ConnectionKind] = {
    "ssh": "ssh",
    "smart": "ssh",
    "ansible.builtin.ssh": "ssh",
    "paramiko": "paramiko",
    "paramiko_ssh": "paramiko",
    "ansible.builtin.paramiko_ssh": "paramiko",
    "local": "local",
    "ansible.builtin.local": "local",
}
_TRUE = frozenset({"y", "yes", "on", "1", "true", "t"})
_FALSE = frozenset({"n", "no", "off", "0", "false", "f"})
# ssh(1) flags that take an argument: their argument must be skipped, not read as an option.
_SSH_FLAGS_WITH_ARG = frozenset("BbcDEeFIiJLlmOopPQRSWw")


class SettingError(ValueError):
    """A variable's value cannot be used; the message names the variable."""


@dataclass(frozen=True)
class ConnectionDefaults:
    """What the command line says; inventory variables beat all of it."""

    user: str | None = None
    private_key: str | None = None
    connection: ConnectionKind | None = None
    become: bool | None = None
    become_user: str | None = None
    known_hosts: tuple[str, ...] = ()  # --known-hosts: added to those from UserKnownHostsFile
    host_key_checking: HostKeyChecking | None = None  # None: "yes"
    connect_timeout: float | None = None


def describe_honoured() -> str:
    """A plain-text table of the variables fleetrst reads, for documentation and --help."""
    width = max(len(v.name) for v in HONOURED)
    return "\n".join(f"{v.name:<{width}}  {v.type:<6}  {v.meaning}" for v in HONOURED)


def as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise SettingError(f"{name} must be a boolean, got {value!r}")


def as_text(value: Any, name: str) -> str:
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise SettingError(f"{name} must be text, got {value!r}")


def as_int(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and ascii_digits(value.strip()):
        return int(value.strip())
    raise SettingError(f"{name} must be an integer, got {value!r}")


def as_port(value: Any, name: str) -> int:
    port = as_int(value, name)
    if not 1 <= port <= 65535:
        raise SettingError(f"{name} must be a port number (1-65535), got {port}")
    return port


def as_number(value: Any, name: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        try:
            number = float(str(value).strip()) if isinstance(value, str) else float("nan")
        except ValueError:
            number = float("nan")
    if not number > 0 or number == float("inf"):
        raise SettingError(f"{name} must be a positive number of seconds, got {value!r}")
    return number


def as_args(value: Any, name: str) -> list[str]:
    text = as_text(value, name)
    try:
        return list(_split(text))
    except ValueError as exc:
        raise SettingError(f"{name} cannot be split like a shell line: {exc}") from None


@functools.lru_cache(maxsize=256)
def _split(text: str) -> tuple[str, ...]:
    """A shell line's words: once per distinct text (a group's ssh arguments are every host's)."""
    return tuple(shlex.split(text))


_CONVERT: Mapping[VarType, Callable[[Any, str], Any]] = {
    "text": as_text,
    "int": as_int,
    "port": as_port,
    "bool": as_bool,
    "number": as_number,
    "args": as_args,
}


# The -o options fleetrst honours (lower-cased, as ssh compares them).
HONOURED_SSH_OPTIONS = frozenset(
    {
        "userknownhostsfile",
        "stricthostkeychecking",
        "proxyjump",
        "proxycommand",
        "connecttimeout",
        "port",
        "user",
        "identityfile",
    }
)
_FLAG_OPTIONS = {"J": "proxyjump", "p": "port", "i": "identityfile", "l": "user"}
# "Key=Value", "Key = Value" or "Key Value", as ssh reads -o (the value may hold "=" and spaces)
_OPTION = re.compile(r"^\s*([A-Za-z0-9]+)(?:\s*=\s*|\s+)(.*)$", re.S)


@dataclass(frozen=True)
class SshArgs:
    """What ``ansible_ssh_common_args`` + ``ansible_ssh_extra_args`` say (first value wins)."""

    options: Mapping[str, str]  # lower-cased option name -> first value
    identity_files: tuple[str, ...]
    proxy: tuple[str, str] | None = None  # the first of ProxyJump and ProxyCommand: (option, value)
    ignored: tuple[str, ...] = ()  # what is not honoured, as written: "-o ControlPersist=60s", "-C"


def parse_ssh_args(args: list[str]) -> SshArgs:
    options: dict[str, str] = {}
    identities: list[str] = []
    ignored: list[str] = []
    proxy: tuple[str, str] | None = None

    def option(key: str, value: str) -> None:
        nonlocal proxy
        key = key.lower()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if key == "identityfile":
            identities.append(value)
        else:
            options.setdefault(key, value)
        if key in ("proxyjump", "proxycommand") and proxy is None:
            proxy = (key, value)

    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if len(token) < 2 or token[0] != "-" or token == "--":
            ignored.append(token)
            continue
        for pos in range(1, len(token)):
            flag = token[pos]
            if flag not in _SSH_FLAGS_WITH_ARG:
                ignored.append(f"-{flag}")
                continue
            value = token[pos + 1 :]
            if not value:
                if i >= len(args):
                    ignored.append(f"-{flag}")
                    break
                value = args[i]
                i += 1
            if flag == "o":
                m = _OPTION.match(value)
                key, rest = (m.group(1), m.group(2)) if m else (value.strip(), "")
                if key.lower() in HONOURED_SSH_OPTIONS:
                    option(key, rest)
                else:
                    ignored.append(f"-o {value.strip()}")
            elif flag in _FLAG_OPTIONS:
                option(_FLAG_OPTIONS[flag], value)
            else:
                ignored.append(f"-{flag} {value}")
            break
    return SshArgs(options=options, identity_files=tuple(identities), proxy=proxy, ignored=tuple(ignored))


_TOKEN = re.compile(r"%(.?)")
_SAFE_TOKEN_VALUE = re.compile(r"^[A-Za-z0-9_.:@\[\]%+-]+$")


def proxy_command_argv(text: str, address: str, port: int | None, user: str | None) -> tuple[str, ...]:
    """``ProxyCommand`` as the argument list to run (no shell), tokens replaced as OpenSSH does."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise SettingError(f"ProxyCommand cannot be split like a shell line: {exc}") from None
    if not words:
        raise SettingError("ProxyCommand is empty")
    values = {"h": address, "n": address, "p": str(port or 22), "r": user or getpass.getuser()}
    names = {"h": "host address", "n": "host address", "p": "port", "r": "user"}

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        if token == "%":
            return "%"
        if token not in values:
            shown = f"%{token}" if token else "a lone %"
            raise SettingError(f"ProxyCommand token {shown} is not supported (only %h, %p, %r, %n and %%)")
        value = values[token]
        if not _SAFE_TOKEN_VALUE.match(value) or value.startswith("-"):
            raise SettingError(
                f"ProxyCommand: the {names[token]} {value!r} is not a plain name, so it is not passed "
                "to the proxy command"
            )
        return value

    argv = tuple(
        os.path.expanduser(word) if word.startswith("~") else word
        for word in (_TOKEN.sub(replace, word) for word in words)
    )
    if _find_program(argv[0]) is None:
        raise SettingError(f"ProxyCommand program {argv[0]!r} is not found (not on PATH, or not executable)")
    return argv


@functools.lru_cache(maxsize=64)
def _find_program(name: str) -> str | None:
    return shutil.which(name)


def honoured_values(variables: Mapping[str, Any], render: Callable[[str], Any]) -> dict[str, tuple[str, Any]]:
    """For each setting, the winning variable's name and typed value (None values do not count)."""
    result: dict[str, tuple[str, Any]] = {}
    for var in HONOURED:
        if var.name in variables:
            value = render(var.name)
            if value is not None:
                result[var.setting] = (var.name, _CONVERT[var.type](value, var.name))
    return result


def resolve_connection(
    name: str, values: Mapping[str, tuple[str, Any]], defaults: ConnectionDefaults
) -> ConnectionSettings:
    """Build the settings for host ``name`` from its honoured values and the command line."""

    def get(setting: str) -> Any:
        return values[setting][1] if setting in values else None

    ssh = parse_ssh_args(list(get("common_args") or []) + list(get("extra_args") or []))
    opts = ssh.options

    kind_text = get("connection")
    if kind_text is not None:
        if kind_text not in _CONNECTIONS:
            supported = ", ".join(sorted(set(_CONNECTIONS.values())))
            raise SettingError(f"ansible_connection {kind_text!r} is not supported (only {supported})")
        connection: ConnectionKind = _CONNECTIONS[kind_text]
    else:
        connection = defaults.connection or "ssh"

    port = get("port")
    if port is None and "port" in opts:
        port = as_port(opts["port"], "Port in ansible_ssh_*_args")

    user = get("user") or defaults.user or opts.get("user") or None

    key = get("private_key") or defaults.private_key
    keys = tuple(os.path.expanduser(k) for k in ((key,) if key else ()) + ssh.identity_files)

    known = tuple(opts["userknownhostsfile"].split()) if "userknownhostsfile" in opts else ()
    known_hosts = tuple(os.path.expanduser(k) for k in known) + defaults.known_hosts

    checking = _host_key_checking(get("host_key_checking"), opts.get("stricthostkeychecking"), defaults)

    address = get("address") or name
    proxy_jump: str | None = None
    proxy_command: tuple[str, ...] = ()
    if ssh.proxy is not None and ssh.proxy[1].strip().lower() != "none":
        if ssh.proxy[0] == "proxyjump":
            proxy_jump = ssh.proxy[1]
        elif connection != "local":
            proxy_command = proxy_command_argv(ssh.proxy[1], address, port, user)

    timeout = get("connect_timeout")
    if timeout is None:
        timeout = defaults.connect_timeout
    if timeout is None and "connecttimeout" in opts:
        timeout = as_number(opts["connecttimeout"], "ConnectTimeout in ansible_ssh_*_args")

    become_var = get("become")
    become = bool(become_var if become_var is not None else defaults.become)
    become_user = get("become_user") or defaults.become_user or "root"
    method = get("become_method") or "sudo"
    if method != "sudo":
        raise SettingError(f"ansible_become_method {method!r} is not supported (only sudo)")
    if become and user is not None and become_user == user:
        become = False  # as Ansible: becoming the login user is skipped

    return ConnectionSettings(
        address=address,
        connection=connection,
        port=port,
        user=user,
        private_keys=keys,
        password=get("password"),
        known_hosts=known_hosts,
        host_key_checking=checking,
        proxy_jump=proxy_jump,
        proxy_command=proxy_command,
        connect_timeout=timeout,
        become=become,
        become_user=become_user,
        become_method=method,
        become_password=get("become_password"),
    )


def _host_key_checking(var: bool | None, arg: str | None, defaults: ConnectionDefaults) -> HostKeyChecking:
    if var is False:
        return "no"
    if arg is not None:
        mapped = {"yes": "yes", "ask": "yes", "no": "no", "off": "no", "accept-new": "accept-new"}.get(
            arg.strip().lower()
        )
        if mapped is None:
            raise SettingError(
                f"StrictHostKeyChecking in ansible_ssh_*_args must be yes, no or accept-new, got {arg!r}"
            )
        return cast(HostKeyChecking, mapped)
    if var is True:
        return "yes"
    return defaults.host_key_checking or "yes"
