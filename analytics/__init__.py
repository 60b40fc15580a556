"""Analytics for program managers (DESIGN.md section 8): pure, vectorised math without the ORM."""
