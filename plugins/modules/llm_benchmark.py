#!/usr/bin/python
# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: llm_benchmark
short_description: Load-test an OpenAI-compatible LLM endpoint and check service-level objectives
version_added: "0.1.0"
description:
  - Sends chat or completion requests to any OpenAI-compatible server (LocalAI, Ollama, vLLM,
    KServe, Llama Stack) with a chosen load profile and measures, per profile or rate, the time
    to first token (TTFT), inter-token latency (ITL), time per output token (TPOT), end-to-end
    latency (mean, p50, p90, p95, p99), request rate, output tokens per second and the
    concurrency achieved.
  - Metric definitions follow guidellm. TTFT is first content event minus request start; ITL is
    (last content event - first content event) / (output tokens - 1); TPOT is (last content
    event - request start) / output tokens. Percentiles are nearest-rank (always an observed
    value). Token counts come from the server's C(usage) (the module asks for it with
    C(stream_options.include_usage)); without it, content events are counted.
  - Successful, errored and incomplete requests are counted apart. Only successful requests
    enter latency and token figures, so failing requests never skew TTFT or throughput.
    Incomplete requests are those still in flight when a phase ended (cancelled after
    O(drain_timeout)).
  - When O(slo) thresholds are missed the task fails, and still returns all the metrics.
  - In check mode the module only verifies that the endpoint answers C(/v1/models), resolves
    the model and returns the plan; no load is sent.
  - The engine uses only the Python standard library (a hand-written asyncio HTTP/1.1 client),
    starts in well under a second and can drive several hundred streams per second from one
    core. It also runs without Ansible, for example as a Kubernetes Job that writes the reports
    to a persistent volume; see the notes.
author:
  - aistack.platform contributors (@aistack-platform)
