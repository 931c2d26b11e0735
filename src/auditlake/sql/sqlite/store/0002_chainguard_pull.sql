-- Chainguard's pull table was created here; it is a projection now, created
-- from its vendor's folder (vendors/chainguard) when the store opens, with
-- the same columns and index. Databases that ran this file keep their table.
SELECT 1;
