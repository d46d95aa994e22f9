"""Settings from files and the environment: fleetrst.toml, FLEETRST_*, and Ansible's own.

Lowest first (the command line beats all of them)::

    built-in defaults
    ansible.cfg [defaults]      the first of $ANSIBLE_CONFIG, ./ansible.cfg, ~/.ansible.cfg,
                                /etc/ansible/ansible.cfg (Ansible's order; only that one is read)
    ANSIBLE_* environment       ANSIBLE_INVENTORY, ANSIBLE_REMOTE_USER, ANSIBLE_PRIVATE_KEY_FILE,
                                ANSIBLE_HOST_KEY_CHECKING
    fleetrst.toml               $FLEETRST_CONFIG, else ./fleetrst.toml, else
                                $XDG_CONFIG_HOME/fleetrst/fleetrst.toml (~/.config/...): the first found
    FLEETRST_* environment      FLEETRST_INVENTORY, FLEETRST_FORKS, FLEETRST_WINDOW, ...

fleetrst's own settings beat Ansible's: they are more specific to the job. Ansible's ``forks`` (and
ANSIBLE_FORKS) is not read: it sizes Ansible's pool of worker processes, while a host in a fleetrst
sweep is one idle channel, so honouring it would only throttle sweeps (``forks`` in fleetrst.toml, or
``-f``, still caps). Each value remembers where it came from (``fleetrst config`` prints it). A file
that cannot be read, or a value that is not what its setting needs, is a :class:`ConfigError` naming
the file and line (or the variable).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .units import format_duration, parse_duration

__all__ = ["ConfigError", "format_duration", "parse_duration"]


# --- what can be set --------------------------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"must be a string, got {value!r}")


def _int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"must be a whole number, got {value!r}")
    if isinstance(value, int):
        number = value
    else:
        try:
            number = int(_text(value).strip())
        except ValueError:
            raise ValueError(f"must be a whole number, got {value!r}") from None
    if number < 1:
        raise ValueError(f"must be at least 1, got {value!r}")
    return number


def _duration(maximum: float, allow_zero: bool = False) -> Callable[[object], float]:
    def convert(value: object) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        return parse_duration(_text(value), maximum=maximum, allow_zero=allow_zero)

    return convert


_TRUE = {"y", "yes", "on", "1", "true", "t"}
_FALSE = {"n", "no", "off", "0", "false", "f"}


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _choice(*choices: str) -> Callable[[object], str]:
    def convert(value: object) -> str:
        text = _text(value).strip()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return text

    return convert


def _host_key_checking(value: object) -> str:
    """fleetrst's yes/no/accept-new, or Ansible's boolean (True → yes, False → no)."""
    if isinstance(value, str) and value.strip() == "accept-new":
        return "accept-new"
    return "yes" if _bool(value) else "no"


def _dask_address(value: object) -> str:
    """A Dask scheduler address: ``tcp://HOST:PORT``, ``tls://HOST:PORT`` (or another Dask scheme)."""
    text = _text(value).strip()
    if not re.fullmatch(r"[a-z][a-z0-9+]*://[^\s/]+(:\d+)?/?", text):
        raise ValueError(f"must be a Dask scheduler address such as tcp://HOST:8786, got {value!r}")
    return text


def _rates(value: object) -> list[str]:
    """``{resets_sent = 20}`` (TOML) or ``resets_sent=20,estab_resets=5`` (env) → ["resets_sent=20", ...]."""
    from .measure.rules import ThresholdError, parse_cli_threshold

    if isinstance(value, Mapping):
        items = [f"{k}={v}" for k, v in value.items()]
    else:
        items = [part.strip() for part in _text(value).split(",") if part.strip()]
    for item in items:
        try:
            parse_cli_threshold(item)
        except ThresholdError as exc:
            raise ValueError(str(exc)) from None
    return items


class ConfigList(list[str]):
    """A list default for an ``append`` flag that the first flag on the command line replaces.

    argparse copies an append flag's default and appends to the copy; this copy is empty, so
    ``-i a`` means "a", not "the configured inventory and a": the command line beats the settings.
    """

    def __copy__(self) -> list[str]:
        return []


KEEP_MAX_S = 3650 * 86400.0  # --keep and the rollups' ages: at most ten years


