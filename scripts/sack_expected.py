#!/usr/bin/python3
"""Expected sender decisions for the SACK script tests (tests/unit/stack/tcp_sack_test.cpp),
computed from RFC 6675 alone, never from our engine. Run it and compare with the constants the
tests quote:  /usr/bin/python3 scripts/sack_expected.py

A direct transcription of RFC 6675 (Conservative Loss Recovery Based on SACK): the scoreboard's
Update() (section 4: every octet a SACK block covers is SACKed), IsLost(), SetPipe() and
NextSeg() (section 4), the per-ACK algorithm of section 5 (DupAcks, steps (1)-(4), (A)-(C)),
octet by octet, as the RFC words them. Sequence numbers are relative: the first data octet is 1,
so segment k of 1460 octets is [1 + 1460 k, 1 + 1460 (k + 1)) -- the numbers the script tests
use (relative to our ISN). Ranges below are half-open [first, end).

RFC 6675 leaves three readings open; the scenarios are chosen so that none of them matters, and
the script checks that by running every scenario under each reading and comparing the traces:
  - IsLost's "DupThresh discontiguous SACKed sequences": counted as maximal SACKed ranges or as
    SACKed segments (with whole-segment SACKs of 1460 octets both agree with the byte rule:
    three segments = 4380 > (DupThresh - 1) * SMSS = 2920);
  - (4.2) ssthresh = cwnd = FlightSize / 2, which RFC 5681 (4) floors at 2 SMSS (equal here);
  - what ends recovery: (A) "a cumulative ACK for a sequence number greater than RecoveryPoint"
    (RecoveryPoint = HighData, the last octet sent: an ACK field of HighData + 1).
"""

import itertools

SMSS = 1460
DUP_THRESH = 3


def seg(k, smss=SMSS):
    """Segment k as a half-open octet range."""
    return (1 + smss * k, 1 + smss * (k + 1))


def rng(a, b):
    """Segments a..b inclusive as one range."""
    return (seg(a)[0], seg(b)[1])


def name(r, smss=SMSS):
    a, b = r
    if (a - 1) % smss == 0 and (b - a) == smss:
        return f"S{(a - 1) // smss} [{a},{b})"
    return f"[{a},{b})"


