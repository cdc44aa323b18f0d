#!/usr/bin/python3
"""Expected CUBIC windows for tests/unit/stack/tcp_cubic_test.cpp (and the CUBIC tests of
tcp_script_rto_test.cpp: "Script tests" below), from RFC 9438's formulas alone
(floating point here: this is the independent reference the integer controller is checked
against, never derived from it). Run it and compare with the constants the tests quote:
    /usr/bin/python3 scripts/cubic_expected.py

Units: windows in segments (MSS) unless a line says bytes, time in seconds.

The ACK-clocked model ("cwnd at t") is the RFC's per-ACK rule applied to an idealised sender:
every RTT a full window is acknowledged, one segment per ACK, ACKs evenly spaced (one every
RTT / cwnd), starting when the congestion-avoidance stage starts (the first ACK after recovery,
which is t = 0 of Figure 1). The test drives the controller with exactly this schedule.
"""

import math

C = 0.4  # RFC 9438 4.1: segments / s^3
BETA = 0.7  # beta_cubic
ALPHA = 3 * (1 - BETA) / (1 + BETA)  # 4.3: alpha_cubic = 9/17


def w_cubic(t, w_max, k):
    """Figure 1: W_cubic(t) = C (t - K)^3 + W_max."""
    return C * (t - k) ** 3 + w_max


def k_of(w_max, cwnd_epoch):
    """Figure 2: K = cbrt((W_max - cwnd_epoch) / C)."""
    return math.copysign(abs((w_max - cwnd_epoch) / C) ** (1 / 3), w_max - cwnd_epoch)


class Cubic:
    """RFC 9438 4.2-4.7 for one congestion-avoidance stage after a loss (segments)."""

    def __init__(self, cwnd_before_loss, w_max_before=0.0, flight=None, timeout=False):
        """timeout: the loss was a retransmission timeout (4.8); slow start then brought cwnd
        from one segment back to ssthresh exactly (one-segment ACKs), where the stage starts."""
        self.timeout = timeout
        flight = cwnd_before_loss if flight is None else flight
        # 4.7 fast convergence, then 4.6 multiplicative decrease.
        if cwnd_before_loss < w_max_before:
            self.w_max = cwnd_before_loss * (1 + BETA) / 2
        else:
            self.w_max = cwnd_before_loss
        self.cwnd_prior = cwnd_before_loss
        self.ssthresh = max(flight * BETA, 2)
        self.cwnd = self.ssthresh  # after fast recovery (the engine deflates to ssthresh)
        self.epoch = None

    def ack(self, now, rtt, segments=1.0):
        if self.epoch is None:  # the first ACK of the stage
            self.epoch = now
            if self.timeout or self.w_max <= self.cwnd:  # 4.8: K = 0, W_max = cwnd_epoch
                self.k, self.w_max = 0.0, self.cwnd
            else:
                self.k = k_of(self.w_max, self.cwnd)
            self.w_est = self.cwnd
        t = now - self.epoch
        alpha = 1.0 if self.w_est >= self.cwnd_prior else ALPHA  # 4.3
        self.w_est += alpha * segments / self.cwnd
        if w_cubic(t, self.w_max, self.k) < self.w_est:  # 4.3 Reno-friendly region
            self.cwnd = max(self.cwnd, self.w_est)
            return
        target = min(max(w_cubic(t + rtt, self.w_max, self.k), self.cwnd), 1.5 * self.cwnd)  # 4.2
        self.cwnd += (target - self.cwnd) * segments / self.cwnd  # 4.4 / 4.5


def ack_clocked(model, rtt, sample_times):
    """cwnd (segments) after the last ACK at or before each sample time (seconds since the
    stage's first ACK), ACKs one segment each, one every rtt / cwnd."""
    out, now, pending = [], 0.0, sorted(sample_times)
    model.ack(now, rtt)
    while pending:
        step = rtt / model.cwnd
        if now + step > pending[0]:
            out.append(model.cwnd)
            pending.pop(0)
            continue
        now += step
        model.ack(now, rtt)
    return out


def section(title):
    print()
    print(f"== {title}")


