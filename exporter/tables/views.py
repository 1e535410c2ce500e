"""Views that do the joins users would otherwise write: names for the ids in segments and metrics.

``segments_named``: each segment with its participant's purpose and user, and the names of the
user, the queue and the wrap-up code. ``metrics_named``: each metric with its session's media
type and direction, its participant's purpose and user, and the session's queue (its first
segment naming one) and wrap-up code (its last segment naming one), with their names.
``adherence_named``: each agent's adherence day with the agent's, the management unit's and
the business unit's names and the unit's time zone. An id with no entity in the newest
snapshot keeps a NULL name. ``conversation_aggregates_reconciliation``: the aggregates
beside the same figures computed from the detail tables, row by row.
"""

from __future__ import annotations

SEGMENTS_NAMED = """
CREATE OR REPLACE VIEW segments_named AS
SELECT s.*, c.conversation_start, p.purpose, p.user_id, u.name AS user_name,
       q.name AS queue_name, w.name AS wrap_up_name
FROM segments s
JOIN conversations c USING (conversation_id)
JOIN participants p USING (conversation_id, participant_id)
LEFT JOIN users u ON u.id = p.user_id
LEFT JOIN queues q ON q.id = s.queue_id
LEFT JOIN wrapup_codes w ON w.id = s.wrap_up_code
"""

METRICS_NAMED = """
CREATE OR REPLACE VIEW metrics_named AS
WITH session_routing AS (
    SELECT conversation_id, participant_id, session_id,
           arg_min(queue_id, segment_index) FILTER (WHERE queue_id IS NOT NULL) AS queue_id,
           arg_max(wrap_up_code, segment_index)
               FILTER (WHERE wrap_up_code IS NOT NULL) AS wrap_up_code
    FROM segments
    GROUP BY conversation_id, participant_id, session_id
)
SELECT m.*, c.conversation_start, ss.media_type, ss.direction, p.purpose, p.user_id,
       u.name AS user_name, r.queue_id, q.name AS queue_name, r.wrap_up_code,
       w.name AS wrap_up_name
FROM metrics m
JOIN conversations c USING (conversation_id)
JOIN participants p USING (conversation_id, participant_id)
JOIN sessions ss USING (conversation_id, participant_id, session_id)
LEFT JOIN session_routing r USING (conversation_id, participant_id, session_id)
LEFT JOIN users u ON u.id = p.user_id
LEFT JOIN queues q ON q.id = r.queue_id
LEFT JOIN wrapup_codes w ON w.id = r.wrap_up_code
"""