class Sender:
    """RFC 6675 sender state. Variables as in the RFC's section 2:
    HighACK: the highest octet cumulatively ACKed (ACK field - 1);
    HighData: the highest octet sent; HighRxt: the highest octet retransmitted;
    RescueRxt, RecoveryPoint, DupAcks, pipe, cwnd, ssthresh."""

    def __init__(self, flight_segments, window=65535, reading="ranges"):
        self.reading = reading
        self.high_ack = 0
        self.high_data = flight_segments * SMSS  # the initial window, all sent
        self.queued_end = self.high_data  # application data: octets [1, queued_end]
        self.sacked = set()
        self.high_rxt = 0
        self.rescue_rxt = None  # undefined
        self.recovery_point = None
        self.in_recovery = False
        self.dup_acks = 0
        self.cwnd = flight_segments * SMSS  # RFC 6928 IW of 10 segments here
        self.ssthresh = 1 << 30
        self.pipe = 0
        self.window = window
        self.sent = []  # (range, why) of this event

    # --- section 4: the scoreboard routines ---------------------------------------------------

    def update(self, blocks):
        """Update(): mark every octet of every block SACKed (blocks are valid ones here)."""
        for a, b in blocks:
            for o in range(a, b):
                if self.high_ack < o <= self.high_data:
                    self.sacked.add(o)

    def _sacked_above(self, seq):
        return [o for o in self.sacked if o > seq]

    def _discontiguous_above(self, seq):
        above = sorted(self._sacked_above(seq))
        if self.reading == "segments":  # SACKed segments (1460-octet units) above seq
            return len({(o - 1) // SMSS for o in above})
        ranges = 0  # maximal SACKed ranges above seq
        prev = None
        for o in above:
            if prev is None or o != prev + 1:
                ranges += 1
            prev = o
        return ranges

    def is_lost(self, seq):
        """IsLost(SeqNum): DupThresh discontiguous SACKed sequences above SeqNum, or more than
        (DupThresh - 1) * SMSS SACKed octets above it."""
        return (self._discontiguous_above(seq) >= DUP_THRESH or
                len(self._sacked_above(seq)) > (DUP_THRESH - 1) * SMSS)

    def set_pipe(self):
        """SetPipe(): for each octet from HighACK + 1 to HighData not SACKed: (a) +1 unless
        IsLost; (b) +1 if at or below HighRxt."""
        # IsLost per octet from the SACKed octets above it: computed from the top down (the
        # same predicate as is_lost, without its quadratic cost).
        pipe = 0
        above_bytes = 0
        above_segments = set()
        above_ranges = 0
        for o in range(self.high_data, self.high_ack, -1):
            if o in self.sacked:
                if o + 1 not in self.sacked:
                    above_ranges += 1  # a new maximal range starts (seen from the top)
                above_bytes += 1
                above_segments.add((o - 1) // SMSS)
                continue
            disc = above_ranges if self.reading == "ranges" else len(above_segments)
            lost = disc >= DUP_THRESH or above_bytes > (DUP_THRESH - 1) * SMSS
            if not lost:
                pipe += 1
            if o <= self.high_rxt:
                pipe += 1
        self.pipe = pipe
        return pipe

    def highest_sacked(self):
        return max(self.sacked) if self.sacked else None

    def next_seg(self):
        """NextSeg(): the rules (1)-(4), as (range, rule) or None."""
        hs = self.highest_sacked()
        # (1) the smallest unSACKed S2 > HighRxt, < the highest SACKed octet, IsLost(S2).
        if hs is not None:
            for s2 in range(max(self.high_rxt, self.high_ack) + 1, hs):
                if s2 not in self.sacked and self.is_lost(s2):
                    return (s2, min(s2 + SMSS, self.high_data + 1)), 1
        # (2) new data, if the application has some and the receiver's window allows.
        if self.queued_end > self.high_data:
            end = min(self.high_data + 1 + SMSS, self.queued_end + 1)
            if end - 1 <= self.high_ack + self.window:
                return (self.high_data + 1, end), 2
        # (3) as (1) without (1.c).
        if hs is not None:
            for s3 in range(max(self.high_rxt, self.high_ack) + 1, hs):
                if s3 not in self.sacked:
                    return (s3, min(s3 + SMSS, self.high_data + 1)), 3
        # (4) one rescue retransmission per recovery: SMSS octets that include the highest
        # outstanding unSACKed octet, if HighACK > RescueRxt (or it is undefined).
        unsacked = [o for o in range(self.high_ack + 1, self.high_data + 1)
                    if o not in self.sacked]
        if unsacked and (self.rescue_rxt is None or self.high_ack > self.rescue_rxt):
            top = unsacked[-1]
            return (max(top - SMSS + 1, self.high_ack + 1), top + 1), 4
        return None

    # --- section 5 ----------------------------------------------------------------------------

    def flight_size(self):
        return self.high_data - self.high_ack

    def _send(self, r, why):
        self.sent.append((r, why))

    def step_c(self):
        """(C): while cwnd - pipe >= 1 SMSS, NextSeg and send."""
        while self.cwnd - self.pipe >= SMSS:
            n = self.next_seg()
            if n is None:
                return
            (a, b), rule = n
            if a <= self.high_data and rule != 4:
                self.high_rxt = max(self.high_rxt, min(b - 1, self.high_data))  # (C.2)
            if rule == 4:
                self.rescue_rxt = self.recovery_point
            if b - 1 > self.high_data:
                self.high_data = b - 1  # (C.3)
            self.pipe += b - a  # (C.4)
            self._send((a, b), f"NextSeg rule {rule}" + (" (new data)" if rule == 2 else ""))

    def enter_recovery(self):
        """Step (4)."""
        self.recovery_point = self.high_data  # (4.1)
        self.ssthresh = self.cwnd = max(self.flight_size() // 2, 2 * SMSS)  # (4.2), RFC 5681 (4)
        first = (self.high_ack + 1, min(self.high_ack + 1 + SMSS, self.high_data + 1))
        self._send(first, "fast retransmit (4.3)")
        self.high_rxt = self.rescue_rxt = first[1] - 1  # (4.3)
        self.in_recovery = True
        self.set_pipe()  # (4.4)
        self.step_c()  # (4.5)

    def write(self, n):
        """The application queues n more octets (sent when pipe/cwnd allow: by an ACK here)."""
        self.queued_end += n

    def ack(self, cum, blocks):
        """One arriving ACK: the ACK field `cum` (relative) and its SACK blocks."""
        self.sent = []
        before = set(self.sacked)
        cumulative = cum - 1 > self.high_ack
        if cumulative:
            acked = cum - 1 - self.high_ack
            self.high_ack = cum - 1
            self.sacked = {o for o in self.sacked if o > self.high_ack}
        self.update(blocks)
        # Section 2: a duplicate ACK carries a SACK block that identifies previously
        # unacknowledged and un-SACKed octets between HighACK and HighData.
        duplicate = bool(self.sacked - before)
        if cumulative:
            self.dup_acks = 0  # section 5: a cumulative ACK resets DupAcks
        if self.in_recovery:
            if self.high_ack >= self.recovery_point:  # (A)
                self.in_recovery = False
                self.cwnd = self.ssthresh  # RFC 5681 3.2 (6): cwnd = ssthresh after recovery
                self.dup_acks = 0
                self._send_normally()
                return
            self.set_pipe()  # (B)
            self.step_c()  # (C)
            return
        if duplicate:
            self.dup_acks += 1
            if self.dup_acks >= DUP_THRESH or self.is_lost(self.high_ack + 1):  # (1), (2)
                self.enter_recovery()
                return
            # (3) limited transmit, governed by pipe.
            self.high_rxt = self.high_ack  # (3.1)
            while True:
                self.set_pipe()  # (3.2)
                if self.cwnd - self.pipe >= SMSS and self.queued_end > self.high_data:  # (3.3)
                    end = min(self.high_data + 1 + SMSS, self.queued_end + 1)
                    self._send((self.high_data + 1, end), "limited transmit (3.3)")
                    self.high_data = end - 1
                    continue
                return
        if cumulative:
            # Slow start, RFC 5681 (2): cwnd += min(N, SMSS). Only the overlap scenario gets here
            # (ACK 2921): its test asserts nothing on cwnd (the engine takes RFC 3465's L = 2
            # SMSS), and the reduction that follows depends on FlightSize alone.
            self.cwnd += min(acked, SMSS)
            self._send_normally()

    def _send_normally(self):
        """Outside recovery: new data while FlightSize < cwnd (RFC 5681)."""
        while self.queued_end > self.high_data:
            end = min(self.high_data + 1 + SMSS, self.queued_end + 1)
            if end - 1 - self.high_ack > self.cwnd:
                return
            self._send((self.high_data + 1, end), "new data")
            self.high_data = end - 1


# --- the scenarios (the script tests follow them ACK by ACK) ------------------------------------

def scenario_basic(s):
    """TcpSack.RecoveryFollowsRfc6675: ten segments S0..S9 in flight, S0 and S3 lost; one ACK per
    arriving segment; the application writes ten more segments once recovery has begun."""
    yield "ACK 1 <S1>", lambda: s.ack(1, [seg(1)])
    yield "ACK 1 <S1-S2>", lambda: s.ack(1, [rng(1, 2)])
    yield "ACK 1 <S4, S1-S2>", lambda: s.ack(1, [seg(4), rng(1, 2)])
    yield "write 14600", lambda: s.write(14600)
    yield "ACK 1 <S4-S5, S1-S2>", lambda: s.ack(1, [rng(4, 5), rng(1, 2)])
    yield "ACK 1 <S4-S6, S1-S2>", lambda: s.ack(1, [rng(4, 6), rng(1, 2)])
    yield "ACK 1 <S4-S7, S1-S2>", lambda: s.ack(1, [rng(4, 7), rng(1, 2)])
    yield "ACK 1 <S4-S8, S1-S2>", lambda: s.ack(1, [rng(4, 8), rng(1, 2)])
    yield "ACK 1 <S4-S9, S1-S2>", lambda: s.ack(1, [rng(4, 9), rng(1, 2)])
    yield "ACK 4381 <S4-S9> (S0's retransmission arrived)", lambda: s.ack(4381, [rng(4, 9)])
    yield "ACK 14601 (S3's retransmission arrived)", lambda: s.ack(14601, [])


def scenario_is_lost(s):
    """TcpSack.IsLostEntersRecoveryBeforeThreeDuplicates: S0 lost; the ACKs of S1 and S2 come as
    one (2920 SACKed octets: not lost), then one ACK SACKs S1-S3 (4380 > 2920: IsLost(HighACK + 1)
    at the second duplicate, RFC 6675 5 step (2))."""
    yield "ACK 1 <S1-S2>", lambda: s.ack(1, [rng(1, 2)])
    yield "ACK 1 <S1-S3>", lambda: s.ack(1, [rng(1, 3)])
    yield "ACK 14601", lambda: s.ack(14601, [])


def scenario_holes(s):
    """TcpSack.NextSegRetransmitsHolesBeforeNewData: S0, S2 and S4 lost, twenty segments written
    (ten in flight); the first ACK the sender sees SACKs S1, S3 and S5-S9 at once."""
    yield "write 14600", lambda: s.write(14600)
    yield "ACK 1 <S5-S9, S3, S1>", lambda: s.ack(1, [rng(5, 9), seg(3), seg(1)])
    yield "ACK 2921 <S3, S5-S9> (S0 arrived)", lambda: s.ack(2921, [seg(3), rng(5, 9)])
    yield "ACK 5841 <S5-S9> (S2 arrived)", lambda: s.ack(5841, [rng(5, 9)])
    yield "ACK 14601 (S4 arrived)", lambda: s.ack(14601, [])


def scenario_rule3(s):
    """TcpSack.NextSegRule3RetransmitsAnUnsackedHole: S0 and S5 lost, nothing more to send."""
    yield "ACK 1 <S1>", lambda: s.ack(1, [seg(1)])
    yield "ACK 1 <S1-S2>", lambda: s.ack(1, [rng(1, 2)])
    yield "ACK 1 <S1-S3>", lambda: s.ack(1, [rng(1, 3)])
    yield "ACK 1 <S1-S4>", lambda: s.ack(1, [rng(1, 4)])
    yield "ACK 1 <S6, S1-S4>", lambda: s.ack(1, [seg(6), rng(1, 4)])
    yield "ACK 1 <S6-S7, S1-S4>", lambda: s.ack(1, [rng(6, 7), rng(1, 4)])
    yield "ACK 1 <S6-S8, S1-S4>", lambda: s.ack(1, [rng(6, 8), rng(1, 4)])
    yield "ACK 1 <S6-S9, S1-S4>", lambda: s.ack(1, [rng(6, 9), rng(1, 4)])
    yield "ACK 14601 (both retransmissions arrived)", lambda: s.ack(14601, [])


def scenario_rule2(s):
    """TcpSack.NextSegPrefersNewDataToRule3: the same losses as scenario_rule3, but the
    application writes ten more segments once recovery has begun."""
    yield "ACK 1 <S1>", lambda: s.ack(1, [seg(1)])
    yield "ACK 1 <S1-S2>", lambda: s.ack(1, [rng(1, 2)])
    yield "ACK 1 <S1-S3>", lambda: s.ack(1, [rng(1, 3)])
    yield "write 14600", lambda: s.write(14600)
    yield "ACK 1 <S1-S4>", lambda: s.ack(1, [rng(1, 4)])
    yield "ACK 1 <S6, S1-S4>", lambda: s.ack(1, [seg(6), rng(1, 4)])
    yield "ACK 1 <S6-S7, S1-S4>", lambda: s.ack(1, [rng(6, 7), rng(1, 4)])
    yield "ACK 1 <S6-S8, S1-S4>", lambda: s.ack(1, [rng(6, 8), rng(1, 4)])
    yield "ACK 1 <S6-S9, S1-S4>", lambda: s.ack(1, [rng(6, 9), rng(1, 4)])


def scenario_rescue(s):
    """TcpSack.RescueRetransmitsTheTailOnAPartialAck: S0 and S9 (the tail) lost, nothing more to
    send: no SACK ever arrives above S9."""
    yield "ACK 1 <S1>", lambda: s.ack(1, [seg(1)])
    yield "ACK 1 <S1-S2>", lambda: s.ack(1, [rng(1, 2)])
    yield "ACK 1 <S1-S3>", lambda: s.ack(1, [rng(1, 3)])
    for k in range(4, 9):
        yield f"ACK 1 <S1-S{k}>", (lambda k=k: s.ack(1, [rng(1, k)]))
    yield "ACK 13141 (S0 arrived; S9 lost)", lambda: s.ack(13141, [])
    yield "ACK 14601", lambda: s.ack(14601, [])


def scenario_overlap(s):
    """TcpSack.OverlappingAndRepeatedBlocksCountOnce: S0-S1 cumulatively ACKed first (ACK 2921);
    then blocks [5841,7301) [6571,8031) [6571,8031): their union is 2190 octets (not lost; counted
    three times it would be 4380 and IsLost(2921) would fire); then [4381,5841) joins them
    (3650 SACKed octets above 2920 > 2920: IsLost(SND.UNA) fires at the second duplicate)."""
    yield "ACK 2921", lambda: s.ack(2921, [])
    yield "ACK 2921 <[5841,7301) [6571,8031) [6571,8031)>", \
        lambda: s.ack(2921, [(5841, 7301), (6571, 8031), (6571, 8031)])
    yield "ACK 2921 <[4381,5841) [5841,8031)>", lambda: s.ack(2921, [(4381, 5841), (5841, 8031)])


SCENARIOS = [
    ("RecoveryFollowsRfc6675", scenario_basic, 10),
    ("IsLostEntersRecoveryBeforeThreeDuplicates", scenario_is_lost, 10),
    ("NextSegRetransmitsHolesBeforeNewData", scenario_holes, 10),
    ("NextSegRule3RetransmitsAnUnsackedHole", scenario_rule3, 10),
    ("NextSegPrefersNewDataToRule3", scenario_rule2, 10),
    ("RescueRetransmitsTheTailOnAPartialAck", scenario_rescue, 10),
    ("OverlappingAndRepeatedBlocksCountOnce", scenario_overlap, 10),
]


def run(scenario, flight, reading, out):
    s = Sender(flight, reading=reading)
    trace = []
    for label, event in scenario(s):
        event()
        sent = [(r, why) for r, why in s.sent] if label.startswith("ACK") else []
        trace.append((label, tuple(r for r, _ in sent), s.pipe if s.in_recovery else None,
                      s.cwnd, s.ssthresh, s.in_recovery, len(s.sacked)))
        if out:
            if label.startswith("ACK"):
                what = ", ".join(f"{name(r)} ({why})" for r, why in sent) or "nothing"
                state = (f"in recovery: pipe {s.pipe}, cwnd {s.cwnd}, ssthresh {s.ssthresh}, "
                         f"HighRxt {s.high_rxt}" if s.in_recovery else
                         f"not in recovery: cwnd {s.cwnd}" +
                         (f", ssthresh {s.ssthresh}" if s.ssthresh < (1 << 30) else ""))
                print(f"  {label}\n      sends: {what}\n      {state}; SACKed octets above "
                      f"SND.UNA: {len(s.sacked)}")
            else:
                print(f"  {label}")
    return trace


def main():
    print(__doc__.split("\n")[0])
    for title, scenario, flight in SCENARIOS:
        print()
        print(f"== TcpSack.{title} ==")
        print("   " + scenario.__doc__.replace("\n", "\n   "))
        reference = run(scenario, flight, "ranges", True)
        for reading in ("segments",):
            other = run(scenario, flight, reading, False)
            assert other == reference, f"{title}: the '{reading}' reading of IsLost differs"
        print("  (the same trace with IsLost counting SACKed segments instead of ranges)")

    print()
    print("== TcpSack.ThirdDuplicateEntersRecoveryWithSmallSegments ==")
    print("   Five 100-octet segments (Nagle off), S0 lost; the ACKs SACK S1, S1-S2, S1-S3.")
    print("   SACKed octets above HighACK: 100, 200, 300 -- never more than 2 * SMSS = 2920, so")
    print("   IsLost(HighACK + 1) is false (byte rule; three segments but one contiguous range:")
    print("   the readings differ here, which is why only the entry is asserted). DupAcks")
    print("   reaches 3 at the third ACK: step (1) enters recovery; (4.3) retransmits from")
    print("   HighACK + 1 = 1: at least the hole [1,101), at most SMSS octets capped at HighData")
    print("   ([1,501)). Not before the third ACK.")


if __name__ == "__main__":
    main()
