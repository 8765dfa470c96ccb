"""Which gateway features exist in this tree, and how the benchmark account is prepared for them.

The gateway is benchmarked with every feature that exists switched on. Billing holds and rate limits
are found by their module; the benchmark account then needs money, prices for its models and limits
high enough for a load test, which `SETUP_COMMANDS` gives it through the `heytoken` CLI (placeholders:
{account}, {key_id}, {model}; a command with {model} runs once per bench model). If a command fails,
the driver says so and runs anyway: refused requests (402, 429) then show in the error column.
"""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from app.core.settings import Settings

BILLING_MODULES = ("app.billing", "app.money", "app.ledger")
LIMITS_MODULES = ("app.billing.limits", "app.ratelimits", "app.rate_limits")
BALANCE_USD = "1000000"  # enough for any run

# The `heytoken` CLI of the billing and limits issues: a price for each bench model (a model without
# one cannot be called), a balance, and no limits on the bench key (0 = off).
SETUP_COMMANDS: dict[str, list[str]] = {
    "billing hold": [
        "heytoken price set {model} --input 0.01 --output 0.01",
        "heytoken topup {account} " + BALANCE_USD + " --reason bench",
    ],
    "rate limits": [
        "heytoken limits --key {key_id} --rpm 0 --rph 0 --tpm 0 --streams 0",
    ],
}


@dataclass
class Feature:
    name: str
    present: bool
    how: str
    setup: list[str] = field(default_factory=list)


def _module(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            if importlib.util.find_spec(name) is not None:
                return name
        except ModuleNotFoundError:
            continue
    return None


def detect() -> list[Feature]:
    billing = _module(BILLING_MODULES)
    limits = _module(LIMITS_MODULES)
    return [
        Feature("auth", True, "a real sk-ht- key on every request (cached per process)"),
        Feature("job log", True, "every request's job row written in batches to the database"),
        Feature(
            "metrics + overhead header",
            "metrics_enabled" in Settings.model_fields,
            "GET /metrics counters and x-heytoken-overhead-ms on every answer",
        ),
        Feature(
            "billing hold",
            billing is not None,
            f"hold before the upstream call ({billing})" if billing else "not in this tree (issue 5)",
            SETUP_COMMANDS["billing hold"] if billing else [],
        ),
        Feature(
            "rate limits",
            limits is not None,
            f"one Redis round trip per request ({limits})" if limits else "not in this tree (issue 6)",
            SETUP_COMMANDS["rate limits"] if limits else [],
        ),
    ]


def run_setup(
    features: list[Feature], env: dict[str, str], bin_dir: Path, values: dict[str, str], models: list[str]
) -> list[str]:
    """Run the setup commands of the present features; return a warning per failed command."""
    warnings = []
    for feature in features:
        for template in feature.setup:
            for model in models if "{model}" in template else [""]:
                command = shlex.split(template.format(model=model, **values))
                command[0] = str(bin_dir / command[0])
                done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
                if done.returncode != 0:
                    warnings.append(
                        f"{feature.name}: `{' '.join(command[1:])}` failed ({done.stderr.strip()[-300:]}); "
                        "adjust SETUP_COMMANDS in bench/features.py"
                    )
    return warnings
