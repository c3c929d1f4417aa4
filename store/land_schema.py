"""Tables for landing (issue 14), applied by schema.py as migration m008_land.

land_targets: the branch a run lands into, once known (the default run branch is created at the
first code dispatch). lands: one row per attempt that was checked or landed: `clean` (mergeable
at checked_target), `conflicts` (conflicts_json lists the files), `landing` (a write-ahead
intent: target_before -> landed_commit, by landing_pid), `landed`. PR number and address live
on the same row, so they belong to the attempt.
"""

LAND_DDL = """
CREATE TABLE land_targets (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id),
    repo_path TEXT NOT NULL,
    target TEXT NOT NULL,
    base_commit TEXT NOT NULL DEFAULT '',
    created_branch INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE lands (
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    attempt_no INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('clean', 'conflicts', 'landing', 'landed')),
    target TEXT NOT NULL DEFAULT '',
    head_commit TEXT NOT NULL DEFAULT '',
    checked_target TEXT NOT NULL DEFAULT '',
    conflicts_json TEXT NOT NULL DEFAULT '[]',
    target_before TEXT NOT NULL DEFAULT '',
    landed_commit TEXT NOT NULL DEFAULT '',
    strategy TEXT NOT NULL DEFAULT '',
    landed_by TEXT NOT NULL DEFAULT '',
    landing_pid INTEGER,
    pr_number INTEGER,
    pr_url TEXT NOT NULL DEFAULT '',
    checked_at TEXT NOT NULL DEFAULT '',
    landed_at TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, task_id, attempt_no),
    FOREIGN KEY (run_id, task_id) REFERENCES tasks(run_id, task_id)
);
CREATE INDEX lands_status ON lands(run_id, status)
"""