@dataclass(frozen=True)
class Setting:
    """One setting: its name in fleetrst.toml, the flag's dest, its FLEETRST_ variable, its type, and
    the ansible.cfg ``[defaults]`` key and ANSIBLE_ variable that feed it (if any)."""

    name: str
    convert: Callable[[object], Any]
    help: str
    kind: str = "value"  # "value", "path" (relative to the file it is in), "paths" (a list of them)
    ansible_key: str | None = None
    ansible_env: str | None = None

    @property
    def env(self) -> str:
        return "FLEETRST_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "inventory", _text, "inventory files or directories (-i)", "paths", "inventory", "ANSIBLE_INVENTORY"
    ),
    Setting("forks", _int, "at most this many hosts in flight at once (-f; default: every host)"),
    Setting("window", _duration(3600), "time between the two readings (--window)"),
    Setting("timeout", _duration(3600), "a host's allowance beyond the window (--timeout)"),
    Setting("user", _text, "login user (-u)", ansible_key="remote_user", ansible_env="ANSIBLE_REMOTE_USER"),
    Setting(
        "private_key",
        _text,
        "private key file (--private-key)",
        "path",
        "private_key_file",
        "ANSIBLE_PRIVATE_KEY_FILE",
    ),
    Setting(
        "host_key_checking",
        _host_key_checking,
        "yes, no or accept-new (--host-key-checking)",
        ansible_key="host_key_checking",
        ansible_env="ANSIBLE_HOST_KEY_CHECKING",
    ),
    Setting("connection", _choice("ssh", "paramiko", "local"), "ssh, paramiko or local (-c)"),
    Setting("warn", _rates, "warning limits, metric = rate (--warn)"),
    Setting("crit", _rates, "critical limits, metric = rate (--crit)"),
    Setting("history", _bool, "record every sweep in the history database (--no-history)"),
    Setting("db", _text, "the history database (--db)", "path"),
    Setting("rules", _choice("threshold", "netdata-history"), "threshold or netdata-history (--rules)"),
    Setting("history_audits", _int, "audits the netdata-history baseline is the median of"),
    Setting("lock_wait", _duration(86400, allow_zero=True), "how long to wait for another run (--lock-wait)"),
    Setting("textfile", _text, "node_exporter textfile to write (--textfile)", "path"),
    Setting("keep", _duration(KEEP_MAX_S), "how long each audit is kept in full, then rolled up (--keep)"),
    Setting("keep_hourly", _duration(KEEP_MAX_S, allow_zero=True), "how long hourly rollups are kept"),
    Setting("keep_daily", _duration(KEEP_MAX_S, allow_zero=True), "how long daily rollups are kept"),
    Setting("interval_warn", _rates, "warning limits on averages since the last audit (--interval-warn)"),
    Setting("interval_crit", _rates, "critical limits on averages since the last audit (--interval-crit)"),
    Setting(
        "inventory_cache",
        _duration(7 * 86400, allow_zero=True),
        "how long a plugin config's inventory is reused, 0 for never (--inventory-cache)",
    ),
    Setting("dask", _dask_address, "sweep on this Dask cluster: its scheduler's address (--dask)"),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Value:
    value: Any
    source: str  # "fleetrst.toml /etc/x/fleetrst.toml line 3", "env FLEETRST_FORKS", ...


@dataclass
class Resolved:
    """The settings files and the environment, resolved: values by setting name, files consulted."""

    values: dict[str, Value]
    files: list[str]


# --- the sources ------------------------------------------------------------------------------------


def _expand(path: str, base: Path | None) -> str:
    expanded = Path(os.path.expanduser(path.strip()))
    if base is not None and not expanded.is_absolute():
        expanded = base / expanded
    return str(expanded)


def _convert(setting: Setting, raw: object, where: str, base: Path | None) -> Any:
    try:
        if setting.kind == "paths":
            items = raw if isinstance(raw, list) else _text(raw).split(",")
            return [_expand(_text(item), base) for item in items if _text(item).strip()]
        value = setting.convert(raw)
        return _expand(value, base) if setting.kind == "path" else value
    except ValueError as exc:
        raise ConfigError(f"{where}: {setting.name} {exc}") from None


def _line_of(text: str, key: str, section: str | None = None) -> int | None:
    """The line where ``key =`` is set (in ``[section]`` when given): for messages, best effort."""
    current: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.strip("[] \t")
            continue
        if (section is None or current == section) and re.match(
            rf"{re.escape(key)}\s*[=:]", stripped, re.IGNORECASE
        ):
            return number
    return None


def ansible_cfg_path(env: Mapping[str, str], cwd: Path, home: Path) -> Path | None:
    """The ansible.cfg Ansible would read: the first of $ANSIBLE_CONFIG, ./ansible.cfg (not in a
    world-writable directory, which Ansible ignores), ~/.ansible.cfg, /etc/ansible/ansible.cfg."""
    candidates: list[Path] = []
    if env.get("ANSIBLE_CONFIG"):
        given = Path(os.path.expanduser(env["ANSIBLE_CONFIG"]))
        candidates.append(given / "ansible.cfg" if given.is_dir() else given)
    try:
        world_writable = bool(cwd.stat().st_mode & 0o002)
    except OSError:
        world_writable = True
    if not world_writable:
        candidates.append(cwd / "ansible.cfg")
    candidates += [home / ".ansible.cfg", Path("/etc/ansible/ansible.cfg")]
    return next((p for p in candidates if p.is_file()), None)


