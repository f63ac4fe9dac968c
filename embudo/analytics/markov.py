"""First-order Markov-chain attribution, exact: removal effects from the absorbing chain's
fundamental matrix, not from simulated paths.

States: ``start``, one per channel (or campaign), then the absorbing ``conversion`` and ``null``.
Every journey is a path start → s1 → … → sn → conversion (or null). With ``N = (I - Q)⁻¹`` the
fundamental matrix of the transient part, ``x = N r`` the probability of converting from each
state and ``h_k = N[start, k] / N[k, k]`` the probability of ever reaching ``k`` from the start,
removing ``k`` (sending every visit to it to null) leaves ``x_start - h_k x_k`` (the strong
Markov property at the first visit to ``k``), so the removal effect is ``h_k x_k / x_start``.
One inverse serves every state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MarkovChain:
    """Transition counts between ``start`` (0), the states (1…k), conversion (k+1) and null
    (k+2), with the revenue that ended in conversion from each state."""

    counts: FloatArray  # (k+3, k+3)
    value_out: FloatArray  # (k+1,): revenue of converting journeys whose last state is i

    @property
    def states(self) -> int:
        return self.counts.shape[0] - 3


@dataclass(frozen=True)
class RemovalEffects:
    conversion_probability: float  # P(conversion) from the start
    conversion: FloatArray  # per state: 1 - P(conversion without it) / P(conversion)
    value: FloatArray  # the same for the expected revenue


def count_transitions(
    journey: IntArray,
    state: IntArray,
    converted: npt.NDArray[np.bool_],
    value: FloatArray,
    states: int,
) -> MarkovChain:
    """The chain of a set of paths, counted in one pass over all their steps.

    ``journey`` and ``state`` run over every step of every path (grouped by journey, in order);
    ``converted`` and ``value`` over the journeys. States are 0…states-1.
    """
    size = states + 3
    conversion, null = states + 1, states + 2
    n = journey.size
    counts = np.zeros(size * size, dtype=np.float64)
    if n:
        target = state + 1
        last = np.ones(n, dtype=bool)
        last[:-1] = journey[1:] != journey[:-1]
        first = np.ones(n, dtype=bool)
        first[1:] = last[:-1]
        following = np.empty(n, dtype=np.int64)
        following[:-1] = target[1:]
        following[last] = np.where(converted[journey[last]], conversion, null)
        counts += np.bincount(target * size + following, minlength=size * size)
        # Row 0 of the matrix: start → each journey's first state.
        counts[:size] += np.bincount(target[first], minlength=size)
        ended = journey[last]
        value_out = np.bincount(
            target[last],
            weights=np.where(converted[ended], value[ended], 0.0),
            minlength=states + 1,
        ).astype(np.float64)
    else:
        value_out = np.zeros(states + 1)
    return MarkovChain(counts.reshape(size, size), value_out[: states + 1])


def removal_effects(chain: MarkovChain) -> RemovalEffects:
    """Every state's removal effect, for conversions and for revenue, solved exactly."""
    k = chain.states
    transient = k + 1
    out = chain.counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        probabilities = np.where(out[:, None] > 0, chain.counts / out[:, None], 0.0)
        value_rate = np.where(out[:transient] > 0, chain.value_out / out[:transient], 0.0)
    q = probabilities[:transient, :transient]
    r = probabilities[:transient, k + 1]
    fundamental = np.linalg.inv(np.eye(transient) - q)
    x = fundamental @ r
    xv = fundamental @ value_rate
    diagonal = np.diag(fundamental)[1:]
    reach = fundamental[0, 1:] / diagonal  # P(ever visiting state i from the start)
    p = float(x[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        conversion = np.where(p > 0, reach * x[1:] / p, 0.0)
        value = np.where(xv[0] > 0, reach * xv[1:] / xv[0], 0.0)
    return RemovalEffects(p, np.clip(conversion, 0.0, 1.0), np.clip(value, 0.0, 1.0))


def shares(effects: FloatArray) -> FloatArray:
    """Removal effects normalised to sum to 1 (all zero when nothing converted)."""
    total = effects.sum()
    return effects / total if total > 0 else np.zeros_like(effects)
