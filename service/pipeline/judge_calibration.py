"""Calibration before trust: a job's semantic judge is scored on a set made from the job's own
catalog (`generators.calibration_set`) before it judges any of the job's samples. The figures are
stored on the job; below the threshold the job fails at once with `judge_uncalibrated` and them,
instead of stamping everything "pass".

The first verify task of the job calibrates; tasks that find the figures stored reuse them. Two
tasks that start together may both calibrate (the judge is asked twice); the first to store wins,
and both then go by what is stored.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from generators.calibration_set import calibration_set
from service.db.models import JobRecord
from service.pipeline.lifecycle import fail_job, lock_job
from service.pipeline.spec import JobSpec
from verifiers.judge import STAGE, SemanticOptions, judge_for
from verifiers.judge_calibration import JudgeCalibration, calibrate
from verifiers.stages import StageContext

UNCALIBRATED = "judge_uncalibrated"


def judge_trusted(
    session: Session, job: JobRecord, spec: JobSpec, context: StageContext, min_accuracy: float
) -> bool:
    """Whether the job may go on to judge its samples: True when it has no semantic stage,
    calibration is off, or its judge reached the threshold on the calibration set (scored now
    if it was not yet). False when the judge fell short; the job is failed then, with the
    figures in its error."""
    options = context.options.get(STAGE)
    if STAGE not in spec.verify or not isinstance(options, SemanticOptions):
        return True
    needed = options.min_accuracy if options.min_accuracy is not None else min_accuracy
    if needed <= 0:
        return True
    if job.judge_calibration is None:
        labelled = calibration_set(context.tools, options.calibration_size, seed=spec.seed)
        scored = calibrate(judge_for(options), labelled, context, needed)
        session.execute(
            update(JobRecord)
            .where(JobRecord.id == job.id, JobRecord.judge_calibration.is_(None))
            .values(judge_calibration=scored.model_dump())
        )
        session.commit()
        session.refresh(job)
    calibration = JudgeCalibration.model_validate(job.judge_calibration)
    if calibration.trusted:
        return True
    lock_job(session, job.id)
    fail_job(
        session,
        job.id,
        f"{UNCALIBRATED}: {calibration.summary()}; use a stronger judge model, ask it for more "
        "votes, or lower the semantic stage's min_accuracy (AF_JUDGE_MIN_ACCURACY)",
    )
    session.commit()
    return False