# The aggregates against the same figures computed from the detail tables, by the rule the
# README's Tables section writes down (and the sandbox serves): each session metric counts in
# the bucket holding its emit_date, under its session's media type and direction and its
# session's first queue; an n* metric's count is the sum of its values, a t* metric has count,
# sum, min and max. Compared: the default grouping (user_id and wrap_up_code NULL), the metrics
# the aggregates hold, and the days whose conversations, and the day before's, are exported too
# (a metric is emitted by a conversation that started that day or, past midnight, the day
# before). ``status``: same, different, aggregates_only or details_only.
AGGREGATES_RECONCILIATION = """
CREATE OR REPLACE VIEW conversation_aggregates_reconciliation AS
WITH width AS (
    SELECT epoch_ms(any_value(bucket_end)) - epoch_ms(any_value(bucket_start)) AS ms
    FROM conversation_aggregates
), conversation_days AS (  -- the conversations' day files built, empty ones included
    SELECT window_name AS day FROM _build_sources WHERE dataset = 'conversations'
), compared_days AS (
    SELECT DISTINCT a.source_window AS day
    FROM conversation_aggregates a
    WHERE a.source_window IN (SELECT day FROM conversation_days)
      AND strftime(a.source_window::DATE - 1, '%Y-%m-%d') IN (SELECT day FROM conversation_days)
), session_queue AS (
    SELECT conversation_id, participant_id, session_id,
           arg_min(queue_id, segment_index) FILTER (WHERE queue_id IS NOT NULL) AS queue_id
    FROM segments
    GROUP BY ALL
), observed AS (
    SELECT to_timestamp(epoch_ms(m.emit_date) // w.ms * w.ms / 1000) AS bucket_start,
           r.queue_id, ss.media_type, ss.direction, m.name AS metric, m.value
    FROM metrics m
    JOIN sessions ss USING (conversation_id, participant_id, session_id)
    LEFT JOIN session_queue r USING (conversation_id, participant_id, session_id)
    CROSS JOIN width w
    WHERE m.name IN (SELECT DISTINCT metric FROM conversation_aggregates)
), details AS (
    SELECT bucket_start, queue_id, media_type, direction, metric,
           CASE WHEN metric LIKE 'n%' THEN sum(value) ELSE count(*) END AS count,
           CASE WHEN metric LIKE 'n%' THEN NULL ELSE sum(value) END::DOUBLE AS sum,
           CASE WHEN metric LIKE 'n%' THEN NULL ELSE min(value) END::DOUBLE AS min,
           CASE WHEN metric LIKE 'n%' THEN NULL ELSE max(value) END::DOUBLE AS max
    FROM observed
    WHERE strftime(bucket_start AT TIME ZONE 'UTC', '%Y-%m-%d') IN (SELECT day FROM compared_days)
    GROUP BY bucket_start, queue_id, media_type, direction, metric
), aggregates AS (
    SELECT bucket_start, queue_id, media_type, direction, metric, count, sum, min, max
    FROM conversation_aggregates
    WHERE user_id IS NULL AND wrap_up_code IS NULL
      AND source_window IN (SELECT day FROM compared_days)
)
SELECT coalesce(a.bucket_start, d.bucket_start) AS bucket_start,
       coalesce(a.queue_id, d.queue_id) AS queue_id,
       coalesce(a.media_type, d.media_type) AS media_type,
       coalesce(a.direction, d.direction) AS direction,
       coalesce(a.metric, d.metric) AS metric,
       a.count AS aggregates_count, d.count AS details_count,
       a.sum AS aggregates_sum, d.sum AS details_sum,
       a.min AS aggregates_min, d.min AS details_min,
       a.max AS aggregates_max, d.max AS details_max,
       CASE WHEN d.metric IS NULL THEN 'aggregates_only'
            WHEN a.metric IS NULL THEN 'details_only'
            WHEN a.count = d.count AND a.sum IS NOT DISTINCT FROM d.sum
                 AND a.min IS NOT DISTINCT FROM d.min AND a.max IS NOT DISTINCT FROM d.max
                 THEN 'same'
            ELSE 'different' END AS status
FROM aggregates a
FULL OUTER JOIN details d
  ON a.bucket_start = d.bucket_start AND a.metric = d.metric
 AND a.queue_id IS NOT DISTINCT FROM d.queue_id
 AND a.media_type IS NOT DISTINCT FROM d.media_type
 AND a.direction IS NOT DISTINCT FROM d.direction
"""

ADHERENCE_NAMED = """
CREATE OR REPLACE VIEW adherence_named AS
SELECT a.*, u.name AS user_name, m.name AS management_unit_name, m.time_zone,
       b.name AS business_unit_name
FROM adherence_days a
LEFT JOIN users u ON u.id = a.user_id
LEFT JOIN management_units m ON m.id = a.management_unit_id
LEFT JOIN business_units b ON b.id = m.business_unit_id
"""

VIEWS: dict[str, str] = {
    "segments_named": SEGMENTS_NAMED,
    "metrics_named": METRICS_NAMED,
    "conversation_aggregates_reconciliation": AGGREGATES_RECONCILIATION,
    "adherence_named": ADHERENCE_NAMED,
}
