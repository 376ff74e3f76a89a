-- leadscore 0.2.0 -> 0.3.0
\echo Use "ALTER EXTENSION leadscore UPDATE TO '0.3.0'" to load this file. \quit

-- The engagement aggregate states the size of its fixed group state, so the planner can choose
-- hash aggregation over a sequential scan (see the install script).
CREATE OR REPLACE AGGREGATE leadscore.engagement_score(model text, activity anyelement, as_of timestamptz) (
    SFUNC = leadscore.engagement_transition,
    STYPE = internal,
    FINALFUNC = leadscore.engagement_final,
    FINALFUNC_EXTRA,
    COMBINEFUNC = leadscore.engagement_combine,
    SERIALFUNC = leadscore.engagement_serialize,
    DESERIALFUNC = leadscore.engagement_deserialize,
    SSPACE = 128,
    PARALLEL = SAFE
);
