#!/usr/bin/python3
"""Expected values for the scripted TCP tests (tests/unit/stack/tcp_script_*_test.cpp), computed
from the RFC formulas alone, never from our engine. Run it and compare with the constants the
tests quote:  /usr/bin/python3 scripts/tcp_expected.py

Units: milliseconds and bytes. Exact rational arithmetic (fractions), so every value printed is
what the formula gives; where an engine's integer arithmetic could round, the tests allow 1 ms.
"""

from fractions import Fraction as F

G = F(1)  # clock granularity: the stack's timer wheel ticks at 1 ms
K = 4  # RFC 6298 2.3
ALPHA, BETA = F(1, 8), F(1, 4)


class Rto:
    """RFC 6298: SRTT, RTTVAR and RTO, with backoff (5.5) and Karn's rule (3)."""

    def __init__(self, rto_min=200, rto_max=60000, rto_initial=1000):
        self.rto_min, self.rto_max = F(rto_min), F(rto_max)
        self.srtt = None
        self.rttvar = None
        self.rto = F(rto_initial)  # 2.1

    def _bound(self, v):
        return min(max(v, self.rto_min), self.rto_max)  # 2.4, 2.5

    def sample(self, r):
        r = F(r)
        if self.srtt is None:  # 2.2
            self.srtt, self.rttvar = r, r / 2
        else:  # 2.3: RTTVAR first, with the old SRTT
            self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - r)
            self.srtt = (1 - ALPHA) * self.srtt + ALPHA * r
        self.rto = self._bound(self.srtt + max(G, K * self.rttvar))
        return self.rto

    def backoff(self):
        self.rto = min(self.rto * 2, self.rto_max)  # 5.5 (bounded by the maximum, 2.5)
        return self.rto


def ms(v):
    return f"{float(v):g}"


def retransmit_times(first_rto, retries, rto_max, start=0):
    """Send at `start`; RTO expiries with doubling. Returns (retransmission times, failure time):
    `retries` retransmissions, and the connection fails when the next one is due."""
    times, t, rto = [], F(start), F(first_rto)
    for _ in range(retries):
        t += rto
        times.append(t)
        rto = min(rto * 2, F(rto_max))
    return times, t + rto


def section(title):
    print()
    print(f"== {title}")


