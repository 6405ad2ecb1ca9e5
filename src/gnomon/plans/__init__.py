"""Plans: policies that fill a time window with blocks and a command script, and the
verifier that checks the result independently of the policy that made it."""
