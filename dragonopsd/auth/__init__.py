"""Authentication: API tokens, Supabase-compatible JWTs, failure limiting."""
