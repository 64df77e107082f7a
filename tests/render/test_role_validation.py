"""Invalid settings fail in preflight, before anything is rendered, naming the variable."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.render.single_node_helpers import render

H100_GROUP = {
    "name": "h100", "model": "H100-80GB", "nodes": ["n1"], "gpus_per_node": 8,
    "sharing": "mig", "mig_profile": "1g.18gb", "time_slicing_profile": "any",
}  # fmt: skip
L40S_GROUP = {
    "name": "l40s", "model": "L40S-48GB", "nodes": ["n1", "n2"], "gpus_per_node": 4,
    "sharing": "mig", "mig_profile": "1g.10gb",
}  # fmt: skip
CASES = {
    "time-slicing replicas 1": (
        {"gpu_operator_time_slicing_replicas": 1},
        ["gpu_operator_time_slicing_replicas must be >= 2"],
    ),
    "negative size": (
        {"qdrant_storage_size": "-20Gi"},
        ["qdrant_storage_size must be a positive size", "-20Gi"],
    ),
    "zero size": (
        {"localai_storage_size": "0Gi"},
        ["localai_storage_size must be a positive size"],
    ),
    "unknown component": (
        {"aistack_components": {"vllm_turbo": True}},
        ["Unknown component(s) in aistack_components: vllm_turbo"],
    ),
    "wrong type": (
        {"qdrant_replicas": "three"},
        ["qdrant_replicas", "unable to convert to int"],
    ),
    "bad choice": (
        {"longhorn_reclaim_policy": "Recycle"},
        ["longhorn_reclaim_policy", "Recycle"],
    ),
    "latest image": (
        {"ollama_image_tag": "latest"},
        ["ollama_image_tag must be pinned"],
    ),
    "agents: plain credentials, floating tag, crew clash, MLflow store not a server": (
        {
            "agents_extra_config": {"LLM_API_KEY": "sk-plain"},
            "agents_image_tag": "latest",
            "agents_crew_name": "agents-router",
            "agents_crew_mcp_url": "ftp://mcp",
            "agents_mlflow_tracking_uri": "sqlite:///mlflow.db",
        },
        [
            "agents_extra_config must hold no credentials (API keys and DSNs come from Secrets): "
            "LLM_API_KEY",
            "agents_image_tag must be pinned",
            'agents_crew_name must be a DNS label other than agents_name, got "agents-router"',
            'agents_crew_mcp_url must be an http(s) URL or empty, got "ftp://mcp"',
            "agents_mlflow_tracking_uri must be an MLflow tracking server http(s) URL or empty",
        ],
    ),
    "GPU node groups: MIG with time-slicing, unknown MIG profile, MIG on L40S, a shared node": (
        {"aistack_gpu_node_groups": [H100_GROUP, L40S_GROUP]},
        [
            "Invalid GPU node groups: node group h100: MIG (mig_profile 1g.18gb) and time-slicing "
            "(time_slicing_profile any) on the same GPUs; choose one sharing per node group",
            "node group h100: MIG profile '1g.18gb' is unknown for H100-80GB (known: 1g.10gb, "
            "1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb)",
            "node group l40s: node n1 is also in node group h100",
            "node group l40s: L40S-48GB does not support MIG",
        ],
    ),
    "kserve: MIG slice with tensor parallelism, no MIG group, shared cache": (
        {
            "aistack_components": {"kserve": True},
            "kserve_mig_profile": "3g.40gb",
            "kserve_gpu_count": 2,
            "kserve_autoscaler_class": "hpa",
            "kserve_min_replicas": 1,
            "kserve_max_replicas": 4,
        },
        [
            "more than one replica (4) needs kserve_model_cache_access_mode ReadWriteMany",
            "kserve_mig_profile 3g.40gb with kserve_gpu_count 2: a CUDA process sees one MIG "
            "device, so tensor parallelism across MIG slices is not possible",
            "kserve_mig_profile 3g.40gb: no node group is partitioned into it",
        ],
    ),
    "finetune: priority not below inference, run name, unknown option, untagged model image": (
        {
            "finetune_priority": 0,
            "finetune_run_name": "My Run",
            "finetune_args": {"lora_r": 8, "learning_rate": 1},
            "finetune_base_model": "oci://registry.example/models/qwen",
        },
        [
            "finetune_priority 0 must be below the priority of the model servers (0): the Job "
            "must yield the shared GPU to inference",
            "finetune_run_name must be a DNS label (it names the output directory and the Job), "
            'got "My Run"',
            "finetune_args has unknown options: learning_rate",
            "finetune_base_model: an oci:// model image needs a registry, a repository and a "
            "pinned tag",
        ],
    ),
    "stateless scaling: min above max, a PDB that blocks drains": (
        {
            "rag_pipeline_autoscaling": {
                "enabled": True,
                "min_replicas": 3,
                "max_replicas": 2,
                "cpu_target_percent": 0,
            },
            "rag_pipeline_pdb_min_available": 3,
        },
        [
            "rag_pipeline_autoscaling.min_replicas must be >= 1 and <= max_replicas, got 3 and 2",
            "rag_pipeline_autoscaling.cpu_target_percent must be between 1 and 100, got 0",
            "rag_pipeline_pdb_min_available 3 must be below the fewest replicas (3), or no node "
            "could ever be drained",
        ],
    ),
    "vault secret without value": (
        {"qdrant_secrets_source": "vault"},
        ["qdrant_api_key is required when qdrant_secrets_source is vault"],
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_invalid_setting_fails_before_rendering(case: str) -> None:
    extra, messages = CASES[case]
    build_root = Path(tempfile.mkdtemp(prefix="aistack-invalid-"))
    shutil.rmtree(build_root)
    try:
        proc = render(build_root, "-e", json.dumps(extra))
        output = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode != 0, output[-3000:]
        for message in messages:
            assert message in output, output[-3000:]
        # Preflight failed the host: no component directory, no file.
        written = [p for p in build_root.rglob("*") if p.is_file()] if build_root.exists() else []
        assert written == []
        assert "TASK [Deploy " not in proc.stdout
    finally:
        shutil.rmtree(build_root, ignore_errors=True)