def recovery_trace(smss=1460):
    """tests/unit/stack/tcp_script_rto_test.cpp, CubicRecoveryEndsAtSeventyPercentOfTheFlight:
    scripts/tcp_expected.py's NewReno trace (ten segments S0..S9 in flight, S0 and S3 lost, eight
    duplicate ACKs, ten more segments written after the third) with RFC 9438 4.6's reduction,
    ssthresh = max(FlightSize * beta_cubic, 2 SMSS), in place of RFC 5681's FlightSize / 2; the
    loss recovery around it is RFC 6582's, which RFC 9438 keeps. Bytes, exact fractions."""
    from fractions import Fraction

    beta = Fraction(7, 10)
    una, nxt, unsent, cwnd, dup = 1, 1 + 10 * smss, 0, 10 * smss, 0
    ssthresh = recover = None

    def send_new():
        nonlocal nxt, unsent
        sent = []
        while unsent > 0 and (nxt - una) + smss <= cwnd:
            sent.append(nxt)
            nxt += smss
            unsent -= 1
        return sent

    for _ in range(8):
        dup += 1
        if dup < 3:
            continue
        if dup == 3:
            flight = nxt - una
            ssthresh = max(flight * beta, 2 * smss)  # RFC 9438 4.6
            recover = nxt - 1
            cwnd = ssthresh + 3 * smss  # RFC 5681 3.2 step 3
            print(f"dup 3: retransmit {una}; ssthresh {ssthresh} cwnd {cwnd}")
            unsent += 10
            continue
        cwnd += smss
        print(f"dup {dup}: cwnd {cwnd}; new segments {send_new()}")
    ack = 1 + 3 * smss
    newly, una = ack - una, ack
    cwnd = cwnd - newly + (smss if newly >= smss else 0)  # RFC 6582 3.2 step 5
    print(f"partial ACK {ack}: retransmit {una}; cwnd {cwnd}; new segments {send_new()}")
    una = recover + 1
    flight = nxt - una
    option1 = min(ssthresh, max(flight, smss) + smss)
    cwnd = ssthresh  # RFC 6582 3.2 step 6 (2)
    print(f"full ACK {una}: cwnd {cwnd} (option 1: {option1}); new segments {send_new()}")


def script_tests():
    """The CUBIC counterparts of tcp_script_rto_test.cpp's NewReno tests (SMSS 1460)."""
    from fractions import Fraction

    smss, beta = 1460, Fraction(7, 10)  # exact: these windows are compared byte for byte
    section("Script tests: RTO with 10 segments (14600) in flight (RFC 9438 4.8)")
    print("ssthresh", max(14600 * beta, 2 * smss), "cwnd (LW)", smss,
          "after the first ACK (slow start)", smss + min(smss, 2 * smss))  # 10220, 1460, 2920
    section("Script tests: fast retransmit with 3 segments (4380) in flight (RFC 9438 4.6)")
    ssthresh = max(4380 * beta, 2 * smss)
    print(f"ssthresh {ssthresh} cwnd {ssthresh + 3 * smss}")  # 3066, 7446
    section("Script tests: the NewReno trace with CUBIC's reduction")
    recovery_trace(smss)


def main():
    mss = 1460

    section("W_max = 100 MSS, loss (flight = cwnd = 100), RTT 100 ms, MSS 1460")
    k = k_of(100, 70)
    print(f"K = cbrt(30 / 0.4) = {k:.6f} s")  # 4.217163
    times = [0, k / 2, k, 2 * k]
    model = Cubic(100)
    cw = ack_clocked(model, 0.100, times)
    for name, t, w in zip(["0", "K/2", "K", "2K"], times, cw):
        print(
            f"t = {name:>3} ({t:.4f} s): W_cubic(t) = {w_cubic(t, 100, k):9.4f} MSS;"
            f" ACK-clocked cwnd = {w:9.4f} MSS = {w * mss:10.1f} bytes"
        )
    # 70.0076, 96.2273, 99.9992, 130.0510: the per-ACK rule keeps cwnd within 0.05 % of the
    # curve here (it aims at W_cubic(t + RTT) but closes only part of the gap per window)

    section("Reno-friendly region: W_max = 10 MSS, RTT 1 ms, 100 ms into the stage")
    model = Cubic(10)
    (cw,) = ack_clocked(model, 0.001, [0.100])
    k = k_of(10, 7)
    print(f"K = {k:.6f} s; W_cubic(0.1) = {w_cubic(0.1, 10, k):.4f} MSS")
    print(f"ACK-clocked cwnd = {cw:.4f} MSS = {cw * mss:.1f} bytes")
    # ~104 MSS: Reno's one segment per RTT once W_est passes cwnd_prior, far above W_cubic

    section("Fast convergence: loss at 100 MSS, then again at 80 (< W_max)")
    first = Cubic(100)
    second = Cubic(80, w_max_before=first.w_max)
    print(f"W_max = 80 * (1 + 0.7) / 2 = {second.w_max:.4f} MSS; ssthresh = {second.ssthresh:.4f}")
    print(f"K = cbrt(({second.w_max:g} - {second.ssthresh:g}) / 0.4) = {k_of(second.w_max, second.ssthresh):.6f} s")
    # W_max 68, ssthresh 56, K = cbrt(30) = 3.107233 s

    section("Timeout at cwnd = flight = 100 MSS, RTT 100 ms; slow start back to ssthresh = 70")
    model = Cubic(100, timeout=True)
    times = [2.0, 5.0]
    cw = ack_clocked(model, 0.100, times)
    for t, w in zip(times, cw):
        print(
            f"t = {t} s: W_cubic = 70 + 0.4 t^3 = {w_cubic(t, 70, 0):8.4f} MSS;"
            f" ACK-clocked cwnd = {w:8.4f} MSS = {w * mss:10.1f} bytes"
        )
    # 2 s: Reno-friendly (W_est ~ 70 + 20 * 9/17 > 73.2); 5 s: the convex curve, 120 MSS

    script_tests()


if __name__ == "__main__":
    main()
