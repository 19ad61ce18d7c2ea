"""Soak: 10,000 MVMs through a link that drops 5 %, corrupts 1 % and delays 1 % of the frames
(in both directions): none is lost, none is applied twice (the server's own counters), and
every result equals the fault-free in-process macro's, noise included."""

from __future__ import annotations

import time

import numpy as np
import pytest
from _hil import device, live_server

from neurohw.hil.faults import parse_faults
from neurohw.hil.macro import LocalMacro, MvmCall
from neurohw.hil.messages import Block
from neurohw.hil.remote import RemoteMacro

N_MVM = 10_000
CHUNK = 500


@pytest.mark.slow
def test_soak_10000_mvms_over_a_faulty_link():
    dev = device()
    block = Block(0, 0, 32, 0, 16)
    rng = np.random.default_rng(0)
    inputs = (rng.random((N_MVM, 2, 1, 32)) < 0.3).astype(np.uint8)
    clean = LocalMacro(dev, tiles=1, chip_seed=21)
    clean.form(block, 4)
    want = clean.mvm_many([MvmCall(block, x) for x in inputs])
    spec = parse_faults("drop=0.05,corrupt=0.01,delay=0.01:30,seed=5")
    t0 = time.monotonic()
    with live_server(dev, tiles=1, faults=spec) as srv:
        with RemoteMacro(srv.url + "?timeout=0.25&retries=30", chip_seed=21) as rm:
            rm.form(block, 4)
            got = []
            for i in range(0, N_MVM, CHUNK):
                got += rm.mvm_many([MvmCall(block, x) for x in inputs[i : i + CHUNK]])
            stats = rm.stats()
            counters = dict(rm.counters)
        faults = srv.stats()["faults"]
    elapsed = time.monotonic() - t0
    assert len(got) == N_MVM
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
    # the server executed every MVM exactly once (the retries were answered from its cache)
    assert stats["executed"]["MVM"] == N_MVM
    assert stats["executed"]["MVM_VECTORS"] == int((inputs.sum(axis=-1) > 0).sum())  # vector-planes with an active row
    assert stats["ledger"]["read_cycles"] == clean.stats()["ledger"]["read_cycles"]
    assert stats["replayed"] > 0 and counters["retries"] > 0
    # the faults happened at the rates asked for (frames in each direction ~ N_MVM)
    assert 0.03 * N_MVM < faults["dropped_in"] < 0.08 * N_MVM and 0.03 * N_MVM < faults["dropped_out"] < 0.08 * N_MVM
    assert faults["corrupted_in"] + faults["corrupted_out"] > 0.01 * N_MVM and faults["delayed"] > 0.005 * N_MVM
    print(f"soak: {N_MVM} MVMs in {elapsed:.1f} s; driver {counters}; faults {faults}")