def _read_ansible_cfg(path: Path) -> dict[str, Value]:
    import configparser  # here: most runs have no ansible.cfg

    # Ansible reads it with ConfigParser(inline_comment_prefixes=(';',)) and no interpolation here.
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    try:
        text = path.read_text(encoding="utf-8")
        parser.read_string(text, source=str(path))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        if line is None and isinstance(exc, configparser.ParsingError) and exc.errors:
            line = exc.errors[0][0]
        first = str(exc).splitlines()[0].rstrip(":")
        raise ConfigError(
            f"{path}{f' line {line}' if line else ''}: malformed ansible.cfg: {first}"
        ) from None
    values: dict[str, Value] = {}
    if not parser.has_section("defaults"):
        return values
    for setting in SETTINGS:
        key = setting.ansible_key
        if key is None or not parser.has_option("defaults", key):
            continue
        raw = parser.get("defaults", key)
        line = _line_of(text, key, "defaults")
        where = f"{path}{f' line {line}' if line else ''}"
        values[setting.name] = Value(
            _convert(setting, raw, f"{where} ([defaults] {key})", path.parent),
            f"ansible.cfg {where} [defaults] {key}",
        )
    return values


def _read_ansible_env(env: Mapping[str, str], cwd: Path) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for setting in SETTINGS:
        name = setting.ansible_env
        if name and env.get(name, "").strip():
            where = f"environment variable {name}"
            values[setting.name] = Value(_convert(setting, env[name], where, cwd), f"env {name}")
    return values


def fleetrst_toml_path(env: Mapping[str, str], cwd: Path, home: Path) -> Path | None:
    if env.get("FLEETRST_CONFIG"):
        given = Path(os.path.expanduser(env["FLEETRST_CONFIG"]))
        if not given.is_file():
            raise ConfigError(f"FLEETRST_CONFIG names {given}, which is not a file")
        return given
    config_home = env.get("XDG_CONFIG_HOME", "")
    base = Path(config_home) if config_home and os.path.isabs(config_home) else home / ".config"
    for candidate in (cwd / "fleetrst.toml", base / "fleetrst" / "fleetrst.toml"):
        if candidate.is_file():
            return candidate
    return None


def _read_toml(path: Path) -> dict[str, Value]:
    import tomllib  # here: most runs have no fleetrst.toml (and tomllib costs ~3 ms to import)

    try:
        text = path.read_text(encoding="utf-8")
        doc = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 7)", or "(at end of document)"
        message = str(exc).replace(
            "at end of document", f"at the end of the file, line {len(text.splitlines())}"
        )
        raise ConfigError(f"{path}: malformed TOML: {message}") from None
    values: dict[str, Value] = {}
    for key, raw in doc.items():
        line = _line_of(text, key) or _line_of(text.replace("[", "").replace("]", " ="), key)
        where = f"{path}{f' line {line}' if line else ''}"
        setting = BY_NAME.get(key)
        if setting is None:
            known = ", ".join(s.name for s in SETTINGS)
            raise ConfigError(f"{where}: unknown setting {key!r}; known: {known}")
        values[key] = Value(_convert(setting, raw, where, path.parent), f"fleetrst.toml {where}")
    return values


def _read_fleetrst_env(env: Mapping[str, str], cwd: Path) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for setting in SETTINGS:
        if env.get(setting.env, "").strip():
            where = f"environment variable {setting.env}"
            values[setting.name] = Value(
                _convert(setting, env[setting.env], where, cwd), f"env {setting.env}"
            )
    return values


def resolve(
    env: Mapping[str, str] | None = None, cwd: Path | None = None, home: Path | None = None
) -> Resolved:
    """Every source, lowest first; later ones win. Raises ConfigError."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    home = Path(os.path.expanduser("~")) if home is None else home
    values: dict[str, Value] = {}
    files: list[str] = []
    cfg = ansible_cfg_path(env, cwd, home)
    if cfg is not None:
        files.append(f"ansible.cfg {cfg}")
        values.update(_read_ansible_cfg(cfg))
    values.update(_read_ansible_env(env, cwd))
    toml = fleetrst_toml_path(env, cwd, home)
    if toml is not None:
        files.append(f"fleetrst.toml {toml}")
        values.update(_read_toml(toml))
    values.update(_read_fleetrst_env(env, cwd))
    return Resolved(values=values, files=files)


def default_history_path(env: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """``$XDG_STATE_HOME/fleetrst/history.sqlite``, ``~/.local/state/fleetrst/history.sqlite`` by default."""
    env = os.environ if env is None else env
    home = Path(os.path.expanduser("~")) if home is None else home
    state = env.get("XDG_STATE_HOME", "")
    base = Path(state) if state and os.path.isabs(state) else home / ".local" / "state"
    return base / "fleetrst" / "history.sqlite"
