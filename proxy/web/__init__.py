"""HTTP plumbing shared by every route: errors, admin endpoints, status, pages, metrics."""
