-- Kiln store schema, for SQLite and PostgreSQL alike: `SERIAL_KEY` becomes each one's
-- auto-increment primary key (store/mod.rs). Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS experiments (
    id SERIAL_KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments(id),
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs(experiment_id, start_time);
-- When a run was created and last changed (status, name, params, metrics, tags, artifacts,
-- a model version), by the server's clock: what live views poll (`changed_since`) and what
-- keeps a paged answer stable. A table of its own, so a store made before it needs no
-- migration: a run without a row counts as old and unchanged.
CREATE TABLE IF NOT EXISTS run_clock (
    run_id TEXT PRIMARY KEY REFERENCES runs(id),
    created_at BIGINT NOT NULL,
    changed_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_clock_by_change ON run_clock(changed_at);
-- Runs and experiments moved to the trash (MLflow's `lifecycle_stage` "deleted"): hidden
-- from searches unless asked for, refusing writes, restorable. Tables of their own, so a
-- store made before them needs no migration.
CREATE TABLE IF NOT EXISTS deleted_runs (
    run_id TEXT PRIMARY KEY REFERENCES runs(id),
    deleted_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS deleted_experiments (
    experiment_id BIGINT PRIMARY KEY REFERENCES experiments(id),
    deleted_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS experiment_tags (
    experiment_id BIGINT NOT NULL REFERENCES experiments(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);
CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS tags (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS metrics (
    seq SERIAL_KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    step BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_series ON metrics(run_id, key, step);
-- Each series folded into blocks of `BLOCK_STEPS` steps (store/history.rs): the block's
-- first, last, lowest and highest point. A down-sampled history of a
-- long series reads these instead of every point; kept up to date by each log_batch.
CREATE TABLE IF NOT EXISTS metric_blocks (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    block BIGINT NOT NULL,
    first_step BIGINT NOT NULL,
    first_timestamp BIGINT NOT NULL,
    first_value DOUBLE PRECISION NOT NULL,
    last_step BIGINT NOT NULL,
    last_timestamp BIGINT NOT NULL,
    last_value DOUBLE PRECISION NOT NULL,
    low_step BIGINT NOT NULL,
    low_timestamp BIGINT NOT NULL,
    low_value DOUBLE PRECISION NOT NULL,
    high_step BIGINT NOT NULL,
    high_timestamp BIGINT NOT NULL,
    high_value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, key, block)
);
CREATE TABLE IF NOT EXISTS latest_metrics (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    step BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX IF NOT EXISTS latest_metrics_by_value ON latest_metrics(key, value);
CREATE TABLE IF NOT EXISTS artifacts (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_artifacts (
    run_id TEXT NOT NULL REFERENCES runs(id),
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL REFERENCES artifacts(sha256),
    media_type TEXT NOT NULL,
    PRIMARY KEY (run_id, path)
);
-- Files the MLflow artifacts proxy holds outside any run (an MLflow 3 logged model's
-- files, a path a client chose), by their path under the proxy's root. Files under a run's
-- `{experiment}/{run}/artifacts/` go to run_artifacts instead, where Kiln sees them.
CREATE TABLE IF NOT EXISTS path_artifacts (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL REFERENCES artifacts(sha256),
    media_type TEXT NOT NULL
);
-- MLflow 3's logged models: a model's files (under the artifacts proxy's
-- `{experiment}/models/{id}/artifacts/`), its params and tags, and the run that made it.
CREATE TABLE IF NOT EXISTS logged_models (
    id TEXT PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments(id),
    name TEXT NOT NULL,
    model_type TEXT NOT NULL,
    source_run_id TEXT REFERENCES runs(id),
    status TEXT NOT NULL,
    status_message TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX IF NOT EXISTS logged_models_by_experiment ON logged_models(experiment_id, created_at);
-- Logged models a run produced (`output`, at a step: `log_model` in a run) or used (`input`).
CREATE TABLE IF NOT EXISTS run_logged_models (
    run_id TEXT NOT NULL REFERENCES runs(id),
    model_id TEXT NOT NULL REFERENCES logged_models(id),
    direction TEXT NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (run_id, model_id, direction)
);
CREATE TABLE IF NOT EXISTS logged_model_tags (
    model_id TEXT NOT NULL REFERENCES logged_models(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE TABLE IF NOT EXISTS logged_model_params (
    model_id TEXT NOT NULL REFERENCES logged_models(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    admin BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS registered_models (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_versions (
    name TEXT NOT NULL REFERENCES registered_models(name),
    version BIGINT NOT NULL,
    run_id TEXT REFERENCES runs(id),
    source TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX IF NOT EXISTS model_versions_by_run ON model_versions(run_id);
CREATE TABLE IF NOT EXISTS model_aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
);
-- Tags of a registered model (version 0) and of its versions.
CREATE TABLE IF NOT EXISTS model_tags (
    name TEXT NOT NULL REFERENCES registered_models(name),
    version BIGINT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, version, key)
);
-- A model version's MLflow stage (`Staging`, `Production`, `Archived`) when a client set one;
-- none is "None". Kiln itself routes by aliases and deployments; the stage is kept for
-- MLflow clients that still send it.
CREATE TABLE IF NOT EXISTS model_version_stages (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    stage TEXT NOT NULL,
    PRIMARY KEY (name, version),
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
);
-- MLflow clients start runs in experiment "0" unless told otherwise.
INSERT INTO experiments (id, name, created_at) VALUES (0, 'Default', 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS dataset_versions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES datasets(name),
    fingerprint TEXT NOT NULL,
    size BIGINT NOT NULL,
    rows BIGINT,
    schema TEXT NOT NULL,
    artifact_sha256 TEXT REFERENCES artifacts(sha256),
    run_id TEXT REFERENCES runs(id),
    created_at BIGINT NOT NULL,
    UNIQUE (name, fingerprint)
);
CREATE TABLE IF NOT EXISTS code_packages (
    id TEXT PRIMARY KEY,
    handle TEXT NOT NULL,
    role TEXT NOT NULL,
    image TEXT NOT NULL,
    digest TEXT NOT NULL,
    notebook_sha256 TEXT NOT NULL,
    cell_sha256 TEXT NOT NULL,
    cargo_lock_sha256 TEXT NOT NULL,
    git_commit TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (handle, role, digest)
);
CREATE TABLE IF NOT EXISTS run_dataset_inputs (
    run_id TEXT NOT NULL REFERENCES runs(id),
    dataset_version_id TEXT NOT NULL REFERENCES dataset_versions(id),
    PRIMARY KEY (run_id, dataset_version_id)
);
-- A dataset version logged through MLflow's `log_input`: MLflow's own description of it,
-- kept so its client reads back what it sent; and the tags of a run's input (its context).
CREATE TABLE IF NOT EXISTS mlflow_dataset_sources (
    dataset_version_id TEXT PRIMARY KEY REFERENCES dataset_versions(id),
    digest TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source TEXT NOT NULL,
    mlflow_schema TEXT NOT NULL,
    profile TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_dataset_input_tags (
    run_id TEXT NOT NULL REFERENCES runs(id),
    dataset_version_id TEXT NOT NULL REFERENCES dataset_versions(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, dataset_version_id, key)
);
CREATE TABLE IF NOT EXISTS run_code_packages (
    run_id TEXT NOT NULL REFERENCES runs(id),
    code_package_id TEXT NOT NULL REFERENCES code_packages(id),
    PRIMARY KEY (run_id, code_package_id)
);
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    handle TEXT NOT NULL,
    cron TEXT NOT NULL,
    params TEXT NOT NULL,
    runner TEXT,
    created_at BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    last_fired_at BIGINT,
    last_exit BIGINT,
    last_run_id TEXT
);
CREATE TABLE IF NOT EXISTS deployments (
    handle TEXT PRIMARY KEY,
    strategy TEXT NOT NULL,
    stable BIGINT NOT NULL,
    candidate BIGINT,
    standby BIGINT,
    arms TEXT NOT NULL,
    runner TEXT,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS deployment_events (
    id SERIAL_KEY,
    handle TEXT NOT NULL,
    at BIGINT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
-- Who made a deployment change (a table of its own, so older stores need no migration;
-- their events have no row here).
CREATE TABLE IF NOT EXISTS deployment_event_actors (
    event_id BIGINT PRIMARY KEY,
    actor TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS traffic_minutes (
    handle TEXT NOT NULL,
    version BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    reward_sum DOUBLE PRECISION NOT NULL,
    reward_count BIGINT NOT NULL,
    -- the latency histogram, one column per slot, so that counts from several servers are
    -- added by the database in one statement
    l0 BIGINT NOT NULL DEFAULT 0,
    l1 BIGINT NOT NULL DEFAULT 0,
    l2 BIGINT NOT NULL DEFAULT 0,
    l3 BIGINT NOT NULL DEFAULT 0,
    l4 BIGINT NOT NULL DEFAULT 0,
    l5 BIGINT NOT NULL DEFAULT 0,
    l6 BIGINT NOT NULL DEFAULT 0,
    l7 BIGINT NOT NULL DEFAULT 0,
    l8 BIGINT NOT NULL DEFAULT 0,
    l9 BIGINT NOT NULL DEFAULT 0,
    l10 BIGINT NOT NULL DEFAULT 0,
    l11 BIGINT NOT NULL DEFAULT 0,
    l12 BIGINT NOT NULL DEFAULT 0,
    l13 BIGINT NOT NULL DEFAULT 0,
    l14 BIGINT NOT NULL DEFAULT 0,
    l15 BIGINT NOT NULL DEFAULT 0,
    l16 BIGINT NOT NULL DEFAULT 0,
    l17 BIGINT NOT NULL DEFAULT 0,
    l18 BIGINT NOT NULL DEFAULT 0,
    l19 BIGINT NOT NULL DEFAULT 0,
    l20 BIGINT NOT NULL DEFAULT 0,
    l21 BIGINT NOT NULL DEFAULT 0,
    l22 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (handle, version, bucket)
);
-- The same counts in 10-second buckets, for a live chart of the last hour: written with the
-- minutes (the same deltas, so the totals agree) and dropped once older than an hour
-- (store/deployments.rs). The columns are traffic_minutes' own, copied rather than repeated.
CREATE TABLE IF NOT EXISTS traffic_fine AS SELECT * FROM traffic_minutes WHERE 1 = 0;
CREATE UNIQUE INDEX IF NOT EXISTS traffic_fine_key ON traffic_fine(handle, version, bucket);
