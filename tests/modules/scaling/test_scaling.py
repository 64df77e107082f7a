"""The autoscaling / PodDisruptionBudget rules of the stateless services
(plugins/filter/scaling.py), on plain data."""

from __future__ import annotations

from ansible_collections.aistack.platform.plugins.filter.scaling import scaling_errors

ON = {"enabled": True, "min_replicas": 2, "max_replicas": 4, "cpu_target_percent": 70}
OFF = dict(ON, enabled=False)


def test_valid_settings_have_no_errors() -> None:
    assert scaling_errors(ON, "agents", 1, 1) == []
    assert scaling_errors(OFF, "agents", None, 1) == []
    # Without the autoscaler the fixed replicas are the floor.
    assert scaling_errors(OFF, "agents", 2, 3) == []
    assert scaling_errors(dict(ON, min_replicas=4), "agents", None, 1) == []


def test_a_budget_that_would_block_every_drain_is_refused() -> None:
    (error,) = scaling_errors(OFF, "agents", 1, 1)
    assert error.startswith("agents_pdb_min_available 1 must be below the fewest replicas (1)")
    (error,) = scaling_errors(ON, "rag_pipeline", 2, 1)
    assert "rag_pipeline_pdb_min_available 2 must be below the fewest replicas (2)" in error
    (error,) = scaling_errors(ON, "x", 0, 1)
    assert error == "x_pdb_min_available must be null or >= 1, got 0"


def test_bounds_and_target_are_checked_only_when_enabled() -> None:
    bad = {"enabled": "true", "min_replicas": 0, "max_replicas": 3, "cpu_target_percent": 101}
    assert scaling_errors(bad, "kagenti_agents") == [
        "kagenti_agents_autoscaling.min_replicas must be >= 1 and <= max_replicas, got 0 and 3",
        "kagenti_agents_autoscaling.cpu_target_percent must be between 1 and 100, got 101",
    ]
    assert scaling_errors(dict(bad, enabled=False), "kagenti_agents") == []
    assert scaling_errors(dict(ON, min_replicas=5), "a") == [
        "a_autoscaling.min_replicas must be >= 1 and <= max_replicas, got 5 and 4"
    ]


def test_malformed_mapping() -> None:
    assert scaling_errors({"enabled": True}, "a") == [
        "a_autoscaling lacks min_replicas, max_replicas, cpu_target_percent"
    ]
    assert scaling_errors([], "a") == [
        "a_autoscaling must be a mapping with enabled, min_replicas, max_replicas, "
        "cpu_target_percent"
    ]
