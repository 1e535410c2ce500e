"""Views that do the joins users would otherwise write: names for the ids in segments and metrics.

``segments_named``: each segment with its participant's purpose and user, and the names of the
user, the queue and the wrap-up code. ``metrics_named``: each metric with its session's media
type and direction, its participant's purpose and user, and the session's queue (its first
segment naming one) and wrap-up code (its last segment naming one), with their names.
``adherence_named``: each agent's adherence day with the agent's, the management unit's and
the business unit's names and the unit's time zone. An id with no entity in the newest
snapshot keeps a NULL name.
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

ADHERENCE_NAMED = """
CREATE OR REPLACE VIEW adherence_named AS
SELECT a.*, u.name AS user_name, m.name AS management_unit_name, m.time_zone,
       b.name AS business_unit_name
FROM adherence_days a
LEFT JOIN users u ON u.id = a.user_id
LEFT JOIN management_units m ON m.id = a.management_unit_id
LEFT JOIN business_units b ON b.id = m.business_unit_id
"""

VIEWS: dict[str, str] = {"segments_named": SEGMENTS_NAMED, "metrics_named": METRICS_NAMED,
                         "adherence_named": ADHERENCE_NAMED}  # fmt: skip
