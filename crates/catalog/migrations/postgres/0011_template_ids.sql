-- Every template gets a number (Tencent Cloud API 3.0 names templates by an integer
-- `TemplateId`): unique across kinds, assigned on insert as one more than the largest, never
-- reused while the template lives, kept when the template is replaced. Existing templates
-- are numbered in creation order. (SQLite twin in sqlite/0011_template_ids.sql.)
ALTER TABLE templates ADD COLUMN id BIGINT NOT NULL DEFAULT 0;
UPDATE templates SET id = n.id FROM (
    SELECT kind, name, row_number() OVER (ORDER BY created_at_ms, kind, name) AS id FROM templates
) AS n
WHERE templates.kind = n.kind AND templates.name = n.name;
CREATE UNIQUE INDEX idx_templates_id ON templates (id);
