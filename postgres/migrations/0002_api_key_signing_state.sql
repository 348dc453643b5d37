-- AK/SK (SDK-HMAC-SHA256) signing: the key's HMAC-SHA256 states (a secret,
-- never returned by an API). Keys created before this have none.
ALTER TABLE api_keys ADD COLUMN signing_state TEXT NOT NULL DEFAULT '';
