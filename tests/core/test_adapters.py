"""The adapter's private reach-ins still find what they rely on in the installed libraries."""

from __future__ import annotations

from app.core import adapters


def test_the_installed_libraries_still_have_the_internals_the_adapter_uses() -> None:
    missing = adapters.check_internals()
    assert missing == [], (
        "app/core/adapters/ relies on library internals that this installed version no longer has: "
        f"{missing}. Port the adapter to the new release (or drop the reach-in and its speed-up) "
        "before raising the pin in constraints.txt."
    )
