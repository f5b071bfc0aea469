"""Relay benchmarks: Homeroom's forwarding relay under load from aiortc peers (issue 6).

`run(name, seconds)` runs one benchmark of `NAMES` and returns its JSON-ready result;
`python -m bench.relay NAME [--seconds S]` does the same, prints it and saves it under
bench/results/NAME.json. Each run starts two processes: the relay (`relay_server`, pinned to core
1) and the load generator (`loadgen`, pinned to core 0), talking over a local pipe (`channel`).
The relay's and the generator's CPU come from /proc/<pid>/stat over the measured window (the
kernel's part of the relay's is `relay_system_cpu_pct_one_core`, to hold against
`udp-fanout-floor`); a run whose generator core is more than 90 % busy is reported
`valid: false`. `join-storm` is the exception: 31 clients join one lesson of a real daphne through
the websocket signalling (bench/relay/join_storm.py), and its window is the storm itself, whatever
`--seconds` says.
Both ends offer ICE candidates of one address family only (`address_family`, IPv4 unless asked;
see scenarios.ADDRESS_FAMILIES), and the run is invalid if the machine's UDP datagrams went by the
other.
`relay-gallery` runs with simulcast (each camera sent full size and as a low layer; the teacher's
on every large tile at the high layer, the thumbnails at the low one); `relay-gallery-single-layer`
is the same lesson without simulcast, for the comparison; both are scaled down from the issue's 31
participants until the generator keeps up (their notes say how far). `relay-full` runs the
forwarder without selection: everyone receives everything.
A scenario with `compare_pacing` (`keyframe-storm`) runs a second time with the relay's video
pacer on at one storm and off at the next, so that both meet the same machine: the result is the
first run's, with the second run's storms, paced and not, under `pacing_compared`. On loopback
the kernel queues nothing on the way out, so what pacing saves a real network card's queue does
not show; to give the relay's datagrams such a queue (here 1 Gbit/s), run inside a network
namespace whose loopback is rate-limited (aioice needs a non-loopback address, hence the veth):

    unshare -n sh -c 'ip link set lo up && ip link add v0 type veth peer name v1 &&
      ip addr add 10.77.0.1/24 dev v0 && ip link set v0 up && ip link set v1 up &&
      tc qdisc add dev lo root tbf rate 1gbit burst 64kb latency 200ms &&
      exec .venv/bin/python bench/run.py keyframe-storm --seconds 20'
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import replace
from typing import Any

from . import join_storm, loadgen, relay_server
from .media import encoded_clip
from .scenarios import (
    ADDRESS_FAMILIES,
    COMPARE_STORM_EVERY,
    GENERATOR_CORE,
    RELAY_CORE,
    SCENARIOS,
    TRANSCODE_BASELINE,
    AddressFamily,
    Scenario,
)

NAMES = [*SCENARIOS, "join-storm"]
# Joining, connecting and first media take seconds on top of the window.
OVERHEAD_SECONDS = 150
# Of the comparison run, what is not in its `pacing_compared`.
COMPARED_KEYS = ("valid", "invalid_reasons", "storms", "loss_pct", "delivered_fps")
COMPARED_CONDITIONS = ("relay_waited_for_cpu_pct", "generator_cpu_pct", "load_average_1min")


def run(name: str, seconds: float, address_family: AddressFamily = "ipv4") -> dict[str, Any]:
    """Run the benchmark `name` (one of NAMES) with a measured window of `seconds`, its peers'
    ICE candidates of `address_family` only (join-storm: of both, as browsers offer them)."""
    if name == "join-storm":
        return join_storm.run(seconds)
    if address_family not in ADDRESS_FAMILIES:
        raise ValueError(f"address family {address_family!r}: one of {ADDRESS_FAMILIES}")
    scenario = replace(SCENARIOS[name], address_family=address_family)
    if name == TRANSCODE_BASELINE.name:
        return _transcode_baseline(scenario, seconds)
    if scenario.compare_pacing:
        return _with_pacing_compared(scenario, seconds)
    return _run_scenario(scenario, seconds)


def _with_pacing_compared(scenario: Scenario, seconds: float) -> dict[str, Any]:
    result = _run_scenario(scenario, seconds)
    alternating = replace(scenario, storm_every=COMPARE_STORM_EVERY, alternate_pacing=True)
    compared = _run_scenario(alternating, seconds)
    storms = compared["pacing_compared"]
    on, off = (storms[k]["other_class_audio_storm_p99_ms"] for k in ("on", "off"))
    return {
        **result,
        "pacing_compared": {
            **storms,
            "storm_every": COMPARE_STORM_EVERY,
            **{key: compared.get(key) for key in COMPARED_KEYS},
            "conditions": {key: compared["conditions"].get(key) for key in COMPARED_CONDITIONS},
        },
        # Above 1: the second lesson's audio fared worse during the storms the relay did not pace.
        "other_class_audio_storm_p99_ratio_off_vs_on": round(off / on, 2) if on and off else None,
    }


def _transcode_baseline(baseline: Scenario, seconds: float) -> dict[str, Any]:
    lecture = replace(SCENARIOS["relay-lecture"], address_family=baseline.address_family)
    forwarding = _run_scenario(lecture, seconds)
    transcoding = _run_scenario(baseline, seconds)
    keys = ("relay_cpu_pct_one_core", "delivered_fps", "forwarded_pps", "valid")
    ratio = per_frame = None
    if forwarding["relay_cpu_pct_one_core"] and transcoding["delivered_fps"]:
        ratio = transcoding["relay_cpu_pct_one_core"] / forwarding["relay_cpu_pct_one_core"]
        # Per delivered frame: a saturated transcoder delivers fewer frames for its core.
        per_frame = (transcoding["relay_cpu_pct_one_core"] / transcoding["delivered_fps"]) / (
            forwarding["relay_cpu_pct_one_core"] / forwarding["delivered_fps"]
        )
    return {
        **transcoding,
        "ratio_vs_transcode": round(per_frame, 1) if per_frame else None,
        "cpu_ratio_vs_transcode": round(ratio, 1) if ratio else None,
        "forwarding": {key: forwarding[key] for key in keys},
    }


def _relay_description(scenario: Scenario) -> str:
    if scenario.relay == "transcode":
        return "aiortc MediaRelay"
    return "LessonForwarder" if scenario.selective else "LessonForwarder(selective=False)"


def _run_scenario(scenario: Scenario, seconds: float) -> dict[str, Any]:
    clip = encoded_clip()
    # Spawned, not forked: the children start from a clean interpreter (no Django, no threads).
    context = multiprocessing.get_context("spawn")
    relay_end, generator_end = context.Pipe()
    report_receiver, report_sender = context.Pipe(duplex=False)
    relay = context.Process(
        target=relay_server.main,
        args=(relay_end, scenario.relay, RELAY_CORE, scenario.selective),
        name="relay",
    )
    relay.start()
    assert relay.pid is not None  # noqa: S101 -- set by start()
    generator = context.Process(
        target=loadgen.main,
        args=(generator_end, report_sender, scenario, clip, seconds, relay.pid, GENERATOR_CORE),
        name="loadgen",
    )
    generator.start()
    try:
        if not report_receiver.poll(seconds + OVERHEAD_SECONDS):
            raise TimeoutError(f"{scenario.name}: no result within {seconds + OVERHEAD_SECONDS} s")
        result: dict[str, Any] = report_receiver.recv()
    finally:
        for process in (generator, relay):
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
    if "error" in result:
        raise RuntimeError(f"{scenario.name}: {result['error']}")
    result["conditions"].update(
        {
            "relay": _relay_description(scenario),
            "relay_core": RELAY_CORE,
            "relay_read_hold_ms": relay_server.read_hold_ms(),
            "generator_core": GENERATOR_CORE,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "media": clip.describe(),
            **({"note": scenario.note} if scenario.note else {}),
        }
    )
    return result
