"""Saving a program's RFM grid: whole (the manager API, the default grid copied in) or one segment at a time
(the admin). Every saved grid covers every cell (`analytics.rfm.grid_problems`)."""

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction

from analytics.models import RfmSegment
from analytics.rfm import DEFAULT_GRID, SegmentSpec, grid_problems
from members.models import Program


@transaction.atomic
def rfm_grid_save(*, program: Program, segments: Sequence[SegmentSpec]) -> list[RfmSegment]:
    """Replaces the program's grid: priorities follow the order of `segments`. Raises ValidationError
    (field `segments`) and writes nothing when the grid is not valid. Members keep their segments until the
    next refresh."""
    if problems := grid_problems(segments):
        raise ValidationError({"segments": problems})
    # Saves of one program's grid queue behind each other instead of failing on the unique names.
    Program.objects.select_for_update().filter(pk=program.pk).first()
    RfmSegment.objects.filter(program=program).delete()
    return RfmSegment.objects.bulk_create(
        RfmSegment(
            program=program,
            name=segment.name.strip(),
            priority=priority,
            r_min=segment.r_min,
            r_max=segment.r_max,
            fm_min=segment.fm_min,
            fm_max=segment.fm_max,
            description=segment.description.strip(),
        )
        for priority, segment in enumerate(segments, start=1)
    )


@transaction.atomic
def rfm_segment_save(*, segment: RfmSegment) -> RfmSegment:
    """Saves one segment of its program's grid (the admin's form has checked the grid it makes). A program
    still on the default grid gets it copied in first, so the segment is tried among the default ones by its
    priority; the copy and the segment commit together."""
    if not RfmSegment.objects.filter(program=segment.program).exists():
        rfm_grid_save(program=segment.program, segments=DEFAULT_GRID)
    segment.save()
    return segment
