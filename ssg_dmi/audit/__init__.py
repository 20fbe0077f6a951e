"""``ssg-dmi check``: findings and the checks that make them, the folder audit, the bounded
crawler for served sites, and the report formats. Never imports the build driver."""