def main():
    section("RFC 6298 first sample R=100 (handshake RTT 100 ms)")
    r = Rto()
    print("RTO", ms(r.sample(100)), "SRTT", ms(r.srtt), "RTTVAR", ms(r.rttvar))
    # -> RTO 300 SRTT 100 RTTVAR 50

    section("RFC 6298 R=100 then R=60")
    r = Rto()
    r.sample(100)
    print("RTO", ms(r.sample(60)), "SRTT", ms(r.srtt), "RTTVAR", ms(r.rttvar))
    # -> RTO 285 SRTT 95 RTTVAR 47.5

    section("RFC 6298 R=10: below the 200 ms minimum")
    r = Rto()
    print("RTO", ms(r.sample(10)))  # 10 + 4*5 = 30 -> 200

    section("Backoff from RTO 300, rto_max 60 s: data_retries=3 (send at 0)")
    times, fail = retransmit_times(300, 3, 60000)
    print("retransmissions", [ms(t) for t in times], "fails at", ms(fail))
    # -> [300, 900, 2100] fails at 4500

    section("Backoff from RTO 300, rto_max 1000 ms (send at 0), 4 retransmissions")
    times, fail = retransmit_times(300, 4, 1000)
    print("retransmissions", [ms(t) for t in times])
    # -> [300, 900, 1900, 2900]

    section("SYN: rto_initial 1 s, syn_retries 3 (SYN at 0)")
    times, fail = retransmit_times(1000, 3, 60000)
    print("SYN retransmissions", [ms(t) for t in times], "connect fails at", ms(fail))
    # -> [1000, 3000, 7000] fails at 15000

    section("SYN-ACK: rto_initial 1 s, synack_retries 2 (SYN-ACK at 0)")
    times, fail = retransmit_times(1000, 2, 60000)
    print("SYN-ACK retransmissions", [ms(t) for t in times], "half-open dropped at", ms(fail))
    # -> [1000, 3000] dropped at 7000

    section("Karn: R=100, data at 100 retransmitted at 400, ACKed at 450 (no sample)")
    r = Rto()
    r.sample(100)
    r.backoff()
    print("SRTT", ms(r.srtt), "backed-off RTO kept for new data:", ms(r.rto))
    # -> SRTT 100, RTO 600: new data sent at 450 is retransmitted at 1050

    section("Zero-window probes: RTO 300, doubling, rto_max 60 s (intervals)")
    rto, iv = F(300), []
    for _ in range(12):
        iv.append(rto)
        rto = min(rto * 2, F(60000))
    print("intervals", [ms(v) for v in iv])

    section("RFC 6928 initial window: min(10*MSS, max(2*MSS, 14600))")
    for mss in (1460, 1448, 536, 500, 64, 8960):
        print("MSS", mss, "IW", min(10 * mss, max(2 * mss, 14600)))

    section("RFC 7323 2.3 window scale: smallest s with buffer >> s <= 65535")
    for buf in (65535, 65536, 131072, 262144, 1 << 20, 1 << 30):
        s = 0
        while (buf >> s) > 65535:
            s += 1
        print("receive buffer", buf, "shift", min(s, 14))

    section("RFC 5681 3.1 slow start: IW 14600, ten ACKs of one MSS each")
    cwnd = 14600
    for _ in range(10):
        cwnd += min(1460, 1460)
    print("cwnd", cwnd)  # 29200

    section("RFC 3465 2.2 slow start with L = 2 SMSS: IW 14600, one stretch ACK of 4 MSS")
    cwnd = 14600 + min(4 * 1460, 2 * 1460)
    print("cwnd", cwnd, "segments allowed", cwnd // 1460, "in flight after the ACK", 10 - 4)
    # 17520: 12 allowed, 6 in flight -> 6 new segments

    section("RFC 5681 3.1 RTO: 10 segments (14600) in flight")
    print("ssthresh", max(14600 // 2, 2 * 1460), "cwnd (LW)", 1460)

    section("RFC 5681 3.2 fast retransmit with 3 segments (4380) in flight")
    ssthresh = max(4380 // 2, 2 * 1460)
    print("ssthresh", ssthresh, "cwnd", ssthresh + 3 * 1460)  # 2920, 7300

    newreno()


def newreno():
    """RFC 5681 3.2 + RFC 6582 3.2, SMSS 1460. Ten segments S0..S9 (rel seq 1 + 1460 i) in
    flight; S0 and S3 are lost; the peer acknowledges the other eight with duplicate ACKs. After
    the third, the application writes ten more segments."""
    section("NewReno trace (SMSS 1460, S0 and S3 lost)")
    smss = 1460
    una, nxt = 1, 1 + 10 * smss
    unsent = 0
    cwnd = 14600
    dup = 0
    ssthresh = recover = None
    log = []

    def send_new():
        nonlocal nxt, unsent
        sent = []
        while unsent > 0 and (nxt - una) + smss <= cwnd:
            sent.append(nxt)
            nxt += smss
            unsent -= 1
        return sent

    for _ in range(8):  # duplicate ACKs for S1, S2, S4..S9
        dup += 1
        if dup < 3:
            log.append(f"dup {dup}: nothing (no unsent data: limited transmit has nothing)")
            continue
        if dup == 3:
            flight = nxt - una
            ssthresh = max(flight // 2, 2 * smss)  # RFC 5681 (4)
            recover = nxt - 1  # RFC 6582 3.2 step 2: highest sequence number sent
            cwnd = ssthresh + 3 * smss  # RFC 5681 3.2 step 3
            log.append(f"dup 3: retransmit seq {una}; ssthresh {ssthresh} cwnd {cwnd} "
                       f"recover {recover}")
            unsent += 10  # the application writes ten more segments now
            continue
        cwnd += smss  # step 4: inflate
        log.append(f"dup {dup}: cwnd {cwnd}; new segments {send_new()}")
    # The retransmitted S0 arrives: cumulative ACK up to S3 (a partial ACK: below recover+1).
    ack = 1 + 3 * smss
    newly = ack - una
    una = ack
    cwnd = cwnd - newly + (smss if newly >= smss else 0)  # RFC 6582 3.2 step 5
    log.append(f"partial ACK {ack}: retransmit seq {una}; cwnd {cwnd}; new segments "
               f"{send_new()}")
    # The retransmitted S3 arrives: ACK of everything up to recover (a full ACK).
    ack = recover + 1
    una = ack
    flight = nxt - una
    option1 = min(ssthresh, max(flight, smss) + smss)
    cwnd = ssthresh  # RFC 6582 3.2 step 6, option (2); option (1) gives the same here
    log.append(f"full ACK {ack}: flight {flight}; cwnd {cwnd} (option 1: {option1}); "
               f"new segments {send_new()}")
    for line in log:
        print(line)


if __name__ == "__main__":
    main()
