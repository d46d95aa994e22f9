"""The cause classifier: rates and socket facts in, causes with evidence and a next step out."""

from __future__ import annotations

from fleetrst.investigate.classify import CAUSES, Facts, ListenerFact, RstSeen, classify
from fleetrst.investigate.ss import Owner

# Rates measured on this machine (tests/fixtures/proc: 2 s of each load in a namespace)
CLOSED_PORT = {"resets_received": 188.8, "resets_sent": 188.8}
LINGER_ABORT = {"resets_sent": 186.0, "estab_resets": 372.0, "aborts_on_data": 186.0}
LISTEN_OVERFLOW = {"listen_overflows": 278.7, "listen_drops": 278.7, "resets_sent": 1.0, "estab_resets": 1.0}

SERVER = Owner(4242, "aborting-server")
STUCK = Owner(4343, "stuck-listener")


def names(causes: list) -> list[str]:  # type: ignore[type-arg]
    return [c.cause for c in causes]


def test_quiet_rates_have_no_cause() -> None:
    assert classify({"resets_received": 0.2, "resets_sent": 0.1}, Facts()) == []


def test_a_closed_port_storm_is_closed_port_and_names_the_port_from_the_capture() -> None:
    facts = Facts(
        rsts=[RstSeen("loopback", 46027, "127.0.0.1", 40000 + i, 1) for i in range(50)],
        listeners=[ListenerFact("10.0.0.2", 22, 0, 128)],
    )
    (cause,) = classify(CLOSED_PORT, facts)
    assert cause.cause == "closed_port" and cause.port == 46027
    assert cause.rates["resets_received"] == 188.8
    assert cause.sockets["rsts_sent_from_closed_port"] == 50
    assert "listen" in cause.next_step


def test_refused_by_peers_says_so_and_names_them() -> None:
    facts = Facts(rsts=[RstSeen("received", 41000 + i, "10.231.0.7", 5432, 2) for i in range(5)])
    (cause,) = classify({"resets_received": 80.0}, facts)
    assert cause.cause == "closed_port"
    assert "refused by their peers" in cause.summary
    assert cause.sockets["rsts_received_from"] == {"10.231.0.7:5432": 10}


def test_an_aborting_server_is_aborted_connection_with_its_process() -> None:
    facts = Facts(
        listeners=[ListenerFact("127.0.0.1", 9400, 0, 128, (SERVER,)), ListenerFact("10.0.0.2", 22, 0, 128)],
        rsts=[RstSeen("loopback", 9400, "127.0.0.1", 50000 + i, 1) for i in range(30)],
        session_port=22,
    )
    causes = classify(LINGER_ABORT, facts)
    assert names(causes) == ["aborted_connection"], "the RSTs are all explained by aborts: no closed_port"
    assert causes[0].port == 9400 and causes[0].processes == (SERVER,)
    assert causes[0].as_json()["processes"] == [{"pid": 4242, "command": "aborting-server", "port": 9400}]


def test_without_a_capture_the_only_listener_besides_ssh_is_named_and_said_to_be_a_guess() -> None:
    facts = Facts(
        listeners=[ListenerFact("127.0.0.1", 9400, 0, 128, (SERVER,)), ListenerFact("10.0.0.2", 22, 0, 128)],
        sockets=[("ESTAB", 22, "10.0.0.1", 50000)],
        session_port=22,
    )
    (cause,) = classify(LINGER_ABORT, facts)
    assert cause.port == 9400 and "capture would confirm" in cause.summary


def test_a_flooded_listener_is_listen_queue_full_with_its_port() -> None:
    facts = Facts(
        listeners=[ListenerFact("127.0.0.1", 9401, 2, 1, (STUCK,)), ListenerFact("10.0.0.2", 22, 0, 128)],
        sockets=[("SYN-SENT", 50000 + i, "127.0.0.1", 9401) for i in range(200)],
        sysctls={"somaxconn": "4096", "tcp_abort_on_overflow": "0"},
    )
    causes = classify(LISTEN_OVERFLOW, facts)
    assert names(causes)[0] == "listen_queue_full"
    top = causes[0]
    assert top.port == 9401 and top.processes == (STUCK,)
    assert top.sockets["accept_queue"] == 2 and top.sockets["backlog"] == 1
    assert top.sockets["local_clients_in_syn_sent"] == 200
    assert "somaxconn (now 4096)" in top.next_step


def test_half_open_needs_challenge_acks_or_syn_queue_drops() -> None:
    assert "half_open" not in names(classify({"estab_resets": 50.0}, Facts()))
    causes = classify({"estab_resets": 50.0, "challenge_acks": 40.0}, Facts(states={"SYN-RECV": 7}))
    assert names(causes) == ["half_open"] and causes[0].sockets["SYN-RECV"] == 7
    assert names(classify({"req_q_full_drops": 5.0}, Facts())) == ["half_open"]


def test_peers_resetting_established_connections_is_aborted_connection() -> None:
    (cause,) = classify({"estab_resets": 30.0}, Facts())
    assert cause.cause == "aborted_connection" and "peers reset" in cause.summary


def test_memory_pressure_from_counters_or_from_tcp_mem() -> None:
    assert names(classify({"aborts_on_memory": 0.5}, Facts())) == ["memory_pressure"]
    facts = Facts(tcp_mem_pages=(100, 200, 300), tcp_mem_used_pages=250, orphans=9)
    (cause,) = classify({}, facts)
    assert cause.cause == "memory_pressure" and cause.sockets["tcp_mem_used_pages"] == 250


def test_time_wait_assassination_only_with_evidence() -> None:
    tw = [("TIME-WAIT", 5432, "10.0.0.9", 41000)]
    assert classify({"resets_received": 0.1}, Facts(sockets=tw)) == [], "TIME-WAIT alone proves nothing"
    facts = Facts(
        sockets=tw, rsts=[RstSeen("received", 5432, "10.0.0.9", 41000, 3)], sysctls={"tcp_rfc1337": "0"}
    )
    causes = classify({}, facts)
    assert names(causes) == ["time_wait_assassination"]
    assert "tcp_rfc1337=1" in causes[0].next_step


def test_every_cause_has_words_for_the_on_call_engineer() -> None:
    rates = {
        **CLOSED_PORT,
        "aborts_on_data": 5.0,
        "estab_resets": 40,
        "challenge_acks": 30,
        "listen_overflows": 9,
        "aborts_on_memory": 1,
    }
    facts = Facts(
        sockets=[("TIME-WAIT", 80, "10.0.0.9", 1)], rsts=[RstSeen("received", 80, "10.0.0.9", 1, 1)]
    )
    causes = classify(rates, facts)
    assert set(names(causes)) == set(CAUSES)
    assert [c.score for c in causes] == sorted((c.score for c in causes), reverse=True)
    for c in causes:
        doc = c.as_json()
        assert doc["summary"] and doc["next_step"] and "evidence" in doc
