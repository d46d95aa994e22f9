"""Settings: fleetrst.toml, FLEETRST_*, ANSIBLE_* and ansible.cfg, in that order of strength, all beaten
by the command line; and one clear line (exit 64) for a file that cannot be used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetrst import settings as config
from fleetrst.settings import ConfigError, resolve
from tests.helpers import run_cli


def _values(env: dict[str, str], cwd: Path, home: Path) -> dict[str, object]:
    return {k: v.value for k, v in resolve(env, cwd, home).values.items()}


def test_ansible_cfg_defaults_are_read_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\ninventory = inventories/prod, extra.yml ; a comment\nremote_user = audit\n"
        "private_key_file = ~/.ssh/audit\nhost_key_checking = False\nforks = 25\n"
        "[ssh_connection]\npipelining = True\n"
    )
    home = tmp_path / "home"
    got = _values({}, tmp_path, home)
    assert got == {
        "inventory": [str(tmp_path / "inventories/prod"), str(tmp_path / "extra.yml")],
        "user": "audit",
        "private_key": str(Path("~/.ssh/audit").expanduser()),
        "host_key_checking": "no",
    }, "forks (Ansible's worker processes) is not read: it would only throttle a sweep"


def test_ansible_order_first_found_file_only(tmp_path: Path) -> None:
    home, cwd, elsewhere = tmp_path / "home", tmp_path / "cwd", tmp_path / "elsewhere"
    for d in (home, cwd, elsewhere):
        d.mkdir()
    (home / ".ansible.cfg").write_text("[defaults]\nremote_user = from-home\nforks = 7\n")
    (cwd / "ansible.cfg").write_text("[defaults]\nremote_user = from-cwd\n")
    (elsewhere / "my.cfg").write_text("[defaults]\nremote_user = from-env\n")
    assert _values({}, cwd, home) == {"user": "from-cwd"}, "./ansible.cfg wins, ~/.ansible.cfg unread"
    assert _values({"ANSIBLE_CONFIG": str(elsewhere / "my.cfg")}, cwd, home) == {"user": "from-env"}
    cwd.chmod(0o777)  # Ansible ignores ansible.cfg in a world-writable directory
    try:
        assert _values({}, cwd, home) == {"user": "from-home"}  # forks: Ansible's, not read
    finally:
        cwd.chmod(0o755)


def test_fleetrst_settings_beat_ansibles_and_the_environment_beats_the_file(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text("[defaults]\nforks = 5\nremote_user = ansible-user\n")
    (tmp_path / "fleetrst.toml").write_text(
        'forks = 50\nwindow = "2s"\ndb = "hist/h.sqlite"\nrules = "netdata-history"\n'
        "[warn]\nresets_sent = 20\n"
    )
    env = {"ANSIBLE_INVENTORY": "a.yml,b.yml", "FLEETRST_WINDOW": "3s", "ANSIBLE_REMOTE_USER": "env-user"}
    resolved = resolve(env, tmp_path, tmp_path / "home")
    got = {k: v.value for k, v in resolved.values.items()}
    assert got["forks"] == 50 and resolved.values["forks"].source.startswith("fleetrst.toml")
    assert resolved.values["forks"].source.endswith("fleetrst.toml line 1")
    assert got["window"] == 3.0 and resolved.values["window"].source == "env FLEETRST_WINDOW"
    assert got["user"] == "env-user", "ANSIBLE_* beats ansible.cfg, as in Ansible"
    assert got["inventory"] == [str(tmp_path / "a.yml"), str(tmp_path / "b.yml")]
    assert got["db"] == str(tmp_path / "hist/h.sqlite")
    assert got["warn"] == ["resets_sent=20"] and got["rules"] == "netdata-history"


def test_the_user_config_dir_is_read_when_the_working_dir_has_none(tmp_path: Path) -> None:
    user = tmp_path / "xdg" / "fleetrst"
    user.mkdir(parents=True)
    (user / "fleetrst.toml").write_text("forks = 9\n")
    assert _values({"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, tmp_path, tmp_path / "home") == {"forks": 9}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("fleetrst.toml", "forks = 10\nwindow = \n", r"fleetrst.toml: malformed TOML: .*line 2"),
        ("fleetrst.toml", "forks = 10\nforkz = 3\n", r"fleetrst.toml line 2: unknown setting 'forkz'"),
        ("fleetrst.toml", '\nforks = "many"\n', r"fleetrst.toml line 2: forks must be a whole number"),
        ("fleetrst.toml", '[warn]\nresets_sent = "lots"\n', r"fleetrst.toml line 1: warn bad threshold"),
        (
            "ansible.cfg",
            "[defaults]\nforks = 5\ngarbage line\n",
            r"ansible.cfg line 3: malformed ansible.cfg",
        ),
        (
            "ansible.cfg",
            "forks = 5\n",
            r"ansible.cfg line 1: malformed ansible.cfg: File contains no section",
        ),
        (
            "ansible.cfg",
            "[defaults]\n\nhost_key_checking = maybe\n",
            r"ansible.cfg line 3 \(\[defaults\] host_key_checking\): host_key_checking must",
        ),
    ],
)
def test_a_malformed_file_is_one_line_naming_file_and_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        resolve({}, tmp_path, tmp_path / "home")


def test_a_bad_environment_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="environment variable FLEETRST_FORKS: forks must be a whole number"
    ):
        resolve({"FLEETRST_FORKS": "lots"}, tmp_path, tmp_path / "home")


def test_history_path_follows_xdg_state_home(tmp_path: Path) -> None:
    assert config.default_history_path({}, tmp_path) == tmp_path / ".local/state/fleetrst/history.sqlite"
    assert config.default_history_path({"XDG_STATE_HOME": "/var/x"}, tmp_path) == Path(
        "/var/x/fleetrst/history.sqlite"
    )
    assert config.default_history_path({"XDG_STATE_HOME": "rel"}, tmp_path).is_relative_to(tmp_path), (
        "a relative XDG_STATE_HOME is ignored, as the spec says"
    )


# --- through the command line ---


def test_fleetrst_config_shows_each_value_and_where_it_came_from(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    (tmp_path / "fleetrst.toml").write_text('forks = 40\nlock_wait = "5m"\n')
    (tmp_path / "ansible.cfg").write_text("[defaults]\nremote_user = audit\n")
    cli_env["FLEETRST_WINDOW"] = "4s"
    proc = run_cli("config", env=cli_env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert "40" in lines["forks"] and f"fleetrst.toml {tmp_path}/fleetrst.toml line 1" in lines["forks"]
    assert "4s" in lines["window"] and "env FLEETRST_WINDOW" in lines["window"]
    assert "5m" in lines["lock_wait"]
    assert "audit" in lines["user"] and "[defaults] remote_user" in lines["user"]
    assert str(tmp_path / "state/fleetrst/history.sqlite") in lines["db"]
    doc = json.loads(run_cli("config", "-o", "json", env=cli_env, cwd=tmp_path).stdout)
    assert {s["setting"]: s["value"] for s in doc["settings"]}["forks"] == 40


def test_a_malformed_config_stops_every_command_with_exit_64(tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "fleetrst.toml").write_text("forks = [\n")
    proc = run_cli("sweep", "--window", "0.2", env=cli_env, cwd=tmp_path)
    assert proc.returncode == 64
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"{tmp_path}/fleetrst.toml: malformed TOML" in proc.stderr and "line 1" in proc.stderr


def test_the_command_line_beats_the_settings(tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "fleetrst.toml").write_text('inventory = ["missing.yml"]\nwindow = "1h"\n')
    # The configured inventory is used when no -i is given ...
    proc = run_cli("sweep", "--list-hosts", env=cli_env, cwd=tmp_path)
    assert proc.returncode == 64 and "missing.yml" in proc.stderr
    # ... and replaced (not extended) by -i; the window flag beats the file's hour.
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    proc = run_cli(
        "sweep", "-i", str(inv), "--window", "0.2", "-o", "json", "--no-history", env=cli_env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["inventories"] == [str(inv)] and doc["window_s"] == 0.2
