"""How a sweep is cut into shards: hosts behind one address stay together, shards are even, the
user's cap on hosts in flight is shared out, and secrets stay home on an unencrypted cluster."""

from __future__ import annotations

from fleetrst.model import ConnectionSettings, Target
from fleetrst.scale import PROCS_MIN_HOSTS, default_procs, plan_shards, shard_options
from fleetrst.scale.cluster import eligible_workers, site_of
from fleetrst.scale.plan import without_secrets
from fleetrst.sweep import SweepOptions


def target(name: str, address: str, **settings: object) -> Target:
    return Target(name, ("fleet",), ConnectionSettings(address=address, **settings))  # type: ignore[arg-type]


def test_hosts_behind_one_address_or_one_jump_host_stay_in_one_shard_and_shards_are_even() -> None:
    targets = [target(f"alias{n}", "10.0.0.1") for n in range(6)]  # six names, one sshd
    targets += [target(f"web{n}", f"10.0.1.{n}") for n in range(10)]
    targets += [target(f"inner{n}", f"192.168.0.{n}", proxy_jump="bastion") for n in range(4)]
    shards = plan_shards(targets, 3)
    assert sorted(i for shard in shards for i in shard) == list(range(len(targets)))
    assert all(shard == sorted(shard) for shard in shards), "each shard keeps the target order"
    where = {i: k for k, shard in enumerate(shards) for i in shard}
    assert len({where[i] for i in range(6)}) == 1, "the per-address handshake cap holds in one loop"
    assert len({where[i] for i in range(16, 20)}) == 1, "hosts behind one bastion share its connection"
    assert sorted(len(s) for s in shards) == [6, 7, 7]


def test_no_shard_is_empty_and_there_are_never_more_shards_than_addresses() -> None:
    assert plan_shards([target("a", "10.0.0.1"), target("b", "10.0.0.1")], 4) == [[0, 1]]
    assert plan_shards([target(f"h{n}", f"10.0.0.{n}") for n in range(3)], 8) == [[0], [1], [2]]


def test_forks_the_users_cap_is_shared_out_and_the_handshake_caps_are_each_loops() -> None:
    options = SweepOptions(forks=100, handshakes=40)
    shares = shard_options(options, [300, 100])
    assert [o.forks for o in shares] == [75, 25]
    assert {o.handshakes for o in shares} == {40}
    assert shard_options(SweepOptions(), [5, 5]) == [SweepOptions(), SweepOptions()]


def test_every_core_once_a_sweep_is_big_enough() -> None:
    assert default_procs(PROCS_MIN_HOSTS - 1, 8) == 1
    assert default_procs(PROCS_MIN_HOSTS, 8) == 8
    assert default_procs(100_000, 1) == 1


def test_passwords_are_taken_out_of_targets_bound_for_an_unencrypted_cluster() -> None:
    targets = [
        target("keys", "10.0.0.1"),
        target("pw", "10.0.0.2", password="hunter2"),
        target("sudo", "10.0.0.3", become=True, become_password="s3cret"),
    ]
    cleaned, stripped = without_secrets(targets)
    assert stripped == ["pw", "sudo"]
    assert cleaned[0] is targets[0]
    assert all(t.connection.password is None and t.connection.become_password is None for t in cleaned)
    assert cleaned[2].connection.become is True, "only the secret goes: become itself stays"


def test_a_hosts_site_is_a_name_and_pins_it_to_the_workers_that_declare_it() -> None:
    workers = {
        "tcp://10.1.0.5:4000": {"resources": {"dc1": 1}},
        "tcp://10.2.0.5:4000": {"resources": {"dc2": 1.0}},
        "tcp://10.3.0.5:4000": {"resources": {}},
    }
    assert eligible_workers(workers, "dc1") == ["tcp://10.1.0.5:4000"]
    assert eligible_workers(workers, "dc3") == []
    assert len(eligible_workers(workers, None)) == 3
    pinned = Target("a", (), ConnectionSettings("10.0.0.1"), {"fleetrst_site": "dc1"})
    assert site_of(pinned) == ("dc1", None)
    assert site_of(target("b", "10.0.0.2")) == (None, None)
    bad = Target("c", (), ConnectionSettings("10.0.0.3"), {"fleetrst_site": 7})
    assert site_of(bad) == (None, "host c: fleetrst_site must be a site name (a string), got 7")


def test_the_help_names_the_threshold_the_code_uses() -> None:
    from fleetrst.cli.main import build_parser

    _, commands = build_parser()
    assert f"every core from {PROCS_MIN_HOSTS} hosts on" in " ".join(commands["sweep"].format_help().split())
