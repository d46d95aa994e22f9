"""The cause classifier: rates and socket facts in, causes with evidence and a next step out."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetrst.investigate.classify import CAUSES, Facts, ListenerFact, RstSeen, classify
from fleetrst.investigate.result import ProcessRef
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
    assert causes[0].as_result().processes == (ProcessRef(4242, "aborting-server", 9400),)


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
        found = c.as_result()
        assert found.cause == c.cause and found.summary and found.next_step
        assert found.evidence.rates == {k: round(v, 3) for k, v in c.rates.items()}


# --- what each cause points at (Cause.top, the table's TOP PORT/PROCESS) ----------------------------


def test_a_client_refused_by_its_peers_points_at_the_peer_not_at_its_ephemeral_ports() -> None:
    facts = Facts(rsts=[RstSeen("received", 41000 + i, "10.231.0.7", 5432, 2) for i in range(5)])
    (cause,) = classify({"resets_received": 80.0}, facts)
    assert cause.port is None and cause.top is not None
    assert (cause.top.port, cause.top.peer, cause.top.processes) == (None, "10.231.0.7:5432", ())
    assert "10 RSTs received" in cause.top.why


def test_a_closed_port_seen_in_the_capture_is_the_top_and_without_a_capture_nothing_is() -> None:
    facts = Facts(rsts=[RstSeen("loopback", 46027, "127.0.0.1", 40000 + i, 1) for i in range(50)])
    (cause,) = classify(CLOSED_PORT, facts)
    assert cause.top is not None and (cause.top.port, cause.top.peer) == (46027, None)
    assert "50 RSTs sent" in cause.top.why
    (blind,) = classify({"resets_sent": 80.0}, Facts(listeners=[ListenerFact("10.0.0.2", 22, 0, 128)]))
    assert blind.cause == "closed_port" and blind.top is None
    assert "a capture (--capture 10s" in blind.next_step and "names the port" in blind.next_step


def test_an_aborting_server_and_a_flooded_listener_point_at_their_port_and_process() -> None:
    facts = Facts(
        listeners=[ListenerFact("127.0.0.1", 9400, 0, 128, (SERVER,)), ListenerFact("10.0.0.2", 22, 0, 128)],
        rsts=[RstSeen("loopback", 9400, "127.0.0.1", 50000 + i, 1) for i in range(30)],
        session_port=22,
    )
    (cause,) = classify(LINGER_ABORT, facts)
    assert cause.top is not None and (cause.top.port, cause.top.peer, cause.top.processes) == (
        9400,
        None,
        (SERVER,),
    )
    facts = Facts(listeners=[ListenerFact("127.0.0.1", 9401, 2, 1, (STUCK,))], sysctls={"somaxconn": "4096"})
    flood = classify(LISTEN_OVERFLOW, facts)[0]
    assert flood.top is not None and (flood.top.port, flood.top.peer, flood.top.processes) == (
        9401,
        None,
        (STUCK,),
    )
    assert "backlog of 1" in flood.top.why
    assert classify(LISTEN_OVERFLOW, Facts())[0].top is None, "no listener seen full: nothing named"


def test_peers_resetting_point_at_our_listener_as_server_or_at_the_peer_as_client() -> None:
    rates = {"estab_resets": 30.0}
    on_listener = Facts(
        listeners=[ListenerFact("0.0.0.0", 9400, 0, 128, (SERVER,))],
        rsts=[RstSeen("received", 9400, "10.0.0.9", 50000 + i, 3) for i in range(10)],
    )
    (cause,) = classify(rates, on_listener)
    assert cause.top is not None and (cause.top.port, cause.top.peer, cause.top.processes) == (
        9400,
        None,
        (SERVER,),
    )
    as_client = Facts(rsts=[RstSeen("received", 50000 + i, "fe80::1", 443, 1) for i in range(10)])
    (cause,) = classify(rates, as_client)
    assert cause.top is not None and (cause.top.port, cause.top.peer) == (None, "[fe80::1]:443")
    (cause,) = classify(rates, Facts())
    assert cause.top is None, "without a capture nothing names the peers"


def test_causes_whose_evidence_names_nothing_have_no_top() -> None:
    rates = {"estab_resets": 50.0, "challenge_acks": 40.0, "aborts_on_memory": 1.0}
    causes = classify(rates, Facts(listeners=[ListenerFact("10.0.0.2", 22, 0, 128)], states={"SYN-RECV": 7}))
    assert names(causes) == ["half_open", "memory_pressure"] and all(c.top is None for c in causes)


def test_time_wait_assassination_points_at_the_end_the_rsts_name() -> None:
    tw = [("TIME-WAIT", 5432, "10.0.0.9", 41000)]
    rsts = [RstSeen("received", 5432, "10.0.0.9", 41000, 3)]
    served = classify({}, Facts(sockets=tw, rsts=rsts, listeners=[ListenerFact("0.0.0.0", 5432, 0, 128)]))
    assert served[0].top is not None and (served[0].top.port, served[0].top.peer) == (5432, None)
    tw = [("TIME-WAIT", 41000, "10.0.0.9", 5432)]
    rsts = [RstSeen("received", 41000, "10.0.0.9", 5432, 3)]
    dialled = classify({}, Facts(sockets=tw, rsts=rsts))
    assert dialled[0].top is not None and (dialled[0].top.port, dialled[0].top.peer) == (
        None,
        "10.0.0.9:5432",
    )


_ports = st.sampled_from([22, 5432, 9400, 41000, 53460])
_rsts = st.lists(
    st.builds(
        RstSeen,
        st.sampled_from(["sent", "received", "loopback"]),
        _ports,
        st.sampled_from(["127.0.0.1", "10.0.0.9"]),
        _ports,
        st.integers(1, 5),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["resets_received", "resets_sent", "estab_resets", "aborts_on_data", "listen_overflows"]
        ),
        st.floats(0, 200),
    ),
    st.none() | _rsts,
    st.lists(_ports, max_size=2),
)
def test_a_top_names_only_a_served_port_or_a_resetting_peer(
    rates: dict[str, float], rsts: list[RstSeen] | None, listening: list[int]
) -> None:
    facts = Facts(rsts=rsts, listeners=[ListenerFact("0.0.0.0", p, 0, 128) for p in listening])
    sent_from = {r.local_port for r in rsts or () if r.direction in ("sent", "loopback")}
    peers = {f"{r.peer_address}:{r.peer_port}" for r in rsts or () if r.direction != "sent"}
    for cause in classify(rates, facts):
        top = cause.top
        if top is None:
            continue
        assert (top.port is None) != (top.peer is None), top
        assert top.why
        if top.port is not None:  # a listener, or the closed port the host's own RSTs come from
            assert top.port in set(listening) | sent_from, top
        else:  # the peer the capture saw resetting this host
            assert top.peer in peers, top
