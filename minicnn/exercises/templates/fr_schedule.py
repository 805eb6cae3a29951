"""Exercise fr_schedule: Frequency Regularization's dynamic tail truncation.

Rather than cutting most DCT coefficients at once, the kept count k falls a
little at every step t = 0, 1, ..., T from k0 to the target kT:

    linear:     k(t) = k0 + (kT - k0) * t / T
    geometric:  k(t) = k0 * (kT / k0) ** (t / T)   (cuts most while k is big)

rounded to the NEAREST integer (Python's round), clamped to kT <= k <= k0,
and k(t) = kT for every t >= T (the schedule ends there).

Check your file with:  minicnn exercise check fr_schedule
"""


def kept_count(t, steps, k0, k_target, decay="linear"):
    """The kept count (an int) after t steps of a `steps`-step schedule.

    >>> [kept_count(t, 4, 100, 20) for t in range(6)]
    [100, 80, 60, 40, 20, 20]
    >>> kept_count(1, 2, 100, 1, "geometric")
    10
    """
    # BEGIN SOLUTION
    frac = min(max(t, 0), steps) / steps
    if frac >= 1:
        return k_target
    if decay == "linear":
        k = k0 + (k_target - k0) * frac
    else:
        k = k0 * (max(k_target, 1) / max(k0, 1)) ** frac
    return int(min(k0, max(k_target, round(k))))
    # END SOLUTION