options:
  base_url:
    description:
      - Base URL of the OpenAI-compatible server, for example C(http://vllm:8000) or
        C(https://llama-stack.example.com/v1). A trailing C(/v1) is accepted.
    type: str
    required: true
  api_key:
    description: Bearer token sent as C(Authorization) header.
    type: str
  model:
    description: Model to benchmark. Defaults to the first model listed by C(/v1/models).
    type: str
  endpoint:
    description: API to call, C(/v1/chat/completions) (C(chat)) or C(/v1/completions).
    type: str
    choices: [chat, completions]
    default: chat
  stream:
    description:
      - Stream the answer (server-sent events). Needed for TTFT and ITL; without streaming TTFT
        equals the request latency and ITL is not measured.
    type: bool
    default: true
  profile:
    description:
      - C(synchronous) sends one request at a time.
      - C(concurrent) keeps O(concurrency) requests in flight (closed loop).
      - C(constant) and C(poisson) send O(rate) requests per second (open loop, evenly spaced
        or exponential gaps); O(concurrency), if set, caps the requests in flight.
      - C(sweep) runs C(synchronous), then either C(constant) at each rate of O(rate), or a
        throughput phase at O(concurrency) (default 32) followed by O(sweep_points) constant
        rates evenly spaced between the two measured rates.
    type: str
    choices: [synchronous, concurrent, constant, poisson, sweep]
    default: concurrent
  concurrency:
    description:
      - Streams for C(concurrent) (required there), in-flight cap for C(constant) and
        C(poisson), throughput-phase streams for C(sweep). Not allowed above 1 with
        C(synchronous).
    type: int
  rampup:
    description:
      - Seconds over which the C(concurrent) streams (or a C(sweep)'s throughput phase) send
        their first request, stream I(i) of I(n) starting at I(rampup * i / n), as guidellm's
        C(rampup). With C(0) all streams start together and, since a closed loop sends the
        next request as soon as one ends, tend to stay in lock-step; a server that queues work
        per arriving request then shows a higher TTFT than under staggered arrivals. About one
        request's duration spreads the arrivals evenly.
      - The ramp is part of each measured phase (and of its warm-up), so requests per second
        include it; streams not started when the phase ends send nothing and are not counted.
      - Not allowed with C(synchronous), C(constant) and C(poisson), nor with a C(sweep) given
        O(rate) (it has no throughput phase).
    type: float
    default: 0.0
  rate:
    description:
      - Requests per second. One value for C(constant) and C(poisson) (required there); for
        C(sweep), the list of rates to run after the synchronous phase.
    type: list
    elements: float
  max_requests:
    description:
      - Requests per phase (warm-up excluded). At least one of O(max_requests) and
        O(max_seconds) is required; with both, whichever comes first ends the phase.
    type: int
  max_seconds:
    description: Duration of each phase in seconds (warm-up excluded).
    type: float
  drain_timeout:
    description:
      - After a phase stops issuing requests, how long to wait for those in flight before
        they are cancelled and counted as incomplete. Bounds every phase of a sweep.
    type: float
    default: 10.0
  sweep_points:
    description: Number of interpolated constant rates in a C(sweep) without O(rate).
    type: int
    default: 5
  warmup:
    description: Requests sent before each phase and left out of its metrics.
    type: dict
    suboptions:
      requests:
        description: Number of warm-up requests.
        type: int
      seconds:
        description: Warm-up duration in seconds.
        type: float
  prompt_tokens:
    description:
      - Length of the synthetic prompts, in tokens (about one token per word; each prompt
        starts with a unique number so prefix caches do not flatter the server). Defaults to
        128. Mutually exclusive with O(prompt_file).
    type: int
  output_tokens:
    description:
      - "Output length asked for (C(max_tokens)). Unset leaves it to the server. Servers stop at
        end-of-sequence unless told otherwise; for vLLM add C(ignore_eos: true) to
        O(extra_body) to get exactly this many tokens."
    type: int
  prompt_file:
    description:
      - Prompt dataset on the Ansible controller's target host. C(.jsonl)/C(.json) rows with
        C(prompt), C(text), C(input) or C(messages) (chat list), optionally C(output_tokens);
        any other file is read as one prompt per non-empty line. Rows are used in order and
        cycled.
    type: path
  extra_body:
    description: Extra fields merged into every request body (for example C(temperature)).
    type: dict
  seed:
    description: Seed for synthetic prompts and Poisson arrival times.
    type: int
    default: 42
  slo:
    description:
      - Service-level objectives; the task fails when one is missed (the metrics are still
        returned). Keys C(<ttft|itl|tpot|latency>_<mean|p50|p90|p95|p99|max>_ms) are upper
        bounds in milliseconds; C(error_rate) (errored / finished, 0-1) and C(max_incomplete)
        are upper bounds; C(min_requests_per_second), C(min_output_tokens_per_second) and
        C(min_successful) are lower bounds.
      - For C(sweep) each phase is judged; the task fails only when no phase meets all
        objectives, and RV(slo.best_phase) names the fastest phase that does.
    type: dict
  report_dir:
    description:
      - Directory for C(llm_benchmark.json) (configuration, metrics, per-request timings),
        C(llm_benchmark.html) (self-contained, inline SVG plots) and C(progress.jsonl)
        (about one line per second while running).
    type: path
  timeout:
    description: Timeout of each request in seconds (an expired request counts as errored).
    type: float
    default: 120.0
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: CA bundle (PEM) to verify the server's certificate with.
    type: path
attributes:
  check_mode:
    support: full
    description: Checks the endpoint and returns the plan; sends no load.
  diff_mode:
    support: none
    description: Nothing on the target changes except the report files.
notes:
  - The module runs on the target host (usually C(localhost)); put it close to the endpoint.
  - Progress is written to the module log (syslog/journal of the target host) and to
    C(progress.jsonl) in O(report_dir), so a long run can be followed with C(tail -f).
  - Without Ansible the same engine runs as
    C(python -m ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark
    --config bench.yaml), or, with the C(plugins/module_utils/llm_benchmark) directory copied
    into an image as C(llm_benchmark/), as C(python -m llm_benchmark --config
    /config/bench.json --report-dir /results/run-1). The config file holds the options of this
    module; exit status 0 means done, 2 SLO missed, 1 could not run. This is how a
    Kubernetes Job writes reports to the GuideLLM-results PVC (see the examples).
seealso:
  - name: guidellm
    description: The benchmark tool whose metric definitions this module follows.
    link: https://github.com/vllm-project/guidellm
"""

EXAMPLES = r"""
- name: Quick check that the model server answers and streams
  aistack.platform.llm_benchmark:
    base_url: http://localhost:8000
    profile: synchronous
    max_requests: 10

- name: 16 concurrent streams for 60 s against vLLM with SLOs, reports for AWX
  aistack.platform.llm_benchmark:
    base_url: "{{ vllm_url }}"
    api_key: "{{ vllm_api_key }}"
    model: meta-llama/Llama-3.1-8B-Instruct
    profile: concurrent
    concurrency: 16
    max_seconds: 60
    warmup:
      requests: 16
    prompt_tokens: 512
    output_tokens: 128
    extra_body:
      ignore_eos: true
    slo:
      ttft_p95_ms: 500
      itl_p95_ms: 50
      error_rate: 0.01
    report_dir: /var/tmp/llm-bench/{{ ansible_date_time.iso8601_basic_short | default('run') }}
  register: bench

- name: Hand the headline figures to AWX
  ansible.builtin.set_stats:
    data: "{{ bench.stats }}"

- name: Sweep request rates with a prompt dataset
  aistack.platform.llm_benchmark:
    base_url: https://llama-stack.example.com/v1
    ca_path: /etc/pki/tls/certs/internal-ca.pem
    profile: sweep
    rate: [1, 2, 4, 8]
    max_seconds: 30
    prompt_file: /srv/prompts/support-questions.jsonl
    slo:
      latency_p95_ms: 8000
    report_dir: /var/tmp/llm-bench/sweep

- name: Only verify the endpoint and show the plan (no load)
  aistack.platform.llm_benchmark:
    base_url: http://ollama:11434
    profile: poisson
    rate: [2]
    max_requests: 200
  check_mode: true

# The same engine without Ansible, as a Kubernetes Job writing to the results PVC. The
# ConfigMap "llm-bench-code" holds the files of plugins/module_utils/llm_benchmark/ and
# "llm-bench-config" a bench.json such as
# {"base_url": "http://vllm:8000", "profile": "sweep", "max_seconds": 60, "slo": {...}}
- name: Run the benchmark in the cluster
  kubernetes.core.k8s:
    state: present
    definition:
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: llm-bench
        namespace: ai-lab
      spec:
        backoffLimit: 0
        template:
          spec:
            restartPolicy: Never
            containers:
              - name: bench
                image: python:3.12-slim
                workingDir: /opt
                command:
                  - python
                  - -m
                  - llm_benchmark
                  - --config=/config/bench.json
                  - --report-dir=/results/llm-bench
                  - --output=/results/llm-bench/result.json
                volumeMounts:
                  - {name: code, mountPath: /opt/llm_benchmark}
                  - {name: config, mountPath: /config}
                  - {name: results, mountPath: /results}
            volumes:
              - {name: code, configMap: {name: llm-bench-code}}
              - {name: config, configMap: {name: llm-bench-config}}
              - {name: results, persistentVolumeClaim: {claimName: guidellm-results}}
"""

RETURN = r"""
model:
  description: Model that was benchmarked.
  returned: always
  type: str
  sample: llama-3.1-8b-instruct
models_available:
  description: Model ids listed by C(/v1/models).
  returned: always
  type: list
  elements: str
  sample: [llama-3.1-8b-instruct]
plan:
  description: URL, model, profile, phases (mode, concurrency, rate, limits), prompts.
  returned: always
  type: dict
  sample:
    url: http://localhost:8000/v1/chat/completions
    profile: concurrent
    phases: [{name: concurrent@16, mode: concurrent, concurrency: 16, max_seconds: 60}]
metrics:
  description:
    - Metrics of the run (for C(sweep), of the phase with the highest request rate).
    - C(ttft_ms), C(itl_ms), C(tpot_ms), C(latency_ms), C(output_tokens) and C(prompt_tokens)
      each hold C(mean), C(p50), C(p90), C(p95), C(p99), C(min), C(max), C(std), C(count).
  returned: unless check mode
  type: dict
  contains:
    ttft_ms:
      description: Time to first token distribution in milliseconds.
      type: dict
      sample: {mean: 114.2, p50: 112.9, p90: 118.3, p95: 121.0, p99: 130.4}
    itl_ms:
      description: Inter-token latency distribution (per-request means) in milliseconds.
      type: dict
    tpot_ms:
      description: Time per output token (first token included) in milliseconds.
      type: dict
    latency_ms:
      description: End-to-end request latency in milliseconds.
      type: dict
    requests_per_second:
      description: Successful requests per second over the phase.
      type: float
    output_tokens_per_second:
      description: Output tokens of successful requests per second.
      type: float
    concurrency:
      description: Mean number of requests in flight.
      type: float
    successful:
      description: Requests that completed without error.
      type: int
    errored:
      description: Requests that failed (HTTP error, connection error, timeout, bad stream).
      type: int
    incomplete:
      description: Requests cancelled when the phase ended.
      type: int
    error_rate:
      description: errored / (successful + errored).
      type: float
    errors:
      description: Up to 10 distinct error messages with their counts.
      type: dict
  sample:
    requests_per_second: 12.4
    successful: 744
    errored: 0
    incomplete: 0
stats:
  description:
    - Flat copy of the headline figures for C(ansible.builtin.set_stats) and AWX, for
      example C(ttft_p95_ms), C(itl_mean_ms), C(latency_p99_ms), C(requests_per_second),
      C(output_tokens_per_second), C(successful), C(errored), C(incomplete), C(error_rate),
      C(slo_passed).
  returned: unless check mode
  type: dict
  sample: {ttft_p95_ms: 121.0, requests_per_second: 12.4, errored: 0, slo_passed: true}
benchmarks:
  description: One entry per phase (C(name), C(mode), C(rate), C(concurrency), C(metrics), C(slo)).
  returned: unless check mode
  type: list
  elements: dict
slo:
  description:
    - Verdict when O(slo) is set - C(passed), C(violations) (messages), C(checked) (per
      threshold value and result); for C(sweep) also C(best_phase) and
      C(max_requests_per_second_meeting_slo).
  returned: when slo is set and not check mode
  type: dict
  sample: {passed: false, violations: ["ttft_p95_ms: 812.4 > 500"]}
  contains:
    passed:
      description: Whether the objectives were met.
      type: bool
    violations:
      description: One message per missed objective.
      type: list
      elements: str
    checked:
      description: Per objective, C(threshold), measured C(value) and C(passed).
      type: dict
    best_phase:
      description: For C(sweep), the fastest phase meeting every objective (or null).
      type: str
      returned: for sweep
    max_requests_per_second_meeting_slo:
      description: For C(sweep), the request rate of RV(slo.best_phase).
      type: float
      returned: for sweep
report_json:
  description: Path of the JSON report.
  returned: when report_dir is set and not check mode
  type: str
report_html:
  description: Path of the HTML report.
  returned: when report_dir is set and not check mode
  type: str
progress_file:
  description: Path of C(progress.jsonl), or null without O(report_dir).
  returned: unless check mode
  type: str
duration_s:
  description: Wall-clock duration of the benchmark in seconds.
  returned: unless check mode
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.config import (
    BenchmarkConfig,
    ConfigError,
)
from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.runner import (
    BenchmarkError,
    run_benchmark,
)

ARGUMENT_SPEC = {
    "base_url": {"type": "str", "required": True},
    "api_key": {"type": "str", "no_log": True},
    "model": {"type": "str"},
    "endpoint": {"type": "str", "choices": ["chat", "completions"], "default": "chat"},
    "stream": {"type": "bool", "default": True},
    "profile": {
        "type": "str",
        "choices": ["synchronous", "concurrent", "constant", "poisson", "sweep"],
        "default": "concurrent",
    },
    "concurrency": {"type": "int"},
    "rampup": {"type": "float", "default": 0.0},
    "rate": {"type": "list", "elements": "float"},
    "max_requests": {"type": "int"},
    "max_seconds": {"type": "float"},
    "drain_timeout": {"type": "float", "default": 10.0},
    "sweep_points": {"type": "int", "default": 5},
    "warmup": {
        "type": "dict",
        "options": {"requests": {"type": "int"}, "seconds": {"type": "float"}},
        "mutually_exclusive": [["requests", "seconds"]],
    },
    "prompt_tokens": {"type": "int", "no_log": False},
    "output_tokens": {"type": "int", "no_log": False},
    "prompt_file": {"type": "path"},
    "extra_body": {"type": "dict"},
    "seed": {"type": "int", "default": 42},
    "slo": {"type": "dict"},
    "report_dir": {"type": "path"},
    "timeout": {"type": "float", "default": 120.0},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        mutually_exclusive=[["prompt_tokens", "prompt_file"]],
        required_one_of=[["max_requests", "max_seconds"]],
        required_if=[
            ["profile", "concurrent", ["concurrency"]],
            ["profile", "constant", ["rate"]],
            ["profile", "poisson", ["rate"]],
        ],
    )
    try:
        cfg = BenchmarkConfig.from_dict(dict(module.params))
    except ConfigError as exc:
        module.fail_json(msg=f"invalid options: {exc}")
    try:
        result = run_benchmark(cfg, log=module.log, check_mode=module.check_mode)
    except (BenchmarkError, ValueError, OSError) as exc:
        module.fail_json(msg=f"llm_benchmark could not run: {exc}")
    slo = result.get("slo")
    if slo and not slo["passed"]:
        result["changed"] = bool(result.get("report_json"))
        module.fail_json(msg="SLO missed: " + "; ".join(slo["violations"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
