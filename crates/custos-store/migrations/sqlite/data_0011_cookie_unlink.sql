-- When a member's account is destroyed, their cookie choices stay as an
-- anonymous visitor's (the random visitor id, the category, the choice),
-- but the link to the member goes: a linked row may now be unlinked
-- (subject_id and linked_at both set back to NULL), and still nothing else.
DROP TRIGGER cookie_consents_append_only;
CREATE TRIGGER cookie_consents_append_only BEFORE UPDATE ON cookie_consents
WHEN (OLD.subject_id IS NOT NULL AND (NEW.subject_id IS NOT NULL OR NEW.linked_at IS NOT NULL))
    OR NEW.seq IS NOT OLD.seq OR NEW.visitor_id IS NOT OLD.visitor_id OR NEW.category IS NOT OLD.category
    OR NEW.granted IS NOT OLD.granted OR NEW.source IS NOT OLD.source OR NEW.gpc IS NOT OLD.gpc
    OR NEW.policy_version IS NOT OLD.policy_version OR NEW.at IS NOT OLD.at
BEGIN
    SELECT RAISE(ABORT, 'cookie consents are append-only');
END;

-- Members destroyed before this version: unlinked now.
UPDATE cookie_consents SET subject_id = NULL, linked_at = NULL
WHERE subject_id IN (SELECT id FROM subjects WHERE status = 'deleted')
   OR (subject_id IS NOT NULL AND subject_id NOT IN (SELECT id FROM subjects));
