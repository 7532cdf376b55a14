-- Every template gets a number (Tencent Cloud API 3.0 names templates by an integer
-- `TemplateId`): unique across kinds, assigned on insert as one more than the largest, never
-- reused while the template lives, kept when the template is replaced. Existing templates
-- are numbered in creation order.
ALTER TABLE templates ADD COLUMN id INTEGER NOT NULL DEFAULT 0;
UPDATE templates SET id = (
    SELECT COUNT(*) FROM templates AS t
    WHERE t.created_at_ms < templates.created_at_ms
       OR (t.created_at_ms = templates.created_at_ms AND (t.kind, t.name) <= (templates.kind, templates.name))
);
CREATE UNIQUE INDEX idx_templates_id ON templates (id);
