"""Task grouping from an affinity matrix: exhaustive search, ties, the greedy fallback."""

import itertools

import numpy as np
import pytest

from mtl_tf.analysis.grouping import group_score, partitions, recommend_groups, stirling2

NAMES = ["a", "b", "c", "d"]


def crafted():
    """a and b help each other, c and d help each other, the pairs hurt each other."""
    z = np.full((4, 4), -0.2)
    z[0, 1], z[1, 0] = 0.5, 0.4
    z[2, 3], z[3, 2] = 0.3, 0.6
    np.fill_diagonal(z, 1.0)
    return z


def test_recommends_the_helping_pairs():
    result = recommend_groups(crafted(), NAMES, 2)
    assert result.groups == [["a", "b"], ["c", "d"]]
    assert result.exhaustive and result.candidates == stirling2(4, 2) == 7
    assert result.score == pytest.approx(0.5 + 0.4 + 0.3 + 0.6)
    assert result.per_task == pytest.approx({"a": 0.4, "b": 0.5, "c": 0.6, "d": 0.3})


def test_group_score_is_mean_affinity_onto_each_member():
    z = crafted()
    score, gains = group_score(z, [0, 0, 0, 1])  # d alone gains 0
    assert gains[0] == pytest.approx((0.4 + -0.2) / 2)  # b -> a and c -> a
    assert gains[3] == 0.0
    assert score == pytest.approx(gains.sum())


def test_one_group_and_singletons():
    assert recommend_groups(crafted(), NAMES, 1).groups == [NAMES]
    assert recommend_groups(crafted(), NAMES, 4).groups == [["a"], ["b"], ["c"], ["d"]]


def test_ties_keep_the_first_partition_and_are_counted():
    result = recommend_groups(np.zeros((3, 3)), ["x", "y", "z"], 2)
    assert result.groups == [["x", "y"], ["z"]]
    assert result.ties == 2
    assert "tie" in result.describe()


def test_partitions_are_each_listed_once():
    listed = list(partitions(5, 3))
    assert len(listed) == stirling2(5, 3) == 25
    canonical = {tuple(p) for p in listed}
    assert len(canonical) == 25


def test_greedy_fallback_finds_the_planted_groups():
    rng = np.random.default_rng(1)
    names = [f"t{i}" for i in range(9)]
    truth = [0, 1, 2, 0, 1, 2, 0, 1, 2]
    z = rng.normal(0, 0.05, size=(9, 9))
    for i, j in itertools.product(range(9), range(9)):
        if truth[i] == truth[j] and i != j:
            z[i, j] += 1.0
    greedy = recommend_groups(z, names, 3, exhaustive_limit=0)
    assert not greedy.exhaustive
    assert greedy.groups == [["t0", "t3", "t6"], ["t1", "t4", "t7"], ["t2", "t5", "t8"]]
    assert "greedy" in greedy.describe()
    assert greedy.score == pytest.approx(recommend_groups(z, names, 3).score)


@pytest.mark.parametrize("k", [0, 5, 2.0])
def test_bad_group_count(k):
    with pytest.raises(ValueError, match="groups must be an integer from 1 to the number of tasks"):
        recommend_groups(crafted(), NAMES, k)
