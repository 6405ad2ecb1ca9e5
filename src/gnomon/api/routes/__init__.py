"""Native API v1 routers."""
