"""``ssg-dmi check``: findings and the checks that make them, the folder audit, the bounded
crawler for served sites, and the report formats. Never imports the build driver.

    findings        Finding, CheckReport, the finding codes
    expect          what each path must say (settings and the pages' overrides)
    page_facts      what a page says: metas, images, links, srcset candidates
    page_checks     image_checks  header_checks  site_files (+ robots_rules)
    folder          check_site: a built site folder
    crawl           the bounded HTTP client;  crawl_state  served: check_url
    report_formats  text, JSON, JUnit, GitHub
    themes          what the MkDocs and Pelican plugins leave alone by design
"""
