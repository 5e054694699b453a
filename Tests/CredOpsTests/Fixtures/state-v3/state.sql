

CREATE TABLE public.credops_schema (
    version bigint NOT NULL
);

CREATE TABLE public.intents (
    intent_id text NOT NULL,
    environment text NOT NULL,
    project text NOT NULL,
    username text NOT NULL,
    action text NOT NULL,
    run_id text NOT NULL,
    password_fingerprint text,
    fields_digest text,
    grants text DEFAULT '[]'::text NOT NULL,
    created_at text NOT NULL
);

CREATE TABLE public.locks (
    environment text NOT NULL,
    lock_id text NOT NULL,
    holder_user text NOT NULL,
    holder_host text NOT NULL,
    pid bigint NOT NULL,
    command text NOT NULL,
    since text NOT NULL,
    holder_session bigint
);

CREATE TABLE public.managed_credentials (
    environment text NOT NULL,
    project text NOT NULL,
    username text NOT NULL,
    password_fingerprint text,
    grants text DEFAULT '[]'::text NOT NULL,
    pending_redeploy text,
    last_action text NOT NULL,
    last_run_id text NOT NULL,
    last_changed_at text NOT NULL
);

CREATE TABLE public.runs (
    run_id text NOT NULL,
    environment text NOT NULL,
    command text NOT NULL,
    user_name text NOT NULL,
    host text NOT NULL,
    pid bigint NOT NULL,
    started_at text NOT NULL,
    finished_at text,
    success bigint,
    message text,
    created bigint DEFAULT 0 NOT NULL,
    updated bigint DEFAULT 0 NOT NULL,
    password_changed bigint DEFAULT 0 NOT NULL,
    granted bigint DEFAULT 0 NOT NULL,
    revoked bigint DEFAULT 0 NOT NULL,
    deleted bigint DEFAULT 0 NOT NULL,
    adopted bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL
);

INSERT INTO public.credops_schema VALUES (3);

INSERT INTO public.intents VALUES ('c08add1c-3d05e84e93890de3', 'fixture', 'payments', 'carol', 'password', 'c08add1c', 'd2b5adadeb891823b6e4553fd09ca34c7e7d08ca19ec8c04d0969bfd006b1240', NULL, '[]', '2026-12-02T13:11:02.552Z');

INSERT INTO public.managed_credentials VALUES ('fixture', 'payments', 'bob', 'ff6bcd9d7e76a1f17fe9d899f6cd958d8dec803add4b407435e93f87d0cd5f78', '[]', NULL, 'create', 'cd39e0ba', '2026-12-02T13:11:02.397Z');
INSERT INTO public.managed_credentials VALUES ('fixture', 'payments', 'carol', '03e108301aa00ef76936648ed167ceba98c157c2c78a3a75fea679fababf8a83', '[]', NULL, 'create', 'cd39e0ba', '2026-12-02T13:11:02.397Z');
INSERT INTO public.managed_credentials VALUES ('fixture', 'payments', 'alice', '5e78a7e4484ce9d43d04a14127f5abc158c6032a1e2a3f3ff0720ae217447caf', '[{"name":"PaymentAPI","type":"API_PROXY"}]', NULL, 'grant', 'cd39e0ba', '2026-12-02T13:11:02.401Z');

INSERT INTO public.runs VALUES ('cd39e0ba', 'fixture', 'credops apply manifests -e fixture --environments environments --auto-approve --state postgres://credops@127.0.0.1:37459/postgres?sslmode=disable', 'root', 'vm', 13014, '2026-12-02T13:11:02.389Z', '2026-12-02T13:11:02.412Z', 1, 'Deployed successfully: 3 created, 1 granted', 3, 0, 0, 1, 0, 0, 0, 0);
INSERT INTO public.runs VALUES ('c08add1c', 'fixture', 'credops apply manifests -e fixture --environments environments --auto-approve --state postgres://credops@127.0.0.1:37459/postgres?sslmode=disable', 'root', 'vm', 13034, '2026-12-02T13:11:02.548Z', '2026-12-02T13:11:04.772Z', 0, '1 of 1 operations failed: carol password: PATCH /apiops/projects/payments/credentials/carol/ → 502 internal_error: Bad gateway: the answer was lost (injected fault: the change was stored) (outcome unknown; the next run checks it)', 0, 0, 0, 0, 0, 0, 0, 1);

ALTER TABLE ONLY public.intents
    ADD CONSTRAINT intents_pkey PRIMARY KEY (intent_id);

ALTER TABLE ONLY public.locks
    ADD CONSTRAINT locks_pkey PRIMARY KEY (environment);

ALTER TABLE ONLY public.managed_credentials
    ADD CONSTRAINT managed_credentials_pkey PRIMARY KEY (environment, project, username);

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (run_id, environment);

CREATE INDEX intents_by_environment ON public.intents USING btree (environment);

CREATE INDEX runs_by_environment ON public.runs USING btree (environment, started_at);


