"""The one transitions table (media stages) never moves a job's public status backwards or out of an end:
the public machine queued → in_progress → completed | failed | cancelled follows from it."""

from __future__ import annotations

from app.jobs.models import STAGE_TRANSITIONS, STATUS_OF, TERMINAL, TERMINAL_STAGES, JobStatus, Stage

ORDER = {
    JobStatus.QUEUED: 0,
    JobStatus.IN_PROGRESS: 1,
    JobStatus.COMPLETED: 2,
    JobStatus.FAILED: 2,
    JobStatus.CANCELLED: 2,
}


def test_every_stage_has_its_row_and_ends_have_none() -> None:
    assert set(STAGE_TRANSITIONS) == set(Stage)
    assert all(not STAGE_TRANSITIONS[stage] for stage in TERMINAL_STAGES)
    assert {STATUS_OF[stage] for stage in TERMINAL_STAGES} == TERMINAL


def test_public_status_only_moves_forward() -> None:
    for source, targets in STAGE_TRANSITIONS.items():
        for target in targets:
            before, after = STATUS_OF[source], STATUS_OF[target]
            assert ORDER[after] >= ORDER[before], (source, target)
            assert before not in TERMINAL, (source, target)


def test_completed_is_reached_only_through_storing() -> None:
    # `completed` means downloadable from us: the copy into storage comes first.
    assert [s for s, targets in STAGE_TRANSITIONS.items() if Stage.COMPLETED in targets] == [Stage.STORING]
